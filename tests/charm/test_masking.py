"""No credential, nor any part of one, in `get-config` or a status, through the real charm.

`get-config` without `reveal` masks by what the hub knows (`core.masking`): every value of the
operator's `spark-properties` but a short list of never-secret keys, every credential field of
an integration, and URL user-info with or without a scheme; for the desired properties and for
an account's live Secret alike. A refused line or relation URL is named by its source and key,
never quoted past the key.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing

from core.properties import encode_key
from tests import relations
from tests.cluster.helpers import decoded, hub_secret

DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = f"ghcr.io/canonical/charmed-spark:3.5.1-22.04_edge@{DIGEST}"
REDIS = "R3d1s-Auth-Valu3-x9"
ES = "Es-Pa55-Valu3-x9q"
OPENAI = "sk-proj-QwErTy-ZxCvB-xYz"
API_KEY = "k3y-Valu3-0123-zz"
MISPLACED = "MisPlaced-Secret-42"
SECRETS = (REDIS, ES, OPENAI, API_KEY, MISPLACED)
CONFIG = {
    "spark-properties": "\n".join(
        (
            f"spark.redis.auth={REDIS}",
            f"spark.es.net.http.auth.pass={ES}",
            f"spark.executorEnv.OPENAI_API_KEY={OPENAI}",
            f"spark.kubernetes.driverEnv.MY_API_KEY={API_KEY}",
            f"spark.driver.memory={MISPLACED}",
            "spark.executor.memory=4g",
            "spark.executor.instances=3",
            "spark.dynamicAllocation.enabled=true",
            f"spark.kubernetes.container.image={IMAGE}",
        )
    )
}
PLAIN = {
    "spark.executor.memory": "4g",
    "spark.executor.instances": "3",
    "spark.dynamicAllocation.enabled": "true",
    "spark.kubernetes.container.image": IMAGE,
}
GATEWAY_USER, GATEWAY_PASSWORD = "admin", "hunter2"
GATEWAY = f"http://{GATEWAY_USER}:{GATEWAY_PASSWORD}@gw:9091"
LOKI_PASSWORD = "l0k1-Pa55w0rd"
LOKI = f"http://spark:{LOKI_PASSWORD}@loki-0.loki:3100/loki/api/v1/push"
SINK = "spark.metrics.conf.*.sink.prometheus."


def windows(secret: str, size: int = 8) -> list[str]:
    """Every `size`-character part of `secret` (the whole of a shorter one)."""
    return [secret[start : start + size] for start in range(max(1, len(secret) - size + 1))]


def leaked(output: str, *secrets: str) -> list[str]:
    return [part for secret in secrets for part in windows(secret) if part in output]


def get_config(ctx, state, **params) -> dict:
    ctx.run(ctx.on.action("get-config", params=params), state)
    return json.loads(ctx.action_results["properties"])


def both_views(ctx, state) -> tuple[dict, dict]:
    """`get-config` of the desired properties (values only) and of team-a:bob's live Secret."""
    desired = {key: row["value"] for key, row in get_config(ctx, state).items()}
    return desired, get_config(ctx, state, account="team-a:bob")


def test_get_config_shows_no_operator_value_off_the_never_secret_list(ctx, base_state, cluster):
    state = base_state(config=CONFIG)
    ctx.run(ctx.on.config_changed(), state)
    for shown in both_views(ctx, state):
        assert not leaked(json.dumps(shown), *SECRETS), shown
        for key in ("spark.redis.auth", "spark.es.net.http.auth.pass", "spark.driver.memory"):
            assert shown[key] == "*****", key
        assert {key: shown[key] for key in PLAIN} == PLAIN
    revealed = get_config(ctx, state, account="team-a:bob", reveal=True)
    assert revealed["spark.redis.auth"] == REDIS


def test_get_config_masks_user_info_in_integration_urls(ctx, base_state, cluster):
    links = {
        relations.published_pushgateway(GATEWAY).relation,
        relations.published_loki(LOKI).relation,
    }
    state = base_state(relations=links)
    out = ctx.run(ctx.on.update_status(), state)
    assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
    served = decoded(hub_secret(cluster, "team-a", "bob"))
    address = served[f"{SINK}pushgateway-address"]
    assert address == f"{GATEWAY_USER}:{GATEWAY_PASSWORD}@gw:9091"  # user-info, no scheme
    for shown in both_views(ctx, state):
        output = json.dumps(shown)
        assert GATEWAY_PASSWORD not in output and f"{GATEWAY_USER}:" not in output
        assert not leaked(output, LOKI_PASSWORD)
        assert shown[f"{SINK}pushgateway-address"] == "*****@gw:9091"
        assert (
            shown["spark.executorEnv.LOKI_URL"] == "http://*****@loki-0.loki:3100/loki/api/v1/push"
        )


SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLE=="
"""A pasted value with base64 padding: the line has an `=` after the value."""


@pytest.mark.parametrize(
    ("line", "secret", "quoted"),
    [
        (f"spark.hadoop.fs.s3a.secret.key:{SECRET}", SECRET, "'spark.hadoop.fs.s3a.secret.key…'"),
        (f"spark.hadoop.fs.s3a.secret.key {SECRET}", SECRET, "'spark.hadoop.fs.s3a.secret.key…'"),
        ("c2VjcmV0cGFzc3dvcmQ=", "c2VjcmV0cGFzc3dvcmQ", "'…'"),
    ],
    ids=["colon-separator", "blank-separator", "pasted-value-alone"],
)
def test_a_refused_line_is_named_by_number_and_key_never_by_its_value(
    ctx, base_state, cluster, line, secret, quoted
):
    out = ctx.run(ctx.on.config_changed(), base_state(config={"spark-properties": line}))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    message = out.unit_status.message
    prefixes = [secret[:end] for end in range(2, len(secret) + 1)]
    assert not [prefix for prefix in prefixes if prefix in message], message
    assert message.startswith(f"config: spark-properties line 1: {quoted} is not a Spark"), message


def test_a_relation_url_whose_scheme_is_user_info_is_not_quoted(ctx, base_state, cluster):
    raw = json.dumps({"url": f"{GATEWAY_USER}:{GATEWAY_PASSWORD}@gw:9091/x?next=http://y"})
    out = ctx.run(ctx.on.update_status(), base_state(relations={relations.pushgateway(raw=raw)}))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    message = out.unit_status.message
    assert GATEWAY_USER not in message and GATEWAY_PASSWORD not in message, message
    assert message.startswith("cos: `push-endpoint.url` from prometheus-pushgateway-k8s:"), message


def test_a_live_key_of_unknown_source_is_masked(ctx, base_state, cluster):
    state = base_state(config=CONFIG)
    ctx.run(ctx.on.config_changed(), state)
    secret = hub_secret(cluster, "team-a", "bob")
    secret["data"][encode_key("spark.hand.added")] = base64.b64encode(REDIS.encode()).decode()
    cluster.put(secret)
    shown = get_config(ctx, state, account="team-a:bob")
    assert shown["spark.hand.added"] == "*****"
    assert not leaked(json.dumps(shown), REDIS)


# -- property-based: any operator key, any value, any user-info ---------------------------------

TRIED = {"examples": 0, "get-config": 0, "values masked": 0, "refusals": 0, "leaks": 0}
"""What the property-based tests did (printed for docs/reliability.md)."""
MARK = "Kq7"
"""Starts every generated secret, so that a prefix of one cannot occur in an output by chance."""
_SECRET_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\\"),
    min_size=5,
    max_size=40,
).map(lambda text: MARK + text)
_KEY = r"spark\.[a-z][A-Za-z0-9_.-]{0,24}[A-Za-z0-9_]"
_OPERATOR_KEY = st.from_regex(_KEY, fullmatch=True).filter(
    # off the never-secret list, the identity keys and the JVM-options keys, whatever they are
    lambda key: (
        not key.startswith(
            ("spark.driver.", "spark.executor.", "spark.kubernetes.", "spark.dynamicAllocation.")
        )
    )
)
_USERINFO_TEXT = st.from_regex(r"[A-Za-z0-9._~!$&'()*+,;=-]{5,20}", fullmatch=True)
_SETTINGS = settings(
    derandomize=True,
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def prefixes(secret: str, shortest: int = 4) -> list[str]:
    return [secret[:end] for end in range(shortest, len(secret) + 1)]


@_SETTINGS
@given(
    operator=st.dictionaries(_OPERATOR_KEY, _SECRET_TEXT, min_size=1, max_size=4),
    user=_USERINFO_TEXT,
    password=_USERINFO_TEXT.map(lambda text: MARK + text),
)
def test_no_generated_operator_value_or_user_info_is_shown(
    ctx, base_state, cluster, operator, user, password
):
    TRIED["examples"] += 1
    config = {"spark-properties": "\n".join(f"{k}={v}" for k, v in operator.items())}
    gateway = relations.published_pushgateway(f"http://{user}:{password}@gw:9091").relation
    state = base_state(config=config, relations={gateway})
    out = ctx.run(ctx.on.update_status(), state)
    assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
    for shown in both_views(ctx, state):
        TRIED["get-config"] += 1
        output = json.dumps(shown) + out.unit_status.message
        found = [
            p for secret in (*operator.values(), password) for p in prefixes(secret) if p in output
        ]
        TRIED["leaks"] += bool(found)
        assert not found, output
        for key in operator:
            assert shown[key] == "*****", key
        assert shown[f"{SINK}pushgateway-address"] == "*****@gw:9091"
        TRIED["values masked"] += len(operator) + 1


@_SETTINGS
@given(
    key=st.from_regex(_KEY, fullmatch=True),
    separator=st.sampled_from([":", " ", "\t", ": ", " : "]),
    secret=_SECRET_TEXT,
)
def test_no_part_of_a_generated_value_is_in_a_refusal(
    ctx, base_state, cluster, key, separator, secret
):
    TRIED["examples"] += 1
    line = f"{key}{separator}{secret}=1"
    out = ctx.run(ctx.on.config_changed(), base_state(config={"spark-properties": line}))
    assert isinstance(out.unit_status, testing.BlockedStatus), out.unit_status
    TRIED["refusals"] += 1
    found = [prefix for prefix in prefixes(secret, 2) if prefix in out.unit_status.message]
    TRIED["leaks"] += bool(found)
    assert not found, out.unit_status.message


def test_zz_report_what_the_property_based_tests_tried():
    print(f"masking: {TRIED}")
