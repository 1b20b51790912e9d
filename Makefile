# kdtutor — three commands: `make lab`, `make course`, `make test`.
# Each creates .venv (if missing) and installs the package with its dev extras first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# JupyterLab refuses to start as root (containers, many cloud machines) without --allow-root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: help install lab course test unit notebooks benchmark gpu-check book book-check prepare generate clean

help:
	@echo "make lab        open the course in JupyterLab"
	@echo "make course     run every lesson headless (KDTUTOR_PROFILE picks the size), write results/"
	@echo "make test       unit tests + every notebook under nbval, in the tiny 'smoke' profile"
	@echo "make unit       unit tests only"
	@echo "make notebooks  (maintainers) re-run notebooks and store the outputs nbval compares"
	@echo "make generate   (maintainers) badges, setup cells and instructor/ notebooks from notebooks/ + solutions/"
	@echo "make prepare    fetch the data and check this machine (PROFILE=cpu, PRETRAIN=1 to pre-train)"
	@echo "make book       build the course website in build/book/html (BOOK_PROFILE=smoke)"
	@echo "make book-check open every page of that website in headless Chromium (screenshots in results/test-artefacts/site)"
	@echo "make benchmark  training speed on this machine"
	@echo "make gpu-check  train the gpu profile's teacher and a student on this GPU, report against the targets"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "kdtutor needs Python >= 3.10; run e.g. make PYTHON=python3.11")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,book]"
	touch $(STAMP)

install: $(STAMP)

lab: install
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG)

course: install
	$(BIN)/python -m kdtutor course

test: install
	KDTUTOR_PROFILE=smoke MPLBACKEND=Agg $(BIN)/python -m pytest tests notebooks --nbval-lax

unit: install
	KDTUTOR_PROFILE=smoke MPLBACKEND=Agg $(BIN)/python -m pytest tests

notebooks: install
	$(BIN)/python -m kdtutor refresh-notebooks

benchmark: install
	$(BIN)/python benchmarks/train_speed.py

gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py

generate: install
	$(BIN)/python -m kdtutor generate

PROFILE ?=
BOOK_PROFILE ?= smoke
prepare: install
	$(BIN)/python -m kdtutor prepare $(if $(PROFILE),--profile $(PROFILE)) $(if $(PRETRAIN),--pretrain)

book: install
	$(BIN)/python -m kdtutor book --profile $(BOOK_PROFILE)

book-check: install
	KDTUTOR_BOOK_HTML=build/book/html $(BIN)/python -m pytest tests/test_book.py

clean:
	rm -rf results build .pytest_cache
