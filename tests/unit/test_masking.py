"""The masking rule (`core.masking`) and what messages quote of a would-be key, purely.

No output may show a credential, nor any part of one: the operator's values are masked unless
their key is on the short `NEVER_SECRET` list with a value of its shape; URL user-info is masked
with or without a scheme; a refused key is quoted only up to where it stops being a key.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.config import ConfigError, parse_spark_properties
from core.connections import FieldError, PushEndpoint
from core.masking import (
    MASK,
    NEVER_SECRET,
    mask_url_credentials,
    mask_userinfo,
    operator_credentials,
    plain_keys,
    shown_value,
)
from core.properties import SparkProperties
from core.values import quoted_key

DIGEST = "sha256:" + "0123456789abcdef" * 4

# -- user-info in URLs, with or without a scheme ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("admin:hunter2@gw:9091", "*****@gw:9091"),
        ("admin:hunter2@gw:9091/metrics", "*****@gw:9091/metrics"),
        ("https://u:p@host", "https://*****@host"),
        ("https://u:p@host/a@b", "https://*****@b"),
        ("u:p@host/path", "*****@host/path"),
        ("s3a://AKIA0123:wJalrXUtnFEMI/K7MDENG@bucket/x", "s3a://*****@bucket/x"),
        ("http://u:p@ss w/rd@h:1", "http://*****@h:1"),
        ("http://a:1@h1, http://b:2@h2", "http://*****@h2"),
        ("-Dx=http://u:p@h -Dy=1", "*****@h -Dy=1"),
        ("alice://x@h", "*****@h"),
        ("ops@example.com", "*****@example.com"),
        (
            f"ghcr.io/canonical/charmed-spark:3.5@{DIGEST}",
            f"ghcr.io/canonical/charmed-spark:3.5@{DIGEST}",
        ),
        (f"u:p@reg.io/spark@{DIGEST}", f"*****@reg.io/spark@{DIGEST}"),
        ("http://gw:9091", "http://gw:9091"),
        ("4g", "4g"),
    ],
)
def test_user_info_is_masked_with_or_without_a_scheme(value, shown):
    assert mask_userinfo(value) == shown


_HOST = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}(:[0-9]{1,5})?(/[a-z0-9/]{0,10})?", fullmatch=True)


@given(
    scheme=st.sampled_from(["", "http://", "https://", "s3a://", "gs://", "redis://"]),
    user=st.text(max_size=20),
    password=st.text(max_size=30),
    host=_HOST,
)
def test_no_part_of_any_user_info_is_shown(scheme, user, password, host):
    # schemeless `https` + `://x` reads as a scheme: the one ambiguity (see core.masking)
    assume(scheme or not re.match(r"[A-Za-z0-9+.-]+://", f"{user}:{password}"))
    value = f"{scheme}{user}:{password}@{host}"
    assert mask_userinfo(value) == f"{scheme}{MASK}@{host}"
    assert mask_url_credentials(value).startswith(f"{scheme}{MASK}@")


def test_secret_parameters_are_masked_in_values_still_shown():
    jdbc = "jdbc:postgresql://db/metastore?user=hive&password=p4ss&ssl=true"
    assert mask_url_credentials(jdbc) == (
        "jdbc:postgresql://db/metastore?user=hive&password=*****&ssl=true"
    )


def test_a_sensitive_value_shows_nothing_and_reveal_shows_it_all():
    assert shown_value("wJalrXUtnFEMI", sensitive=True) == MASK
    assert shown_value("admin:hunter2@gw:9091", sensitive=False) == "*****@gw:9091"
    assert shown_value("admin:hunter2@gw:9091", sensitive=True, reveal=True) == (
        "admin:hunter2@gw:9091"
    )


# -- the operator's values: masked unless never secret ------------------------------------------

OPERATOR = {
    "spark.redis.auth": "R3d1s-Auth-Valu3",
    "spark.es.net.http.auth.pass": "Es-Pa55-Valu3",
    "spark.executorEnv.OPENAI_API_KEY": "sk-proj-AbCdEf0123456789",
    "spark.kubernetes.driverEnv.MY_API_KEY": "k3y-Valu3-0123",
    "spark.executor.memory": "4g",
    "spark.executor.instances": "3",
    "spark.kubernetes.executor.request.cores": "500m",
    "spark.dynamicAllocation.enabled": "true",
    "spark.kubernetes.container.image.pullPolicy": "IfNotPresent",
    "spark.kubernetes.container.image": f"ghcr.io/canonical/charmed-spark:3.5.1@{DIGEST}",
    "spark.driver.memory": "hunter2",
    "spark.kubernetes.driver.container.image": "admin:hunter2@registry.example.com/spark:3",
}
PLAIN = {
    "spark.executor.memory",
    "spark.executor.instances",
    "spark.kubernetes.executor.request.cores",
    "spark.dynamicAllocation.enabled",
    "spark.kubernetes.container.image.pullPolicy",
    "spark.kubernetes.container.image",
}


def test_every_operator_value_is_a_credential_but_never_secret_keys_of_their_shape():
    assert operator_credentials(OPERATOR) == set(OPERATOR) - PLAIN


def test_the_allowlist_is_short_and_holds_no_key_that_looks_like_a_credential():
    assert len(NEVER_SECRET) <= 24
    assert not any(
        word in key.lower() for key in NEVER_SECRET for word in ("auth", "key", "pass", "token")
    )


def test_a_live_key_is_plain_only_when_desired_not_sensitive_and_never_secret():
    described = [
        {"key": "spark.executor.memory", "source": "spark-properties", "sensitive": False},
        {"key": "spark.redis.auth", "source": "spark-properties", "sensitive": False},  # old store
        {"key": "spark.hadoop.fs.s3a.endpoint", "source": "s3-credentials", "sensitive": False},
        {"key": "spark.hadoop.fs.s3a.secret.key", "source": "s3-credentials", "sensitive": True},
        {"key": "spark.x", "source": "options"},  # no flag: masked
    ]
    assert plain_keys(described) == {"spark.executor.memory", "spark.hadoop.fs.s3a.endpoint"}


def test_merged_properties_carry_the_operator_rule():
    from core.config import HubConfig
    from render.options import render_spark_properties

    contribution = render_spark_properties(HubConfig(spark_properties=OPERATOR))
    assert contribution is not None
    merged = SparkProperties.merge([contribution])
    shown = {p.key: shown_value(p.value, p.sensitive) for p in merged.items}
    for key, value in OPERATOR.items():
        assert shown[key] == (value if key in PLAIN else MASK), key


# -- what a message quotes of a would-be key ----------------------------------------------------

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLE=="


@pytest.mark.parametrize(
    ("line", "secret", "quoted"),
    [
        (f"spark.hadoop.fs.s3a.secret.key:{SECRET}", SECRET, "'spark.hadoop.fs.s3a.secret.key…'"),
        (f"spark.hadoop.fs.s3a.secret.key {SECRET}", SECRET, "'spark.hadoop.fs.s3a.secret.key…'"),
        (f"spark.redis.auth\t{SECRET}", SECRET, "'spark.redis.auth…'"),
        (SECRET, SECRET, "'…'"),
        ("c2VjcmV0cGFzc3dvcmQ=", "c2VjcmV0cGFzc3dvcmQ", "'…'"),
        ("fs.s3a.secret.key=hunter2", "hunter2", "'…'"),
    ],
)
def test_a_refused_key_is_quoted_only_up_to_where_it_stops_being_a_key(line, secret, quoted):
    assert quoted_key(line.partition("=")[0]) == quoted
    with pytest.raises(ConfigError) as raised:
        parse_spark_properties(line)
    message = str(raised.value)
    assert f"line 1: {quoted} is not a Spark property key" in message
    assert not [secret[:end] for end in range(2, len(secret) + 1) if secret[:end] in message]


def test_a_long_valid_key_is_cut_as_before():
    assert quoted_key("spark." + "x" * 260) == "'spark." + "x" * 33 + "…'"
    assert quoted_key("spark.executor.memory") == "'spark.executor.memory'"


_KEY = st.from_regex(r"spark\.[A-Za-z0-9_*.\-/@]{0,60}", fullmatch=True)


@given(key=_KEY, separator=st.sampled_from([":", " ", "\t", "\\", "\u2028"]), value=st.text())
def test_no_character_after_the_key_is_ever_quoted(key, separator, value):
    assert quoted_key(key + separator + value) == f"'{key[:39]}…'"


@given(text=st.text())
def test_text_not_starting_with_spark_is_never_quoted(text):
    assume(not text.startswith("spark."))
    assert quoted_key(text) == "'…'"


# -- a relation URL whose "scheme" is user-info -------------------------------------------------


def test_a_url_whose_scheme_is_user_info_is_refused_without_quoting_it():
    with pytest.raises(FieldError) as raised:
        PushEndpoint.validated({"url": "admin:hunter2@gw:9091/x?next=http://y"})
    assert "admin" not in str(raised.value) and "hunter2" not in str(raised.value)
    assert raised.value.problem == "not a URL (expected http://host[:port])"
    with pytest.raises(FieldError, match="unsupported scheme 'ftp'"):
        PushEndpoint.validated({"url": "ftp://gw:21"})


def _expand(text: str) -> set[str]:
    """`a.{b,c}.d` → {`a.b.d`, `a.c.d`} (the shorthand of the reference's table)."""
    found = re.search(r"\{([^{}]*)\}", text)
    if not found:
        return {text}
    head, tail = text[: found.start()], text[found.end() :]
    return {key for part in found[1].split(",") for key in _expand(head + part + tail)}


def test_the_config_reference_lists_exactly_the_never_secret_keys():
    page = (Path(__file__).parents[2] / "docs" / "reference" / "config.md").read_text()
    section = page.split("## Credentials in `spark-properties`")[1].split("\n## ")[0]
    listed: set[str] = set()
    for row in section.splitlines():
        if row.startswith("| `spark."):
            for code in re.findall(r"`(spark\.[^`]+)`", row.split(" | ")[0]):
                listed |= _expand(code)
    assert listed == set(NEVER_SECRET)
