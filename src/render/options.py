"""Properties derived from the charm's options, and the operator's own `spark-properties`."""

from __future__ import annotations

from core.config import HubConfig
from core.masking import operator_credentials
from core.properties import Contribution, Source


def render_options(config: HubConfig) -> Contribution | None:
    """The properties implied by `enable-dynamic-allocation`, the pod templates and the image."""
    properties: dict[str, str] = {}
    if config.enable_dynamic_allocation:
        properties |= {
            "spark.dynamicAllocation.enabled": "true",
            "spark.dynamicAllocation.shuffleTracking.enabled": "true",
            "spark.dynamicAllocation.minExecutors": "1",
        }
    if config.driver_pod_template:
        properties["spark.kubernetes.driver.podTemplateFile"] = config.driver_pod_template
    if config.executor_pod_template:
        properties["spark.kubernetes.executor.podTemplateFile"] = config.executor_pod_template
    if config.spark_image:
        properties["spark.kubernetes.container.image"] = config.spark_image
    return Contribution(Source.OPTIONS, properties) if properties else None


def render_spark_properties(config: HubConfig) -> Contribution | None:
    """The operator's `spark-properties`, which win over every other source.

    Every value is a credential to the hub (masked in every output) but those of the few keys
    that never hold one (`core.masking.NEVER_SECRET`).
    """
    if not config.spark_properties:
        return None
    properties = dict(config.spark_properties)
    return Contribution(Source.SPARK_PROPERTIES, properties, operator_credentials(properties))
