"""Push gateway: every sink property from `push-endpoint`, and bad data."""

import pytest

from core.connections import FieldError, MissingFieldsError, PushEndpoint, json_field
from core.properties import Source
from render.pushgateway import render_pushgateway

SINK = "spark.metrics.conf.*.sink.prometheus."


def render(push_endpoint: str):
    return render_pushgateway(
        json_field({"push-endpoint": push_endpoint}, "push-endpoint", PushEndpoint)
    )


def test_every_property_from_prometheus_pushgateway_k8s():
    # `PrometheusPushgatewayProvider` writes json.dumps({"url": endpoint}).
    contribution = render('{"url": "http://10.1.38.86:9091"}')
    assert contribution.source is Source.PUSHGATEWAY
    assert contribution.sensitive == frozenset()
    assert contribution.properties == {
        f"{SINK}pushgateway-address": "10.1.38.86:9091",
        f"{SINK}pushgateway-address-protocol": "http",
        f"{SINK}class": "org.apache.spark.banzaicloud.metrics.sink.PrometheusSink",
        f"{SINK}enable-dropwizard-collector": "true",
        f"{SINK}period": "5",
        f"{SINK}metrics-name-capture-regex": "([a-z0-9]*_[a-z0-9]*_[a-z0-9]*_)(.+)",
        f"{SINK}metrics-name-replacement": "$2",
    }


@pytest.mark.parametrize(
    ("url", "address", "protocol"),
    [
        (
            "https://pushgateway-0.pushgateway-endpoints.cos.svc.cluster.local:9091",
            ("pushgateway-0.pushgateway-endpoints.cos.svc.cluster.local:9091"),
            "https",
        ),
        ("http://10.0.0.1/cos-pushgateway/", "10.0.0.1/cos-pushgateway", "http"),
        ("HTTP://gw:9091/", "gw:9091", "http"),
    ],
)
def test_address_and_protocol(url, address, protocol):
    properties = render(f'{{"url": "{url}"}}').properties
    assert properties[f"{SINK}pushgateway-address"] == address
    assert properties[f"{SINK}pushgateway-address-protocol"] == protocol


@pytest.mark.parametrize(
    ("raw", "field", "problem"),
    [
        ("http://10.1.38.86:9091", "push-endpoint", "not JSON"),
        ('["http://gw:9091"]', "push-endpoint", "not a JSON object"),
        ('{"hostname": "gw", "port": 9091}', "push-endpoint.url", "Field required"),
        ('{"url": "gw:9091"}', "push-endpoint.url", "not a URL"),
        ('{"url": "ftp://gw"}', "push-endpoint.url", "unsupported scheme"),
    ],
)
def test_malformed_push_endpoint_names_the_field(raw, field, problem):
    with pytest.raises(FieldError) as raised:
        render(raw)
    assert raised.value.field == field
    assert problem in raised.value.problem


def test_no_push_endpoint_yet():
    with pytest.raises(MissingFieldsError):
        json_field({}, "push-endpoint", PushEndpoint)
