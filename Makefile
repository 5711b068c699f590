# Bootstrap and entry points. A fresh machine needs only Python 3.11+ with pip and venv:
#   make demo   — run the hub against an embedded test cluster
#   make test   — lint, every test tier that runs without Juju, and the packed charm (CI)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv test demo lint format unit cluster interop bench integration docs pack watcher-pythons integration-charms integration-real clean lock

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

# On a machine with charmcraft (snap), a Juju >= 3.4 controller on Kubernetes and KUBECONFIG:
# pack both charms (the requirer gets a real copy of the lib, never a symlink), then run the
# integration suite against them.
REQUIRER := tests/integration/requirer-charm
integration-charms:
	rm -rf $(REQUIRER)/lib
	mkdir -p $(REQUIRER)/lib/charms
	cp -r lib/charms/spark_integration_hub_k8s $(REQUIRER)/lib/charms/
	charmcraft pack
	cd $(REQUIRER) && charmcraft pack

integration-real: venv integration-charms
	CHARM_PATH=$(firstword $(wildcard $(CURDIR)/spark-integration-hub-k8s_*.charm)) \
	REQUIRER_CHARM_PATH=$(firstword $(wildcard $(CURDIR)/$(REQUIRER)/spark-account-requirer_*.charm)) \
		$(BIN)/tox -e integration

clean:
	rm -rf $(VENV) .tox .coverage* $(REQUIRER)/lib *.charm $(REQUIRER)/*.charm
