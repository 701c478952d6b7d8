# The course kit's commands. Each sets itself up from nothing and reuses what is there:
#   make course   set up, prepare the data, run every notebook (papermill, quick mode)
#   make test     set up, prepare the data, run the test suite (pytest + nbval); as root
#                 it also installs Debian's slurm-wlm and munge for the cluster launcher's test
#   make lab      set up, start JupyterLab with the kit's kernel
#   make data     set up, find/check/decode the default dataset
#   make assignments  set up, build the student versions into lessons/ (nbgrader)
#   make grade SUBMISSIONS=dir [OUT=grades.csv] [TIMEOUT=seconds] [MEMORY=4G ...] [UNSAFE=1]
#                 set up, install bubblewrap, grade a folder of submitted notebooks into a
#                 CSV, each in a sandbox (README: Classroom)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODE ?= quick
KERNEL := course-kit
# Data: quick and smoke mode train on the CIFAR-10 sample in data/cifar10-sample/ (in git);
# full mode finds a full copy through COURSE_DATA if you set it (see data/README.md).

# Grading: the folder of submitted notebooks, the CSV to write, seconds per notebook.
SUBMISSIONS ?=
OUT ?= build/grades.csv
TIMEOUT ?= 300
# The sandbox's limits for each submission (course_utils/sandbox.py): data memory per
# process, processes + threads, largest file, CPU seconds per process, size of each
# writable tmpfs (HOME, /tmp, /dev/shm). UNSAFE=1 grades without a sandbox where none can
# be made (no bwrap, not Linux); every row of the CSV then says so.
MEMORY ?= 4G
PROCESSES ?= 256
FILESIZE ?= 256M
CPUTIME ?= 600
SCRATCH ?= 512M
UNSAFE ?=

.PHONY: setup course test lab data browser sandbox slurm strip clean assignments grade

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

# $(call apt_install,TAG,PACKAGE,WHAT FOR): Debian's PACKAGE where apt may be used (root
# or password-less sudo); best effort: what needs it says what is missing without it.
define apt_install
S=""; [ "$$(id -u)" = 0 ] || S="sudo -n"; \
	  if [ -z "$$S" ] || sudo -n true 2>/dev/null; then \
	    echo "[$(1)] installing Debian's $(2) $(3)"; \
	    (DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq $(2) \
	     || ($$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq \
	         $(2))) >/dev/null 2>&1 || echo "[$(1)] apt-get failed: no $(2)"; \
	  else echo "[$(1)] $(3): sudo apt-get install $(2)"; fi
endef

# Fashion-MNIST from Debian's package (apt_install); the data layer says what is missing
# when a lesson needs it.
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
data: setup
	@if [ ! -f $(FMNIST) ] && command -v apt-get >/dev/null; then \
	  $(call apt_install,data,dataset-fashion-mnist,for the Fashion-MNIST lessons); fi
	$(BIN)/python -m course_utils.data prepare

# COURSE_ARGS: more runbook options, e.g. COURSE_ARGS="-p rerun True" (07 trains again
# instead of reading back the runs a previous make course finished) or "--only 02 03"
COURSE_ARGS ?=
course: data
	$(BIN)/python -m course_utils.runbook --mode $(MODE) $(COURSE_ARGS)

# Chromium for the browser test (tests/test_lab_e2e.py), from Debian's package where apt
# may be used; best effort: without a browser that test skips and says how to get one.
browser:
	@if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then \
	  $(call apt_install,browser,chromium,for tests/test_lab_e2e.py); fi

# bubblewrap for make grade's sandbox, from Debian's package where apt may be used; best
# effort: without bwrap make grade refuses and says how to get it (or UNSAFE=1).
sandbox:
	@if [ "$$(uname -s)" = Linux ] && ! command -v bwrap >/dev/null && command -v apt-get >/dev/null; then \
	  $(call apt_install,sandbox,bubblewrap,for the grading sandbox); fi

# Debian's slurm-wlm and munge for tests/test_slurm.py, which starts a one-node Slurm on
# 127.0.0.1 as root (its own config, ports and munge socket; no system service is used).
# Root only (the test's cluster needs root), best effort: without them that test runs the
# launcher through submitit's local executor and says why.
slurm:
	@if [ "$$(uname -s)" = Linux ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    ! { [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && [ -x /usr/sbin/munged ] && \
	        command -v sbatch >/dev/null; }; then \
	  $(call apt_install,slurm,slurm-wlm munge,for tests/test_slurm.py); fi

# TEST_WORKERS: pytest-xdist processes; --dist loadfile keeps a file's tests (and a
# notebook's nbval cells) in one of them, in order (tests/conftest.py);
# each torch in them, and in the notebook kernels they start, uses one thread, so two
# workers on two cores do not stall each other's OpenMP threads. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: data browser sandbox slurm
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile \
	    --nbval-lax --nbval-current-env --durations=25 tests notebooks

# LAB_ARGS: extra options, e.g. LAB_ARGS="--no-browser --port 8899"
# MPLBACKEND is unset here: with Agg set in the environment the kernel would not switch to
# its inline backend and no plot would show in JupyterLab.
lab: setup
	env -u MPLBACKEND $(BIN)/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

# Student versions: lessons/<notebook>/<notebook>.ipynb, rewritten only when they change.
assignments: setup
	$(BIN)/python -m course_utils.classroom assignments

# No dataset: grading runs smoke mode, which trains (where a lesson does) on the sample in git.
grade: setup sandbox
	@if [ -z "$(SUBMISSIONS)" ]; then \
	  echo "make grade: set SUBMISSIONS to a folder of submitted notebooks:" \
	       "make grade SUBMISSIONS=dir [OUT=grades.csv] [TIMEOUT=seconds] [UNSAFE=1]" >&2; exit 2; fi
	$(BIN)/python -m course_utils.classroom grade "$(SUBMISSIONS)" --out "$(OUT)" --timeout="$(TIMEOUT)" \
	    --memory="$(MEMORY)" --processes="$(PROCESSES)" --file-size="$(FILESIZE)" \
	    --cpu-time="$(CPUTIME)" --scratch="$(SCRATCH)" --unsafe="$(UNSAFE)"

strip: setup
	$(BIN)/python -m course_utils.nbtools strip notebooks/*.ipynb

clean:
	rm -rf build .pytest_cache
