# `make run`: the whole service on this machine (SQLite, a local queue and object store, one worker),
# served on http://127.0.0.1:8080. `make test`: the test suite. Both install what they need first.

VENV := .venv
PYTHON ?= python3

.PHONY: run test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[all]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/carml up

test:
	$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -e '.[test]' && $(VENV)/bin/python -m pytest
