# Two commands on a fresh machine (no root needed):
#   make run    set up .venv (with detectron2 when the settings need it and the network allows) and
#               run the workflow on videos/
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
# The torch a fresh .venv gets: the main job's pair for `make run`, TEST_TORCH for everything else;
# as CUDA builds (PyPI's) where an NVIDIA driver is installed, else as CPU builds (the same
# versions with +cpu: no GBs of CUDA libraries). NVIDIA=yes when /proc/driver/nvidia/version exists
# or nvidia-smi is on PATH; set NVIDIA=yes or NVIDIA=no to choose. A CPU build comes from what pip
# is configured with (local wheels, a mirror), else from PyTorch's CPU index (TORCH_CPU_INDEX).
NVIDIA ?= $(shell if [ -e /proc/driver/nvidia/version ] || command -v nvidia-smi >/dev/null 2>&1; then echo yes; else echo no; fi)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SPEC ?= $(TEST_TORCH)
run detectron2 detectron2-if-needed: TORCH_SPEC = $(RUN_TORCH)
# Without a driver `make run` does not need the main job's pair unless detectron2 is built: the
# base install takes TEST_TORCH's CPU build, and detectron2 (if needed) RUN_TORCH's.
BASE_TORCH = $(if $(filter yes,$(NVIDIA)),$(TORCH_SPEC),$(TEST_TORCH))
cpu_build = $(foreach p,$(1),$(p)+cpu)
# $(call install_torch,SPECS): pip install of torch packages, CUDA or CPU builds as chosen above.
install_torch = $(if $(filter yes,$(NVIDIA)),\
	echo "torch: $(1) (NVIDIA driver found: CUDA build)" && $(PIP) install -q $(1),\
	echo "torch: $(call cpu_build,$(1)) (no NVIDIA driver: CPU build; NVIDIA=yes for CUDA)" && \
	{ $(PIP) install -q $(call cpu_build,$(1)) 2>/dev/null || \
	  $(PIP) install -q --extra-index-url $(TORCH_CPU_INDEX) $(call cpu_build,$(1)); })
# Why the last detectron2 install failed (one line); while it is there `make run` does not retry.
DETECTRON2_FAILED := $(VENV)/.detectron2-failed
DETECTRON2_LOG := $(VENV)/detectron2-install.log
PROFILE ?= profiles/workstation
SNAKEMAKE_ARGS ?=

# `make image`: the container image (README, "Run in a container"). The base image the Containerfile
# names is pulled, or where no registry answers made with debootstrap (tools/container-base.sh,
# root); then ENGINE build. IMAGE_ARGS: more build options, e.g. --build-arg FLAVOUR=cuda.
ENGINE ?= podman
IMAGE ?= posepipe
IMAGE_ARGS ?=

.PHONY: run test lint setup detectron2 detectron2-if-needed bench clean-venv image

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Base install: torch only when none is there yet (keeps the main job's torch if `make run` came first).
$(VENV)/.posepipe: pyproject.toml | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || { $(call install_torch,$(BASE_TORCH)); }
	$(PIP) install -q -e ".[test]"
	touch $@

setup: $(VENV)/.posepipe

# `make detectron2`: install it now (also after a failure that `make run` no longer retries).
detectron2: setup
	@rm -f $(DETECTRON2_FAILED)
	@$(MAKE) --no-print-directory detectron2-if-needed NEEDS_DETECTRON2=yes

# For `make run`: only when the settings (config.yaml, then SNAKEMAKE_ARGS' --configfile and
# --config) say keypoints2d.source: detectron2, and not again after a failure (one line says why).
detectron2-if-needed: setup
	@source=$${NEEDS_DETECTRON2:+detectron2}; \
	[ -n "$$source" ] || source=$$($(PY) -m posepipe settings keypoints2d.source -- $(SNAKEMAKE_ARGS)) || exit 1; \
	if [ "$$source" != detectron2 ]; then \
	  echo "detectron2: not needed (keypoints2d.source: $$source)"; \
	elif $(PY) -c "import detectron2" 2>/dev/null; then \
	  echo "detectron2: installed"; \
	elif [ -f $(DETECTRON2_FAILED) ]; then \
	  echo "detectron2: not installed, $$(cat $(DETECTRON2_FAILED)); \`make detectron2\` tries again"; \
	else \
	  echo "Installing detectron2 $(DETECTRON2_COMMIT) (needs network, gcc/g++ and Python headers; a few minutes; log: $(DETECTRON2_LOG))"; \
	  : > $(DETECTRON2_LOG); failed=; \
	  step() { what=$$1; shift; from=$$(($$(wc -l < $(DETECTRON2_LOG)) + 1)); \
	    "$$@" >> $(DETECTRON2_LOG) 2>&1 || { failed=$$what; return 1; }; }; \
	  step "torch for it ($(if $(filter yes,$(NVIDIA)),$(TORCH_SPEC),$(call cpu_build,$(TORCH_SPEC))))" \
	      sh -c '$(subst ','"'"',$(call install_torch,$(TORCH_SPEC)))' && \
	    step "its build tools" $(PIP) install -q "setuptools<81" ninja wheel && \
	    step "$(DETECTRON2_SPEC)" $(PIP) install --no-build-isolation "$(DETECTRON2_SPEC)"; \
	  if [ -z "$$failed" ]; then \
	    echo "detectron2: installed"; \
	  else \
	    tail -n +$$from $(DETECTRON2_LOG) > $(DETECTRON2_LOG).step; \
	    reason=$$(grep -E '^ *(fatal|ERROR|error):' $(DETECTRON2_LOG).step | grep -v subprocess-exited-with-error | head -n 1 | sed 's/^ *//'); \
	    [ -n "$$reason" ] || reason=$$(grep -v '^ *$$' $(DETECTRON2_LOG).step | tail -n 1); \
	    offline=$$(grep -m1 -o -E 'Could not resolve host: [^ ]+|Name or service not known|Network is unreachable|Connection refused' $(DETECTRON2_LOG).step); \
	    rm -f $(DETECTRON2_LOG).step; \
	    reason="could not install $$failed: $$reason$${offline:+ (no network? $$offline)}"; \
	    echo "failed on $$(date -u +%F): $$reason (log: $(DETECTRON2_LOG))" > $(DETECTRON2_FAILED); \
	    echo "detectron2: $$reason"; \
	    echo "  (full log: $(DETECTRON2_LOG); keypoints2d.source: file needs no detectron2; \`make detectron2\` tries again)"; \
	  fi; \
	fi

run: detectron2-if-needed
	@mkdir -p videos
	@ls videos | grep -q . || echo "videos/ is empty: put your videos there (mp4, mov, avi, mkv, webm, m4v)"
	$(VENV)/bin/snakemake --profile $(PROFILE) $(SNAKEMAKE_ARGS)

lint: setup
	$(VENV)/bin/ruff check posepipe tests bench
	$(VENV)/bin/ruff format --check posepipe tests bench
	@mkdir -p videos  # the input folder must exist (a missing one is an error, as for make run)
	$(VENV)/bin/snakemake --lint

# tests/test_opensim.py in a process of its own (tests/conftest.py says why).
test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)
	$(PY) -m pytest -q $(PYTEST_ARGS) tests/test_opensim.py

bench: setup
	$(PY) bench/bench_dag.py

image:
	ENGINE=$(ENGINE) tools/container-base.sh
	$(ENGINE) build -f Containerfile $(IMAGE_ARGS) -t $(IMAGE) .
	@echo "image $(IMAGE): $$($(ENGINE) image inspect --format '{{.Size}}' $(IMAGE)) bytes"

clean-venv:
	rm -rf $(VENV)
