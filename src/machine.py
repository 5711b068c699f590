"""The hub's state machine (transitions): its states, its one transitions table, its statuses.

A pass evaluates the inputs and fires exactly one of `block`, `wait` or `reconcile`; a
reconciling pass that leaves every account settled then fires `converge`. The state is
persisted in the store between hooks, and each state maps to one Juju status whose message
carries the counts.

    blocked                   the operator must act: bad config, bad relation data, no trust
    waiting-for-integrations  nothing to distribute yet, or a related provider has not delivered
                              complete data; existing Secrets are left untouched
    reconciling               distributing; accounts remain pending or failed
    active                    every account in scope is settled (in sync or a reported conflict)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

from transitions import Machine

logger = logging.getLogger(__name__)


class HubState(str, Enum):
    """The four states of the hub."""

    BLOCKED = "blocked"
    WAITING = "waiting-for-integrations"
    RECONCILING = "reconciling"
    ACTIVE = "active"


ALL_STATES = [state.value for state in HubState]

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "block", "source": ALL_STATES, "dest": HubState.BLOCKED.value},
    {"trigger": "wait", "source": ALL_STATES, "dest": HubState.WAITING.value},
    {"trigger": "reconcile", "source": ALL_STATES, "dest": HubState.RECONCILING.value},
    {"trigger": "converge", "source": HubState.RECONCILING.value, "dest": HubState.ACTIVE.value},
]
"""The transitions table: every edge of the machine, and nothing else."""

JUJU_STATUS = {
    HubState.BLOCKED: "blocked",
    HubState.WAITING: "waiting",
    HubState.RECONCILING: "maintenance",
    HubState.ACTIVE: "active",
}
"""The Juju status name each state is shown as."""


@dataclass(frozen=True)
class StatusReport:
    """A Juju status: its name (`active`, `blocked`, ...) and message."""

    name: str
    message: str


class HubMachine:
    """The state machine of one hub unit, starting from a persisted state.

    Attributes:
        state: the current state's value (set by transitions).
        reason: why the machine is in its state (shown in the status message).
    """

    state: str

    def __init__(self, initial: str | None = None) -> None:
        """Create the machine in `initial` (a `HubState` value), by default waiting."""
        known = initial if initial in ALL_STATES else HubState.WAITING.value
        self.reason = ""
        self.path: list[tuple[str, str, str]] = []
        self._machine = Machine(
            model=self,
            states=ALL_STATES,
            transitions=TRANSITIONS,
            initial=known,
            auto_transitions=False,
            send_event=True,
            after_state_change="_record",
        )

    def _record(self, event: Any) -> None:
        edge = (event.transition.source, event.event.name, event.transition.dest)
        self.path.append(edge)
        logger.info("hub state %s --%s--> %s", *edge)

    @property
    def current(self) -> HubState:
        """The current state."""
        return HubState(self.state)

    def fire(self, trigger: str, reason: str = "") -> None:
        """Fire `trigger` (one of the table's triggers), remembering `reason`."""
        self.reason = reason
        self.trigger(trigger)  # type: ignore[attr-defined]  # added by transitions


def status_for(state: HubState, reason: str) -> StatusReport:
    """The Juju status of `state`, with the reason (which carries the counts) as message."""
    return StatusReport(JUJU_STATUS[state], reason)


def mermaid_diagram() -> str:
    """The machine drawn from `TRANSITIONS` as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", f"    [*] --> {_node(HubState.WAITING.value)}"]
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for source in sources:
            lines.append(f"    {_node(source)} --> {_node(row['dest'])}: {row['trigger']}")
    return "\n".join(lines) + "\n"


def _node(state: str) -> str:
    return state.replace("-", "_")
