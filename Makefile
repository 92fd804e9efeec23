# ModaNet Seasons: two commands on a fresh machine.
#   make demo   runs the whole course (notebooks 01 ...) on the bundled synthetic sample, smoke profile
#   make test   runs the unit tests and every notebook under nbval, smoke profile
# Each creates .venv when missing and installs what it needs into it.
#   make test-colab   the engine's tests and notebooks 00-01 again, in .venv-colab pinned to Colab's
#                     versions (.ci/colab-versions.txt: Python 3.13, TensorFlow 2.20, Keras 3.13, ...)

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
# tensorflow-cpu where there is no NVIDIA GPU, tensorflow[and-cuda] where there is one
TF_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
STAMP    := $(VENV)/.installed-$(TF_EXTRA)
TEST_DATA := $(CURDIR)/runs/test-data

# Colab's Python: the first python3.13 that runs (on the PATH, or pyenv's)
COLAB_PYTHON ?= $(firstword $(foreach p,python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13),$(shell $(p) -c 'import sys; print(sys.executable)' 2>/dev/null)))
COLAB_VENV   := .venv-colab
COLAB_STAMP  := $(COLAB_VENV)/.installed
COLAB_DATA   := $(CURDIR)/runs/test-colab-data
# 00-01 only (install cell, data): 02-07 run in make test, and CI must stay well inside its 90 minutes;
# for the same reason not test_mrcnn_learns (minutes of training: the engine's steps are tested on these
# versions anyway), left out of the list itself: pytest's --ignore does not drop a file named on the command line
COLAB_NOTEBOOKS := $(sort $(wildcard notebooks/0[0-1]_*.ipynb))
COLAB_TESTS := $(filter-out tests/test_mrcnn_learns.py,$(sort $(wildcard tests/test_mrcnn_*.py)))

.PHONY: demo test test-colab install lab bench-data clean

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
	MODANET_PROFILE=smoke MODANET_DATA=$(TEST_DATA) TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider --durations=25

$(COLAB_STAMP): pyproject.toml .ci/colab-versions.txt
	@test -n "$(COLAB_PYTHON)" || { echo "make test-colab needs Python 3.13 (Colab's): install it, or run make test-colab COLAB_PYTHON=/path/to/python3.13"; exit 2; }
	@test -x $(COLAB_VENV)/bin/python || $(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install --quiet --progress-bar off -c .ci/colab-versions.txt -e ".[cpu,dev]"
	$(COLAB_VENV)/bin/python -m pip check
	@touch $@

test-colab: $(COLAB_STAMP)
	$(COLAB_VENV)/bin/python -c 'import sys, tensorflow as tf, keras, numpy; print("Colab set:", sys.version.split()[0], "TensorFlow", tf.__version__, "Keras", keras.__version__, "numpy", numpy.__version__)'
	rm -rf $(COLAB_DATA)
	MODANET_PROFILE=smoke MODANET_DATA=$(COLAB_DATA) TF_CPP_MIN_LOG_LEVEL=2 $(COLAB_VENV)/bin/python -m pytest $(COLAB_TESTS) $(COLAB_NOTEBOOKS) --nbval-lax -p no:cacheprovider --durations=25

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	cd notebooks && ../$(BIN)/jupyter lab

bench-data: $(STAMP)
	$(BIN)/python bench/bench_data.py

clean:
	rm -rf runs $(VENV) $(COLAB_VENV)
