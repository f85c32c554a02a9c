# The README's two commands: `make demo` and `make test`. Each sets up everything it needs.
#   make demo   venv + install, then `dvc repro` of the pipeline on the generated demo data set
#               and `dvc metrics show`
#   make test   venv + install, then lint (ruff) and the test suite (pytest)
# Pick another torch build with TORCH_SPEC / TORCH_INDEX, e.g.
#   make demo TORCH_SPEC="torch==2.13.0" TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu128"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.nrdfer-installed

# dvc.yaml's commands call `python`: the venv's, whatever the shell had on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0

.PHONY: demo test venv lint paper paper-smoke noise clean-venv

venv: $(STAMP)

# Re-install when pyproject.toml or the torch spec changes. Keep pip's byte-compilation: with
# PYTHONDONTWRITEBYTECODE set (as on our CI machines) a --no-compile venv recompiles torch and
# dvc in every stage process (import torch 7.9 s instead of 4.5 s; the test suite 17 min, not 10).
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(TORCH_INDEX)
	$(BIN)/python -m pip install -q -e ".[dev]"
	@echo "$(TORCH_SPEC)" > $(STAMP)

ifneq ($(shell cat $(STAMP) 2>/dev/null),$(TORCH_SPEC))
.PHONY: $(STAMP)
endif

demo: venv
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show

# The controlled-noise benchmark (docs/noise.md): noise/, a DVC project of its own (its own
# dvc.yaml, dvc.lock and cache), not part of `make demo`; the project root's `dvc status` does
# not see it. At the paper's sizes on a GPU: make noise PRESET=presets/paper.yaml (a DVC
# experiment with the preset's -S options; ARGS="-S key=value ..." adds more).
noise: venv
ifdef PRESET
	$(BIN)/nrdfer preset $(PRESET) $(ARGS) --target noise --run
else
	cd noise && $(abspath $(BIN))/dvc repro
endif
	@cat noise/reports/table.md

# The paper on your licensed copies: the paper's sizes and schedule (presets/paper.yaml) as a DVC
# experiment, e.g. make paper DFEW=/data/DFEW AFEW=/data/AFEW FERV39K=/data/FERV39k MAFW=/data/MAFW
# [ARGS="-S key=value ..."]; AFEW, FERV39K and MAFW are optional (without one, its stages run on
# the generated demo set at the paper's sizes)
paper: venv
	@test -n "$(DFEW)" || { echo "usage: make paper DFEW=/path/to/DFEW [AFEW=/path/to/AFEW] [FERV39K=/path/to/FERV39k] [MAFW=/path/to/MAFW]"; exit 2; }
	$(BIN)/nrdfer preset presets/paper.yaml -S source.dfew_root=$(DFEW) \
		$(if $(AFEW),-S source.afew_root=$(AFEW)) $(if $(FERV39K),-S source.ferv39k_root=$(FERV39K)) \
		$(if $(MAFW),-S source.mafw_root=$(MAFW)) $(ARGS) --run

# make paper's command at the paper's sizes on a small generated data set with random-weight
# RetinaFace-ResNet-50 / EnlightenGAN files, ingest to report, on CPU (about 11 min on 2 cores)
paper-smoke: venv
	$(BIN)/python benchmarks/paper_smoke.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
