"""What one source of properties can say on a pass: its contribution, or why it has none.

A source (the charm's config or one integration) is read into exactly one `SourceResult`:

* a `Contribution` — the properties it provides;
* `None` — the source is not there (relation absent, option unset): it contributes nothing;
* `Incomplete` — it is there but has not delivered everything yet: the hub waits and leaves
  existing Secrets untouched;
* `Invalid` — it delivered something the hub cannot use: the hub is blocked, naming the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.properties import Contribution


@dataclass(frozen=True)
class Incomplete:
    """A related source that has not delivered complete data yet."""

    endpoint: str
    reason: str

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.reason}"


@dataclass(frozen=True)
class Invalid:
    """A source whose data or config cannot be used; `message` names the field and the fix."""

    endpoint: str
    message: str

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.message}"


SourceResult = Contribution | Incomplete | Invalid | None
