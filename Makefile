# Two commands on a fresh machine: `make preview` (offline preview of prod) and `make test`.
PYTHON ?= python3
VENV ?= .venv
STACK ?= prod
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: preview test test-file-seconds lint snapshots test-prerequisites

# The preview needs only the stack's packages and the compliance report's linter.
$(VENV)/.preview-installed: requirements.txt requirements-preview.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-preview.txt
	touch $@

# The tests add the agent's packages, moto, pytest and the linters.
$(VENV)/.test-installed: $(VENV)/.preview-installed requirements-dev.txt requirements-agent.txt
	$(PIP) -r requirements-dev.txt
	touch $@

preview: $(VENV)/.preview-installed
	$(PY) -m review.preview --stack $(STACK)

# Refresh the committed policy documents and compliance report (snapshots/prod/).
snapshots: $(VENV)/.preview-installed
	$(PY) -m review.snapshots --stack prod

# Debian packages the tests need (restic, PostgreSQL 15, promtool, ...): installed when run as
# root, otherwise named with the command that installs them.
test-prerequisites:
	PYTHON=$(PYTHON) bash scripts/test-prerequisites

lint: $(VENV)/.test-installed
	$(PY) -m ruff check .

# Both cores of these 2-core machines (pytest-xdist): each worker takes whole test files and
# starts its own moto_server and PostgreSQL on free ports. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: test-prerequisites lint
	$(PY) -m pytest -n $(TEST_WORKERS)

# The same run, then each file's seconds into tests/file_seconds.json: the order the workers
# take files in next time (longest first, so that they finish together).
test-file-seconds: test-prerequisites lint
	$(PY) -m pytest -n $(TEST_WORKERS) --write-file-seconds
