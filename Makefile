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

.PHONY: demo test test-fast lint bench bench-arm64 mutation clean install runtime-env system-tools c-tools native-tools web-tools cpp-deps arm64-tools timeseries-data

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

# Debian tools some tests use, installed with apt-get where it works (root on Debian/Ubuntu);
# elsewhere those tests skip and say why. Failures do not stop `make test`.
#   qemu-user-static: emulated CPUs without VNNI (int8 portability tests), emulated ARM64
#   gcc/g++-aarch64-linux-gnu: the C++ app and generated C cross-compiled for ARM64
#   gcc, g++, cmake, arm-none-eabi gcc + newlib, qemu-system-arm: generated C, C codec, Cortex-M runs
#   chromium: browser tests (Playwright drives it by path; it never downloads a browser)
APT_TOOLS := qemu-user-static gcc g++ cmake gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi \
	qemu-system-arm chromium gcc-aarch64-linux-gnu g++-aarch64-linux-gnu
APT_PROBES := qemu-x86_64-static gcc g++ cmake arm-none-eabi-gcc qemu-system-arm chromium \
	aarch64-linux-gnu-gcc aarch64-linux-gnu-g++
system-tools:
	@missing=; for t in $(APT_PROBES); do command -v $$t >/dev/null || missing=1; done; \
	if [ -z "$$missing" ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  { apt-get update -qq && apt-get install -y -qq $(APT_TOOLS); } >/dev/null 2>&1 || \
	  for p in $(APT_TOOLS); do apt-get install -y -qq $$p >/dev/null 2>&1 || echo "note: could not install $$p; tests that need it will skip"; done; \
	else echo "note: no apt-get as root here; install $(APT_TOOLS) for the emulated-CPU, C and browser tests"; fi

c-tools native-tools: system-tools

# The browser tests' tools, where apt/npm are available (the tests skip with the reason
# elsewhere): Debian's chromium (Playwright drives it by path; it never downloads a browser)
# and onnxruntime-web from package-lock.json into ./node_modules. Failures do not stop `make test`.
WEB_STAMP := node_modules/.installed
$(WEB_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent && touch $(WEB_STAMP)

web-tools: $(STAMP) system-tools
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(WEB_STAMP) \
		|| echo "web-tools: npm ci failed (browser tests will skip)"; \
	else echo "web-tools: npm not found (browser tests will skip)"; fi

demo: $(STAMP)
	$(PY) -m edgeae.demo --out $(DEMO)

# examples/cpp: cmake (apt, where it works) and ONNX Runtime's C/C++ headers (a private apt
# download, see examples/cpp/setup_ort.sh); without them the C++ tests skip and say why.
cpp-deps: $(STAMP)
	@command -v cmake >/dev/null || ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ] \
	  || apt-get install -y -q cmake >/dev/null 2>&1 || echo "note: could not install cmake"
	@PYTHON=$(abspath $(PY)) examples/cpp/setup_ort.sh || echo "note: examples/cpp tests will skip"

# An emulated ARM64 machine (tests/test_arm64.py, benchmarks/arm64.py): Debian's arm64 python3.11,
# libc and libstdc++ (private apt download) + PyPI's aarch64 wheels of the runtime's packages,
# in build/arm64/ (tools/arm64_sysroot.sh). Failures do not stop `make test`; those tests skip.
arm64-tools: $(STAMP) system-tools cpp-deps
	@PYTHON=$(abspath $(PY)) tools/arm64_sysroot.sh || echo "note: the ARM64 tests will skip"

# Real UCR/UEA time-series data sets (BasicMotions, GunPoint, ItalyPowerDemand, ...): the .ts files
# the aeon wheel on PyPI bundles, extracted into build/timeseries/ (tools/timeseries_data.py; aeon is
# never installed). Failures do not stop `make test`; the time-series tests on real data skip.
timeseries-data: $(STAMP)
	@$(PY) tools/timeseries_data.py || echo "note: the time-series tests on real data will skip"

test: $(STAMP) $(RT_STAMP) system-tools web-tools cpp-deps arm64-tools timeseries-data
	$(VENV)/bin/ruff check edgeae tests benchmarks
	EDGEAE_RUNTIME_PYTHON=$(abspath $(RT_VENV))/bin/python $(PY) -m pytest -q -m "slow or not slow"

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -x

lint: $(STAMP)
	$(VENV)/bin/ruff check edgeae tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks.run

bench-c: $(STAMP) c-tools
	$(PY) -m benchmarks.c

bench-arm64: $(STAMP) arm64-tools
	$(PY) -m benchmarks.arm64

# Mutation testing (long: not part of `make test`). Python modules with mutmut, group by group,
# each against its own test files; the C codec and kernel templates with tools/mutate_c.py on a
# seeded sample (MUTATION_C_SAMPLE mutants per target). Scores and survivors: docs/testing.md.
MUTATION_GROUPS ?=
MUTATION_C_SAMPLE ?= 40
mutation: $(STAMP) c-tools
	$(PY) tools/mutation.py $(MUTATION_GROUPS)
	$(PY) tools/mutate_c.py --sample $(MUTATION_C_SAMPLE)

clean:
	rm -rf mutants $(VENV) $(RT_VENV) $(DEMO) .pytest_cache .ruff_cache node_modules build/arm64 build/timeseries
