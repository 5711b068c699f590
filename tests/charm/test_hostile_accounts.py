"""Hostile spark-service-account requests through the real charm (ops.testing + test API server).

A requirer controls its databag completely. Whatever it writes, no hook crashes, no object is
created outside the namespaces the policy allows, and every other requirer is still served.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing

from tests.charm.conftest import MODEL

ENDPOINT = "spark-service-account"
MEMORY = {
    "spark-properties": "spark.executor.memory=4g",
    "service-account-namespaces": "team-x",
    "service-account-create-namespaces": True,
}


def requirer(data: dict[str, str], app: str = "kyuubi") -> testing.Relation:
    return testing.Relation(ENDPOINT, remote_app_name=app, remote_app_data=data)


def good(value: str = "team-x:alice") -> testing.Relation:
    return requirer({"service-account": value}, app="notebook")


def created_accounts(server) -> set[tuple[str, str]]:
    return {
        (sa["metadata"]["namespace"], sa["metadata"]["name"])
        for sa in server.list("ServiceAccount")
        if "integration-hub/created-by" in (sa["metadata"].get("annotations") or {})
    }


@pytest.mark.parametrize(
    "hostile",
    [
        {"service-account": "team-z:alice\n"},
        {"service-account": "team-z\n:alice"},
        {"service-account": "team-z:alice/../bob"},
        {"service-account": "team-z:" + "a" * 10_000},
        {"service-account": "team-z:alice", "requested-secrets": "[" * 100_000 + "]" * 100_000},
        {"service-account": "team-z:alice", "requested-secrets": json.dumps(["x"] * 10_000)},
    ],
    ids=["final-newline", "newline-in-namespace", "path", "long", "deep-json", "long-list"],
)
def test_a_hostile_request_is_reported_and_every_other_account_is_served(
    ctx, base_state, cluster, hostile
):
    bad, other = requirer(hostile), good()
    out = ctx.run(ctx.on.relation_changed(bad), base_state(config=MEMORY, relations={bad, other}))
    assert out.unit_status.name == "blocked"
    assert f"{ENDPOINT}:{bad.id} (kyuubi)" in out.unit_status.message
    assert len(out.unit_status.message) < 1000
    assert created_accounts(cluster) == {("team-x", "alice")}
    assert "service-account" in out.get_relation(other.id).local_app_data
    assert "service-account" not in out.get_relation(bad.id).local_app_data


_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
_NAMEISH = st.from_regex(r"[a-z0-9.\-:/\n ]{0,20}", fullmatch=True)
_DATABAG = st.fixed_dictionaries(
    {},
    optional={
        "service-account": st.one_of(_NAMEISH, _TEXT, st.just("team-x:alice\n")),
        "skip-creation": st.one_of(st.sampled_from(["true", "false", "TRUE", " 1"]), _TEXT),
        "requested-secrets": st.one_of(
            st.just('["spark-properties"]'),
            st.integers(0, 3000).map(lambda depth: "[" * depth + "]" * depth),
            st.lists(_TEXT, max_size=5).map(json.dumps),
            _TEXT,
        ),
    },
)
TRIED = {"databags": 0, "hooks": 0, "crashes": 0, "outside": 0}
"""What the property-based test did (printed for docs/reliability.md)."""
ALLOWED = {"team-x", "team-a"}
"""The namespaces this test's requests may reach: the one listed, and the cluster's own."""


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=_DATABAG)
def test_no_databag_crashes_a_hook_or_escapes_the_allowed_namespaces(
    ctx, base_state, cluster, data
):
    TRIED["databags"] += 1
    bad, other = requirer(data), good()
    try:
        out = ctx.run(
            ctx.on.relation_changed(bad), base_state(config=MEMORY, relations={bad, other})
        )
    except testing.errors.UncaughtCharmError:
        TRIED["crashes"] += 1
        raise
    TRIED["hooks"] += 1
    namespaces = {ns for ns, _ in created_accounts(cluster)} | {
        ns["metadata"]["name"] for ns in cluster.list("Namespace")
    }
    outside = namespaces - ALLOWED - {"default", MODEL.name, "kube-system"}
    TRIED["outside"] += len(outside)
    assert not outside
    if data.get("service-account"):  # an empty request emits no event, so runs no pass
        assert "service-account" in out.get_relation(other.id).local_app_data


def test_zz_report_what_the_property_based_test_tried():
    print(f"hostile databags: {TRIED}")
