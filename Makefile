# Two commands matter: `make lab` and `make test` (see README.md).
# Each creates .venv on first use and reinstalls only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# JupyterLab refuses to run as root without this flag.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

PYTEST_ARGS ?=
# Extra options for `jupyter lab`, e.g. make lab LAB_ARGS='--port 8899 --no-browser --IdentityProvider.token=abc'
LAB_ARGS ?=
# e.g. make app APP_ARGS='--port 9000 --no-browser'
APP_ARGS ?=

.PHONY: help lab test bench mutate clean binder-url
.DEFAULT_GOAL := help

help:
	@echo "make lab     JupyterLab on notebooks/ against a built-in sandbox (LAB_ARGS='--port 8899 --no-browser' ...)"
	@echo "make app     the support app (Voila) on http://127.0.0.1:8866/ (APP_ARGS='--port 9000 --no-browser')"
	@echo "make test    ruff, mypy and every test (PYTEST_ARGS='-m \"not slow and not browser\"' to narrow)"
	@echo "make bench   the benchmarks in bench/, each against its baseline"
	@echo "make mutate  mutation testing of the modules that decide (MODULES='signing client' to narrow)"
	@echo "make clean   remove .venv and the caches"
	@echo "make binder-url  the Binder links of this repository (from its GitHub remote)"
	@echo "The command-line tools are in .venv/bin once a target has run: .venv/bin/linq-nb --help"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# rfc3987-syntax, an optional validator of jupyter-events, doubles JupyterLab's start (1.5 s -> 0.7 s here).
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	$(BIN)/python -m pip uninstall --quiet -y rfc3987-syntax
	touch $@

# jupyter_config/ turns off JupyterLab's "notified about official Jupyter news?" toast, which would cover
# part of every notebook (and news_url=None stops the feed being fetched at all).
lab: $(VENV)/.installed-lab
	@echo "Sandbox mode: notebooks use an embedded sandbox. Set LINQ_INTEGRATION_TOKEN to use the live API."
	@echo "JupyterLab opens a browser and prints its URL with a token (http://localhost:8888/lab?token=...);"
	@echo "open that URL if no browser appears. Ctrl-C twice stops it."
	JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter_config $(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) \
	    --LabApp.news_url=None $(LAB_ARGS)

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

# Mutation testing of the modules that decide, with the score per module and every surviving mutant.
# `make mutate MODULES="signing client"` runs only those (see mutation/mutate.py).
MODULES ?=
mutate: $(VENV)/.installed-test
	nice -n 10 $(BIN)/python mutation/mutate.py $(MODULES)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache mutants

# Binder needs the repository on GitHub: derive the link from the remote rather than guess an owner.
binder-url:
	@remote=$$(git remote get-url origin 2>/dev/null); \
	repo=$$(printf '%s\n' "$$remote" | sed -nE 's#^(git@github\.com:|https://github\.com/)([^/]+/[^/]+)$$#\2#p' | sed 's#\.git$$##'); \
	if [ -z "$$repo" ]; then \
	    echo "No GitHub remote named origin. Push this repository to GitHub (git remote add origin git@github.com:<owner>/<repo>.git; git push -u origin HEAD), then run make binder-url again." >&2; \
	    exit 1; \
	fi; \
	branch=$$(git rev-parse --abbrev-ref HEAD); \
	echo "notebooks:   https://mybinder.org/v2/gh/$$repo/$$branch?labpath=notebooks%2F01-quickstart.ipynb"; \
	echo "support app: https://mybinder.org/v2/gh/$$repo/$$branch?urlpath=voila%2Frender%2Fapps%2Fsupport.ipynb"
