# Two commands matter: `make lab` and `make test` (see README.md).
# Each creates .venv on first use and reinstalls only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# JupyterLab refuses to run as root without this flag.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

PYTEST_ARGS ?=
# e.g. make app APP_ARGS='--port 9000 --no-browser'
APP_ARGS ?=

.PHONY: lab test bench clean

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

# The support app: a Voila dashboard (apps/support.ipynb) on http://127.0.0.1:8866/, a demo account unless
# LINQ_INTEGRATION_TOKEN is set. Ctrl-C stops it.
.PHONY: app
app: $(VENV)/.installed-app
	$(BIN)/linq-nb app $(APP_ARGS)

test: $(VENV)/.installed-test
	$(BIN)/ruff check linq_nb
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadfile \
	    --nbval --nbval-current-env --nbval-cell-timeout=120 \
	    --nbval-sanitize-with notebooks/sanitize.cfg \
	    tests notebooks $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
