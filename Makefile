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

.PHONY: demo test test-fast lint bench clean install runtime-env c-tools cpp-deps

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

# Compilers for the generated C (host gcc/g++) and the Cortex-M checks (cross gcc, newlib,
# QEMU). Installed with apt-get where it works (root on Debian/Ubuntu); elsewhere the tests
# that need them skip and say why.
C_TOOLS := gcc g++ gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi qemu-system-arm
c-tools:
	@if command -v gcc >/dev/null && command -v g++ >/dev/null && command -v arm-none-eabi-gcc >/dev/null \
	    && command -v qemu-system-arm >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -q $(C_TOOLS) >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 \
	    && apt-get install -y -q $(C_TOOLS) >/dev/null 2>&1)) \
	  || echo "note: could not install $(C_TOOLS); the C tests that need them will skip"; \
	else echo "note: no apt-get as root here; install $(C_TOOLS) for the C and Cortex-M tests"; fi

# examples/cpp: cmake (apt, where it works) and ONNX Runtime's C/C++ headers (a private apt
# download, see examples/cpp/setup_ort.sh); without them the C++ tests skip and say why.
cpp-deps: $(STAMP)
	@command -v cmake >/dev/null || ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ] \
	  || apt-get install -y -q cmake >/dev/null 2>&1 || echo "note: could not install cmake"
	@PYTHON=$(abspath $(PY)) examples/cpp/setup_ort.sh || echo "note: examples/cpp tests will skip"

test: $(STAMP) $(RT_STAMP) c-tools cpp-deps
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
