# The course kit's commands. Each sets itself up from nothing and reuses what is there:
#   make course   set up, prepare the data, run every notebook (papermill, quick mode)
#   make test     set up, prepare the data, run the test suite (pytest + nbval)
#   make lab      set up, start JupyterLab with the kit's kernel
#   make data     set up, find/check/decode the default dataset
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODE ?= quick
KERNEL := course-kit
# Data: COURSE_DATA if you set it; otherwise a shared dataset folder beside the checkout
# (../shared/data), when there is one. See data/README.md for the whole search order.
COURSE_DATA ?= $(firstword $(wildcard $(abspath ../shared/data)))
export COURSE_DATA
export MPLBACKEND := Agg

.PHONY: setup course test lab data strip clean

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-runs whenever pyproject.toml changes (a changed dependency list is picked up).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --progress-bar off -e ".[test]"
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name $(KERNEL) \
	    --display-name "Python (CNN course kit)"
	touch $@

# Fashion-MNIST from Debian's package where apt may be used (root or password-less
# sudo); best effort: the data layer says what is missing when a lesson needs it.
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
data: setup
	@if [ ! -f $(FMNIST) ] && command -v apt-get >/dev/null; then \
	  S=""; [ "$$(id -u)" = 0 ] || S="sudo -n"; \
	  if [ -z "$$S" ] || sudo -n true 2>/dev/null; then \
	    echo "[data] installing Debian's dataset-fashion-mnist"; \
	    (DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq dataset-fashion-mnist \
	     || ($$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq \
	         dataset-fashion-mnist)) >/dev/null 2>&1 || echo "[data] apt-get failed: no Fashion-MNIST"; \
	  else echo "[data] for Fashion-MNIST: sudo apt-get install dataset-fashion-mnist"; fi; \
	fi
	$(BIN)/python -m course_utils.data prepare --dataset cifar10

course: data
	$(BIN)/python -m course_utils.runbook --mode $(MODE)

test: data
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env tests notebooks

# LAB_ARGS: extra options, e.g. LAB_ARGS="--no-browser --port 8899"
lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

strip: setup
	$(BIN)/python -m course_utils.nbtools strip notebooks/*.ipynb

clean:
	rm -rf build .pytest_cache
