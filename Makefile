# Bootstrap and entry points. A fresh machine needs only Python 3.11+ and pip:
#   make demo   — run the hub against an embedded test cluster
#   make test   — lint and every test tier that runs without Juju (what CI runs)
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

lock: venv
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--output-file requirements.lock --quiet
	$(BIN)/uv pip compile pyproject.toml --python-version 3.12 \
		--output-file requirements.txt --quiet

clean:
	rm -rf $(VENV) .tox .coverage*
