# kdtutor — three commands: `make lab`, `make course`, `make test`.
# Each creates .venv (if missing) and installs what it needs first: the lessons' packages only
# for lab/course/prepare (python -m kdtutor install: CPU-only PyTorch on Linux without an NVIDIA
# GPU), plus the test and website tools for test, the website tools for book.
# Without make (Windows): python -m kdtutor install, python -m kdtutor lab, ... (see README).
# The learner's commands are python -m kdtutor; the course tooling's (course runner, grading,
# stored outputs, website, release) python -m coursetools, which learners' releases do not ship.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LAB_STAMP  := $(VENV)/.lab-stamp
TEST_STAMP := $(VENV)/.test-stamp
BOOK_STAMP := $(VENV)/.book-stamp
TORCH ?= auto
# PINS=requirements/workshop.txt installs the workshop's pinned versions.
PINS ?=

.PHONY: help install lab course test unit notebooks benchmark gpu-check book book-check prepare generate lock clean

help:
	@echo "make lab        open the course in JupyterLab"
	@echo "make course     run every lesson headless (KDTUTOR_PROFILE picks the size), write results/"
	@echo "make test       unit tests + every notebook under nbval, in the tiny 'smoke' profile"
	@echo "make unit       the fast lane: unit tests without notebooks, course runs, grading end to end (< 3 min)"
	@echo "make notebooks  (maintainers) re-run the lessons (smoke) and store the outputs nbval compares;"
	@echo "                PROFILE=cpu also stores the reference run's outputs (from results/cpu/ or by running);"
	@echo "                LESSONS=\"03 04\" only those lessons"
	@echo "make generate   (maintainers) badges, setup cells and instructor/ notebooks from notebooks/ + solutions/"
	@echo "make prepare    fetch the data and check this machine (PROFILE=cpu, PRETRAIN=1 also runs every lesson once;"
	@echo "                WHEELHOUSE=DIR instead downloads a room's wheels into DIR)"
	@echo "make book       build the course website in build/book/html from the lessons' stored outputs"
	@echo "                (no training); BOOK_PROFILE=smoke instead runs the course in that profile first"
	@echo "make book-check open every page of that website in headless Chromium (screenshots in results/test-artefacts/site)"
	@echo "make lock       (maintainers) regenerate requirements/workshop.txt, the workshop's pinned versions"
	@echo "make benchmark  training speed on this machine"
	@echo "make gpu-check  train the gpu profile's teacher and a student on this GPU, report against the targets"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "kdtutor needs Python >= 3.10; run e.g. make PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# What the lessons need, nothing more.
$(LAB_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m kdtutor install --torch $(TORCH) $(if $(PINS),--constraints $(PINS))
	touch $@

# + the test tools (pytest, nbval, hypothesis, torchmetrics) and the website tools: make test
# runs the website's tests too.
$(TEST_STAMP): $(LAB_STAMP)
	$(BIN)/python -m pip install --quiet $(if $(PINS),--constraint $(PINS)) -e ".[dev,book]"
	touch $@

# + the website tools (sphinx, myst-nb, playwright).
$(BOOK_STAMP): $(LAB_STAMP)
	$(BIN)/python -m pip install --quiet $(if $(PINS),--constraint $(PINS)) -e ".[book]"
	touch $@

install: $(LAB_STAMP)

lab: $(LAB_STAMP)
	$(BIN)/python -m kdtutor lab

course: $(LAB_STAMP)
	$(BIN)/python -m coursetools course $(if $(PROFILE),--profile $(PROFILE))

test: $(TEST_STAMP)
	KDTUTOR_PROFILE=smoke MPLBACKEND=Agg $(BIN)/python -m pytest tests notebooks --nbval-lax

# The fast lane: no notebook execution, course run, end-to-end grading, torchrun, browser or site build.
unit: $(TEST_STAMP)
	KDTUTOR_PROFILE=smoke MPLBACKEND=Agg $(BIN)/python -m pytest tests -m "not slow"

LESSONS ?=
notebooks: $(LAB_STAMP)
	$(BIN)/python -m coursetools refresh-notebooks $(if $(PROFILE),--profile $(PROFILE)) $(LESSONS)

benchmark: $(LAB_STAMP)
	$(BIN)/python benchmarks/train_speed.py

gpu-check: $(LAB_STAMP)
	$(BIN)/python benchmarks/gpu_check.py

generate: $(LAB_STAMP)
	$(BIN)/python -m coursetools generate

# The workshop's pinned versions, from pyproject.toml and requirements/workshop.in (uv, from PyPI).
lock: $(LAB_STAMP)
	$(BIN)/python -m pip install --quiet "uv>=0.5"
	$(BIN)/uv pip compile pyproject.toml requirements/workshop.in --universal --python-version 3.10 -o requirements/workshop.txt

PROFILE ?=
BOOK_PROFILE ?=
prepare: $(LAB_STAMP)
	$(BIN)/python -m $(if $(WHEELHOUSE),coursetools wheelhouse $(WHEELHOUSE),$(if $(PRETRAIN),coursetools pretrain,kdtutor prepare) $(if $(PROFILE),--profile $(PROFILE)))

book: $(BOOK_STAMP)
	$(BIN)/python -m coursetools book $(if $(BOOK_PROFILE),--profile $(BOOK_PROFILE))

book-check: $(TEST_STAMP)
	KDTUTOR_BOOK_HTML=build/book/html $(BIN)/python -m pytest tests/test_book.py

clean:
	rm -rf results build .pytest_cache
