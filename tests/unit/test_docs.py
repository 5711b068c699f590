"""The generated docs agree with the code."""

from tests import docs_gen


def test_state_machine_page_is_up_to_date():
    assert docs_gen.TARGET.read_text() == docs_gen.render(), "run `tox -e docs`"
