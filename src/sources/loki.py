"""Reader of the `logging` relations (`loki_push_api`): a small typed reader of our own.

This module owns choosing the Loki push endpoint. Every Loki (or grafana-agent) unit writes its
own `endpoint` = `{"url": "http://…/loki/api/v1/push"}` in its *unit* databag, and Spark takes
one URL. The rule, deterministic and documented in `docs/reference/integrations.md`:

* relations in order of relation id, then units in order of unit number;
* units that are departing (the current `relation-departed` hook) are skipped;
* the first unit that has published `endpoint` is used — if its data is malformed the result is
  `Invalid` (naming that unit), not a silent fall-through to the next unit;
* related but no unit has published yet (or none is left): `Incomplete`.

The hub's own workload logs go to every Loki unit instead (`loki_push_urls`, the Pebble log
targets of `workload.sync_log_targets`), in the same order; a malformed unit is skipped there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import ops

from core.connections import FieldError, LokiEndpoint, MissingFieldsError, json_field
from core.inputs import Incomplete, Invalid, SourceResult
from core.properties import Source
from render.loki import render_loki
from sources.common import provider_name

ENDPOINT = Source.LOKI.value
FIELD = "endpoint"


def unit_order(unit: ops.Unit) -> tuple[str, int]:
    """Sort key of a unit: application name, then unit number."""
    app, _, number = unit.name.rpartition("/")
    return app, int(number) if number.isdigit() else -1


def candidate_units(
    relations: Iterable[ops.Relation], departing: Collection[str] = ()
) -> list[tuple[ops.Relation, ops.Unit]]:
    """Every remote unit in the documented order, departing units left out."""
    return [
        (relation, unit)
        for relation in sorted(relations, key=lambda r: r.id)
        for unit in sorted(relation.units, key=unit_order)
        if unit.name not in departing
    ]


def read_loki(
    relations: Collection[ops.Relation], departing: Collection[str] = ()
) -> SourceResult:
    """The Loki contribution from the first unit that published an endpoint (None unrelated)."""
    if not relations:
        return None
    for relation, unit in candidate_units(relations, departing):
        try:
            endpoint = json_field(relation.data[unit], FIELD, LokiEndpoint)
        except MissingFieldsError:
            continue
        except FieldError as error:
            return Invalid(
                ENDPOINT,
                f"`{error.field}` of {unit.name} ({provider_name(relation)}): {error.problem}",
            )
        return render_loki(endpoint)
    return Incomplete(ENDPOINT, "waiting for a Loki unit to publish its push `endpoint`")


def loki_push_urls(
    relations: Collection[ops.Relation], departing: Collection[str] = ()
) -> list[str]:
    """Every valid push URL, one per unit, in `candidate_units` order (for log forwarding)."""
    urls: list[str] = []
    for relation, unit in candidate_units(relations, departing):
        try:
            endpoint = json_field(relation.data[unit], FIELD, LokiEndpoint)
        except (MissingFieldsError, FieldError):  # nothing usable from this unit
            continue
        if (url := str(endpoint.url)) not in urls:
            urls.append(url)
    return urls
