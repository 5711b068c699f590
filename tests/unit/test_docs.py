"""The docs agree with the code: generated pages, examples and the lists of what exists."""

import re
from pathlib import Path

import yaml

from core.cluster import AccountRef, Owner
from core.manifest import render_manifest
from tests import docs_gen

DOCS = Path(__file__).parents[2] / "docs"
CHARMCRAFT = Path(__file__).parents[2] / "charmcraft.yaml"


def test_state_machine_page_is_up_to_date():
    assert docs_gen.TARGET.read_text() == docs_gen.render(), "run `tox -e docs`"


def test_the_manifest_example_is_what_the_code_answers():
    page = (DOCS / "reference" / "spark-service-account.md").read_text()
    section = page[page.index("## The manifest") :]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert example is not None
    owner = Owner("spark-integration-hub-k8s", "6f1c1a4e-0000-4000-8000-00000000d3e0")
    assert example.group(1) == render_manifest(AccountRef("kubeflow-profile-a", "spark"), owner)


def test_every_option_has_a_row_with_its_default_in_the_config_reference():
    options = yaml.safe_load(CHARMCRAFT.read_text())["config"]["options"]
    page = (DOCS / "reference" / "config.md").read_text()
    for name, option in options.items():
        row = re.search(rf"^\| `{re.escape(name)}` \| (\w+) \| `([^`]*)` \|", page, re.M)
        assert row is not None, f"{name} has no row in docs/reference/config.md"
        default = option.get("default", "")
        shown = str(default).lower() if isinstance(default, bool) else str(default) or '""'
        assert row.groups() == (option["type"], shown), name
