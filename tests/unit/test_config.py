"""Parsing and validation of the charm's options."""

import pytest

from core.config import ConfigError, HubConfig, parse_scope, parse_spark_properties
from render.options import render_options, render_spark_properties


def test_spark_properties_accept_comments_blank_lines_and_equals_in_values():
    parsed = parse_spark_properties(
        "# memory\nspark.executor.memory = 4g\n\n  spark.driver.extraJavaOptions=-Da=b -Dc=d\n"
    )
    assert parsed == {
        "spark.executor.memory": "4g",
        "spark.driver.extraJavaOptions": "-Da=b -Dc=d",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spark.a=1\nnot a property", "line 2: expected `spark.<name>=<value>`, found no `=`"),
        ("fs.s3a.secret.key=hunter2", "line 1: '…' is not a Spark property key"),
    ],
)
def test_bad_spark_properties_name_the_line_but_never_the_value(text, message):
    with pytest.raises(ConfigError) as raised:
        parse_spark_properties(text)
    assert message in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_scope_patterns():
    scope = parse_scope("team-a:*, *:alice")
    assert scope.includes("team-a", "bob")
    assert scope.includes("team-b", "alice")
    assert not scope.includes("team-b", "bob")


@pytest.mark.parametrize("text", ["team-a", "Team:x", ":x", " , "])
def test_bad_scope_names_the_entry(text):
    with pytest.raises(ConfigError, match="monitored-service-accounts"):
        parse_scope(text)


def test_options_render_the_reference_properties():
    config = HubConfig.from_options(
        {
            "enable-dynamic-allocation": True,
            "driver-pod-template": "s3a://b/driver.yaml",
            "executor-pod-template": "s3a://b/executor.yaml",
            "spark-image": "ghcr.io/canonical/charmed-spark:3.5",
        }
    )
    contribution = render_options(config)
    assert contribution is not None
    assert dict(contribution.properties) == {
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.shuffleTracking.enabled": "true",
        "spark.dynamicAllocation.minExecutors": "1",
        "spark.kubernetes.driver.podTemplateFile": "s3a://b/driver.yaml",
        "spark.kubernetes.executor.podTemplateFile": "s3a://b/executor.yaml",
        "spark.kubernetes.container.image": "ghcr.io/canonical/charmed-spark:3.5",
    }
    assert render_spark_properties(config) is None


def test_defaults_render_nothing():
    config = HubConfig.from_options({})
    assert render_options(config) is None
    assert config.scope.includes("any", "one")


def test_operator_credentials_are_marked_sensitive():
    config = HubConfig.from_options({"spark-properties": "spark.hadoop.fs.s3a.secret.key=x"})
    contribution = render_spark_properties(config)
    assert contribution is not None
    assert contribution.sensitive == {"spark.hadoop.fs.s3a.secret.key"}


def test_bad_option_type_names_the_option():
    with pytest.raises(ConfigError, match="enable-dynamic-allocation"):
        HubConfig.from_options({"enable-dynamic-allocation": "sometimes"})


def test_bad_database_name():
    with pytest.raises(ConfigError, match="metastore-database-name"):
        HubConfig.from_options({"metastore-database-name": "drop table;"})


def test_max_concurrent_writes_defaults_to_8_and_is_bounded():
    assert HubConfig.from_options({}).max_concurrent_writes == 8
    assert HubConfig.from_options({"max-concurrent-writes": 1}).max_concurrent_writes == 1
    for bad in (0, 17, -3):
        with pytest.raises(ConfigError, match="^max-concurrent-writes: "):
            HubConfig.from_options({"max-concurrent-writes": bad})
