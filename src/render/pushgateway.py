"""Properties for a Prometheus push gateway (`cos`, `pushgateway`).

Pure: a `PushEndpoint` in, a `Contribution` out. The sink is Banzai Cloud's `PrometheusSink`
(shipped in the Charmed Spark image), configured for every Spark instance (`*`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from core.connections import PushEndpoint
from core.properties import Contribution, Source

_SINK = "spark.metrics.conf.*.sink.prometheus."


def render_pushgateway(endpoint: PushEndpoint) -> Contribution:
    """The push-gateway sink properties for the provider's `push-endpoint` URL.

    The sink takes the address without scheme (`host[:port][/path]`, the path kept for a
    gateway behind an ingress) and the scheme separately (`pushgateway-address-protocol`).
    """
    url = urlsplit(endpoint.url)
    address = f"{url.netloc}{url.path}".rstrip("/")
    properties = {
        f"{_SINK}pushgateway-address": address,
        f"{_SINK}pushgateway-address-protocol": url.scheme.lower(),
        f"{_SINK}class": "org.apache.spark.banzaicloud.metrics.sink.PrometheusSink",
        f"{_SINK}enable-dropwizard-collector": "true",
        f"{_SINK}period": "5",
        f"{_SINK}metrics-name-capture-regex": "([a-z0-9]*_[a-z0-9]*_[a-z0-9]*_)(.+)",
        f"{_SINK}metrics-name-replacement": "$2",
    }
    return Contribution(Source.PUSHGATEWAY, properties)
