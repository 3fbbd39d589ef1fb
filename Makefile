# Everything a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The pinned CPU build of PyTorch is installed first, so pip never resolves a CUDA build.
CONSTRAINTS := -c constraints.txt
STAMP := $(VENV)/.installed
RT_VENV := .venv-runtime
RT_STAMP := $(RT_VENV)/.installed
DEMO := demo

.PHONY: demo test test-fast lint bench clean install runtime-env web-tools

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install -q $(CONSTRAINTS) "torch==2.13.0"
	$(PIP) install -q $(CONSTRAINTS) -e ".[train,dev]"
	touch $(STAMP)

install: $(STAMP)

# A second environment with the base install only (no torch, no onnx): proves the runtime
# and its CLI work on a device that has nothing but numpy, onnxruntime and click.
$(RT_STAMP): pyproject.toml
	$(PYTHON) -m venv $(RT_VENV)
	$(RT_VENV)/bin/python -m pip install -q --upgrade pip
	$(RT_VENV)/bin/python -m pip install -q $(CONSTRAINTS) .
	touch $(RT_STAMP)

runtime-env: $(RT_STAMP)

# The browser tests' tools, where apt/npm are available (the tests skip with the reason
# elsewhere): Debian's chromium (Playwright drives it by path; it never downloads a browser)
# and onnxruntime-web from package-lock.json into ./node_modules. Failures do not stop `make test`.
WEB_STAMP := node_modules/.installed
$(WEB_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent && touch $(WEB_STAMP)

web-tools: $(STAMP)
	@if ! command -v chromium >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
				|| echo "web-tools: apt-get install chromium failed (browser tests will skip)"; \
		else echo "web-tools: no chromium, and no apt-get as root to install it (browser tests will skip)"; fi; fi
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(WEB_STAMP) \
		|| echo "web-tools: npm ci failed (browser tests will skip)"; \
	else echo "web-tools: npm not found (browser tests will skip)"; fi

demo: $(STAMP)
	$(PY) -m edgeae.demo --out $(DEMO)

test: $(STAMP) $(RT_STAMP) web-tools
	$(VENV)/bin/ruff check edgeae tests benchmarks
	EDGEAE_RUNTIME_PYTHON=$(abspath $(RT_VENV))/bin/python $(PY) -m pytest -q -m "slow or not slow"

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -x

lint: $(STAMP)
	$(VENV)/bin/ruff check edgeae tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) $(RT_VENV) $(DEMO) .pytest_cache .ruff_cache node_modules
