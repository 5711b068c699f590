"""Key encoding, merge precedence and hashing of Spark properties."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spark8t.utils import K8sSecretKeySerializer

from core.properties import (
    Contribution,
    Source,
    SparkProperties,
    data_hash,
    decode_key,
    encode_key,
    is_property_key,
    looks_sensitive,
)

SECRET_KEY = r"^[-._a-zA-Z0-9]+$"


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("spark.driver.memory", "spark.driver.memory"),
        ("spark.executorEnv.LOKI_URL", "spark.executorEnv.LOKI_5fURL"),
        (
            "spark.metrics.conf.*.sink.prometheus.class",
            "spark.metrics.conf._2a.sink.prometheus.class",
        ),
    ],
)
def test_encoding_matches_the_contract_examples(key, encoded):
    assert encode_key(key) == encoded
    assert decode_key(encoded) == key


@given(st.text(min_size=1, max_size=60))
def test_encoding_is_spark8ts_and_round_trips(key):
    serializer = K8sSecretKeySerializer()
    encoded = encode_key(key)
    assert encoded == serializer.serialize(key)
    assert serializer.deserialize(encoded) == key
    assert decode_key(encoded) == key
    assert all(c.isascii() and (c.isalnum() or c in "-._") for c in encoded)


def test_decode_rejects_a_legacy_key():
    with pytest.raises(ValueError):
        decode_key("spark.executorEnv.LOKI__URL")


def test_later_sources_win_and_remember_where_they_came_from():
    merged = SparkProperties.merge(
        [
            Contribution(Source.SPARK_PROPERTIES, {"spark.a": "operator"}),
            Contribution(Source.OPTIONS, {"spark.a": "option", "spark.b": "option"}),
            Contribution(Source.S3, {"spark.b": "s3", "spark.s": "x"}, frozenset({"spark.s"})),
        ]
    )
    assert merged.as_dict() == {"spark.a": "operator", "spark.b": "s3", "spark.s": "x"}
    shown = merged.masked()
    assert shown["spark.a"] == {"value": "operator", "source": "spark-properties"}
    assert shown["spark.s"] == {"value": "*****", "source": "s3-credentials"}
    assert merged.masked(reveal=True)["spark.s"]["value"] == "x"


def test_hash_is_canonical_and_matches_the_secret_data():
    one = SparkProperties.merge([Contribution(Source.OPTIONS, {"spark.a": "1", "spark.b": "2"})])
    two = SparkProperties.merge([Contribution(Source.OPTIONS, {"spark.b": "2", "spark.a": "1"})])
    assert one.hash == two.hash == data_hash({"spark.b": "2", "spark.a": "1"})
    assert one.hash != data_hash({"spark.a": "1", "spark.b": "3"})


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("spark.executor.memory", True),
        ("spark.hadoop.fs.s3a.access.key", True),
        ("spark.metrics.conf.*.sink.prometheus.class", True),
        ("spark.executorEnv.LOKI_URL", True),
        ("executor.memory", False),
        ("spark.", False),
        ("spark.a b", False),
        ("spark.a=", False),
    ],
)
def test_property_keys(key, valid):
    assert is_property_key(key) is valid


def test_credentials_are_recognised_by_key():
    assert looks_sensitive("spark.hadoop.fs.s3a.secret.key")
    assert looks_sensitive("spark.hadoop.javax.jdo.option.ConnectionPassword")
    assert not looks_sensitive("spark.executor.memory")


def test_no_value_in_any_repr():
    merged = SparkProperties.merge(
        [Contribution(Source.S3, {"spark.hadoop.fs.s3a.secret.key": "hunter2"})]
    )
    assert "hunter2" not in repr(merged)
    assert "hunter2" not in repr(merged.items[0])
    assert "hunter2" not in repr(Contribution(Source.S3, {"spark.x": "hunter2"}))
