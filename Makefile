# Two commands on a fresh machine: `make preview` (offline preview of prod) and `make test`.
PYTHON ?= python3
VENV ?= .venv
STACK ?= prod
PY := $(VENV)/bin/python

.PHONY: preview test lint snapshots

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-agent.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

preview: $(VENV)/.installed
	$(PY) -m components.preview --stack $(STACK)

# Refresh the committed policy documents and compliance report (snapshots/prod/).
snapshots: $(VENV)/.installed
	$(PY) -m compliance.snapshots --stack prod

lint: $(VENV)/.installed
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest
