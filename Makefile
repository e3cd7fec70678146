# Two commands matter: `make lab` and `make test` (see README.md).
# Each creates .venv on first use and reinstalls only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# JupyterLab refuses to run as root without this flag.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

PYTEST_ARGS ?=

.PHONY: lab test bench mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# rfc3987-syntax, an optional validator of jupyter-events, doubles JupyterLab's start (1.5 s -> 0.7 s here).
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	$(BIN)/python -m pip uninstall --quiet -y rfc3987-syntax
	touch $@

lab: $(VENV)/.installed-lab
	@echo "Sandbox mode: notebooks use an embedded sandbox. Set LINQ_INTEGRATION_TOKEN to use the live API."
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

test: $(VENV)/.installed-test
	$(BIN)/ruff check linq_nb
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadfile \
	    --nbval --nbval-current-env --nbval-cell-timeout=120 \
	    --nbval-sanitize-with notebooks/sanitize.cfg \
	    tests notebooks $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run_all.py

# Mutation testing of the modules that decide, with the score per module and every surviving mutant.
# `make mutate MODULES="signing client"` runs only those (see mutation/mutate.py).
MODULES ?=
mutate: $(VENV)/.installed-test
	nice -n 10 $(BIN)/python mutation/mutate.py $(MODULES)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache mutants
