"""Properties for Loki (`logging`, `loki_push_api`).

Pure: a `LokiEndpoint` in, a `Contribution` out. The Charmed Spark image ships a log forwarder
that pushes the driver's and executors' logs to `LOKI_URL`; which unit's endpoint is used is
the reader's decision (`sources.loki`).
"""

from __future__ import annotations

from core.connections import LokiEndpoint
from core.properties import Contribution, Source


def render_loki(endpoint: LokiEndpoint) -> Contribution:
    """`LOKI_URL` in the driver's and the executors' environment."""
    properties = {
        "spark.executorEnv.LOKI_URL": endpoint.url,
        "spark.kubernetes.driverEnv.LOKI_URL": endpoint.url,
    }
    return Contribution(Source.LOKI, properties)
