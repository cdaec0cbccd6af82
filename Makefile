# Two commands on a fresh machine (no root needed):
#   make run    set up .venv (with detectron2 when the network allows) and run the workflow on videos/
#   make test   set up .venv and run the test suite (changes nothing outside the checkout: the SLURM
#               test, which installs packages as root, runs only with PYTEST_ARGS=--run-slurm)
# Python >= 3.10 with venv and a C/C++ compiler (for detectron2) are all that is assumed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Tests use the CPU build of torch; the main job uses the newest pair that detectron2 builds against.
TEST_TORCH ?= torch==2.13.0
RUN_TORCH ?= torch==2.14.1 torchvision==0.29.1
# detectron2 is not on PyPI: a pinned commit of its repository, built against the installed torch.
DETECTRON2_COMMIT ?= 02b5c4e295e990042a714712c21dc79b731e8833
DETECTRON2_SPEC ?= git+https://github.com/facebookresearch/detectron2.git@$(DETECTRON2_COMMIT)
# The torch a fresh .venv gets: the main job's pair for `make run`, the CPU build for everything else.
TORCH_SPEC ?= $(TEST_TORCH)
run detectron2: TORCH_SPEC = $(RUN_TORCH)
PROFILE ?= profiles/workstation
SNAKEMAKE_ARGS ?=

.PHONY: run test lint setup detectron2 bench clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Base install: torch only when none is there yet (keeps the main job's torch if `make run` came first).
$(VENV)/.posepipe: pyproject.toml | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH_SPEC)
	$(PIP) install -q -e ".[test]"
	touch $@

setup: $(VENV)/.posepipe

detectron2: setup
	@if $(PY) -c "import detectron2" 2>/dev/null; then echo "detectron2 already installed"; else \
	  echo "Installing detectron2 $(DETECTRON2_COMMIT) (needs network, gcc/g++ and Python headers; a few minutes)"; \
	  ( $(PIP) install -q $(RUN_TORCH) "setuptools<81" ninja wheel && \
	    $(PIP) install --no-build-isolation "$(DETECTRON2_SPEC)" ) || \
	  echo "WARNING: detectron2 could not be installed (offline?). The keypoints2d rule will say how to install it;" \
	       "with keypoints2d.source: file the rest of the workflow runs without it."; \
	fi

run: detectron2
	@mkdir -p videos
	@ls videos | grep -q . || echo "videos/ is empty: put your videos there (mp4, mov, avi, mkv, webm, m4v)"
	$(VENV)/bin/snakemake --profile $(PROFILE) $(SNAKEMAKE_ARGS)

lint: setup
	$(VENV)/bin/ruff check posepipe tests bench
	$(VENV)/bin/ruff format --check posepipe tests bench
	@mkdir -p videos  # the input folder must exist (a missing one is an error, as for make run)
	$(VENV)/bin/snakemake --lint

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(PY) bench/bench_dag.py

clean-venv:
	rm -rf $(VENV)
