"""The state machine's table, statuses and generated diagram."""

import pytest
from transitions import MachineError

from machine import ALL_STATES, TRANSITIONS, HubMachine, HubState, mermaid_diagram, status_for


def edges():
    for row in TRANSITIONS:
        for source in row["source"] if isinstance(row["source"], list) else [row["source"]]:
            yield source, row["trigger"], row["dest"]


@pytest.mark.parametrize(("source", "trigger", "dest"), list(edges()))
def test_every_edge_of_the_table(source, trigger, dest):
    machine = HubMachine(source)
    machine.fire(trigger, "why")
    assert machine.current == HubState(dest)
    assert machine.reason == "why"


@pytest.mark.parametrize("source", [s for s in ALL_STATES if s != HubState.RECONCILING.value])
def test_only_reconciling_converges(source):
    with pytest.raises(MachineError):
        HubMachine(source).fire("converge")


def test_unknown_persisted_state_starts_waiting():
    assert HubMachine("gibberish").current is HubState.WAITING
    assert HubMachine(None).current is HubState.WAITING


def test_each_state_has_one_juju_status():
    assert {status_for(s, "m").name for s in HubState} == {
        "blocked",
        "waiting",
        "maintenance",
        "active",
    }


def test_diagram_is_drawn_from_the_table():
    diagram = mermaid_diagram()
    assert diagram.count("-->") == len(list(edges())) + 1
    assert "reconciling --> active: converge" in diagram
