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

.PHONY: demo test test-fast lint bench clean install runtime-env native-tools cpp-deps

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

demo: $(STAMP)
	$(PY) -m edgeae.demo --out $(DEMO)

# Native targets of `make test` (C codec on Cortex-M under QEMU, the C++ app): installed with
# apt where it works; without them those tests skip and say why.
NATIVE_PKGS := gcc g++ cmake gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

native-tools:
	@for t in gcc g++ cmake arm-none-eabi-gcc qemu-system-arm; do command -v $$t >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(NATIVE_PKGS)) \
	  || echo "native-tools: could not install $(NATIVE_PKGS); their tests will skip"; fi

# ONNX Runtime's C/C++ headers for examples/cpp (a private apt download; never fails the build).
cpp-deps: $(STAMP)
	-PYTHON=$(abspath $(PY)) examples/cpp/setup_ort.sh

test: $(STAMP) $(RT_STAMP) native-tools cpp-deps
	$(VENV)/bin/ruff check edgeae tests benchmarks
	EDGEAE_RUNTIME_PYTHON=$(abspath $(RT_VENV))/bin/python $(PY) -m pytest -q -m "slow or not slow"

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -x

lint: $(STAMP)
	$(VENV)/bin/ruff check edgeae tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) $(RT_VENV) $(DEMO) .pytest_cache .ruff_cache
