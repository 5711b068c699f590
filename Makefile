# Bootstrap and entry points. A fresh machine needs only Python 3.11+ with pip and venv:
#   make demo   — run the hub against an embedded test cluster
#   make test   — lint, every test tier that runs without Juju, and the packed charm (CI)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv test demo lint format unit cluster interop bench integration docs pack watcher-pythons clean lock

$(BIN)/tox: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	touch $(BIN)/tox

venv: $(BIN)/tox

test: venv
	$(BIN)/tox -e lint,unit,cluster,interop,coverage,pack,watcher-pythons

demo: venv
	$(BIN)/tox -e demo

lint format unit cluster interop bench integration docs pack watcher-pythons: venv
	$(BIN)/tox -e $@

# One lock source: requirements.txt pins the charm's runtime (the base's Python 3.12) and is
# compiled first; requirements.lock (development, Python 3.11+) is compiled under it as a
# constraint, so both hold the same runtime pins (tests/unit/test_packaging.py checks it). Keep
# charmcraft.yaml's charm-binary-python-packages equal to requirements.txt's names.
lock: venv
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.12 \
		--output-file requirements.txt --quiet
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--constraint requirements.txt --output-file requirements.lock --quiet

clean:
	rm -rf $(VENV) .tox .coverage*
