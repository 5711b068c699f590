"""Loki: `LOKI_URL` from a unit's `endpoint`, and bad data."""

import pytest

from core.connections import FieldError, LokiEndpoint, MissingFieldsError, json_field
from core.properties import Source
from render.loki import render_loki

URL = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"


def test_loki_url_for_driver_and_executors():
    # `LokiPushApiProvider` writes json.dumps({"url": ...}) in each unit's databag.
    endpoint = json_field({"endpoint": f'{{"url": "{URL}"}}'}, "endpoint", LokiEndpoint)
    contribution = render_loki(endpoint)
    assert contribution.source is Source.LOKI
    assert contribution.sensitive == frozenset()
    assert contribution.properties == {
        "spark.executorEnv.LOKI_URL": URL,
        "spark.kubernetes.driverEnv.LOKI_URL": URL,
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("{not json", "endpoint"),
        ('{"address": "loki"}', "endpoint.url"),
        ('{"url": "loki:3100"}', "endpoint.url"),
        ('{"url": "http://loki:3100/a b"}', "endpoint.url"),
    ],
)
def test_malformed_endpoint_names_the_field(raw, field):
    with pytest.raises(FieldError) as raised:
        json_field({"endpoint": raw}, "endpoint", LokiEndpoint)
    assert raised.value.field == field


def test_no_endpoint_yet():
    with pytest.raises(MissingFieldsError):
        json_field({"endpoint": ""}, "endpoint", LokiEndpoint)
