"""Reader of the `cos` relation (`pushgateway`): a small typed reader of our own.

This module owns reading the push gateway's address. The provider (prometheus-pushgateway-k8s)
writes `push-endpoint` = `{"url": "http://host:9091"}` in its application databag; there is no
PyPI library for the interface, so the JSON is parsed here into `core.connections.PushEndpoint`.
"""

from __future__ import annotations

import ops

from core.connections import FieldError, MissingFieldsError, PushEndpoint, json_field
from core.inputs import Incomplete, SourceResult
from core.properties import Source
from render.pushgateway import render_pushgateway
from sources.common import invalid_field, waiting_for

ENDPOINT = Source.PUSHGATEWAY.value
FIELD = "push-endpoint"


def read_pushgateway(relation: ops.Relation | None) -> SourceResult:
    """The push-gateway contribution (None without a relation)."""
    if relation is None:
        return None
    try:
        endpoint = json_field(relation.data[relation.app], FIELD, PushEndpoint)
    except MissingFieldsError as missing:
        return Incomplete(ENDPOINT, waiting_for(missing.fields, relation))
    except FieldError as error:
        return invalid_field(ENDPOINT, error, relation)
    return render_pushgateway(endpoint)
