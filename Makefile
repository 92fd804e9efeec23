# ModaNet Seasons: two commands on a fresh machine.
#   make demo   runs the whole course (notebooks 01 ...) on the bundled synthetic sample, smoke profile
#   make test   runs the unit tests and every notebook under nbval, smoke profile
# Each creates .venv when missing and installs what it needs into it.

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
# tensorflow-cpu where there is no NVIDIA GPU, tensorflow[and-cuda] where there is one
TF_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
STAMP    := $(VENV)/.installed-$(TF_EXTRA)
TEST_DATA := $(CURDIR)/runs/test-data

.PHONY: demo test install lab bench-data clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed (found " + sys.version.split()[0] + "); run: make PYTHON=python3.12 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e ".[$(TF_EXTRA),dev]"
	@touch $@

demo: $(STAMP)
	MODANET_PROFILE=smoke $(BIN)/python -m helpers.run_course --out runs/demo

test: $(STAMP)
	rm -rf $(TEST_DATA)
	MODANET_PROFILE=smoke MODANET_DATA=$(TEST_DATA) TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	cd notebooks && ../$(BIN)/jupyter lab

bench-data: $(STAMP)
	$(BIN)/python bench/bench_data.py

clean:
	rm -rf runs $(VENV)
