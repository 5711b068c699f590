"""What can travel through spark8t's properties file: the per-character decisions, purely."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.inputs import Invalid
from core.properties import Contribution, Source, SparkProperties, escape_value
from core.values import (
    MAX_SECRET_DATA,
    key_problem,
    oversized,
    screen,
    text_problem,
    unescape_value,
    value_problem,
)


@given(st.text())
def test_escaping_round_trips_every_text(text):
    assert unescape_value(escape_value(text)) == text


@given(st.text())
def test_an_accepted_value_escapes_to_one_line(text):
    if value_problem("spark.a", text, multiline=True) is None:
        assert "\n" not in escape_value(text) and "\r" not in escape_value(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a\nb", "contains a line break (U+000A)"),
        ("a\rb", "contains a line break (U+000D)"),
        ("a\x00b", "contains a control character (U+0000)"),
        ("a\tb", "contains a control character (U+0009)"),
        ("a\x85b", "contains a control character (U+0085)"),
        ("a\u2028b", "contains a line separator (U+2028)"),
        ("a\u2029b", "contains a line separator (U+2029)"),
        ("a\ud800b", "contains a lone surrogate (U+D800): not UTF-8"),
        ("a\\b=c:d#e!f ü☃", None),
    ],
)
def test_text_problems_name_the_code_point_never_the_text(text, problem):
    assert text_problem(text) == problem


@pytest.mark.parametrize(
    ("key", "refused"),
    [
        ("spark.a.b", False),
        ("spark.metrics.conf.*.sink.x.class", False),
        ("spark.a:b", True),
        ("spark.a=b", True),
        ("spark.a b", True),
        ("spark.a\\b", True),
        ("spark.ü", True),
        ("spark.a\n", True),
        ("spark." + "_" * 83, True),  # encodes to 6 + 3 * 83 = 255 > 253
    ],
)
def test_keys(key, refused):
    assert (key_problem(key) is not None) is refused


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("-Da=1", False),
        ("-Da=1 -Db=file:/x", False),
        ("", False),
        ("-Da=1  -Db=2", True),
        ("-XX:+UseG1GC", True),
        ("-Da='x y'", True),
        ("-Da=b=c", True),
        ("-Dpath=/my-Dir", True),
    ],
)
def test_java_options_must_survive_spark8ts_reparsing(value, refused):
    assert (value_problem("spark.driver.extraJavaOptions", value) is not None) is refused


def test_screen_names_source_and_key_never_the_value():
    bad = Contribution(Source.S3, {"spark.hadoop.fs.s3a.secret.key": " hunter2"})
    result = screen(bad)
    assert isinstance(result, Invalid)
    assert result.endpoint == "s3-credentials"
    assert "spark.hadoop.fs.s3a.secret.key" in result.message
    assert "hunter2" not in result.message
    pem = Contribution(Source.GCS, {"spark.k": "a\nb"}, multiline=frozenset({"spark.k"}))
    assert screen(pem) is pem


def test_oversize_names_the_largest_source():
    properties = SparkProperties.merge(
        [
            Contribution(Source.OPTIONS, {"spark.a": "x" * (MAX_SECRET_DATA // 2)}),
            Contribution(Source.SPARK_PROPERTIES, {"spark.b": "y" * (MAX_SECRET_DATA // 2 + 10)}),
        ]
    )
    message = oversized(properties)
    assert message is not None and "the largest source is spark-properties" in message
    assert (
        oversized(SparkProperties.merge([Contribution(Source.OPTIONS, {"spark.a": "1"})])) is None
    )
