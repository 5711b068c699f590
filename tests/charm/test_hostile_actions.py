"""Hostile action parameters through the real charm (ops.testing + the test API server).

An action caller may pass anything. `get-config account=` must only ever read this hub's own
Secrets, `reveal=false` never shows a credential (by key, by source or inside a URL), and no
parameter crashes the action.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing

from tests.cluster.helpers import add_account

PASSWORD = "hunter2-s3cr3t"
CONFIG = {
    "spark-properties": (
        "spark.executor.memory=4g\n"
        f"spark.sql.catalog.db.uri=postgresql://hive:{PASSWORD}@db:5432/metastore\n"
        f"spark.sql.catalog.jdbc.url=jdbc:postgresql://db/metastore?user=hive&password={PASSWORD}"
    )
}


@pytest.fixture
def cluster(kube_server, kubeconfig):
    add_account(kube_server, "team-a", "bob")
    kube_server.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "cluster-admin-token", "namespace": "kube-system"},
            "data": {"token": base64.b64encode(PASSWORD.encode()).decode()},
        }
    )
    return kube_server


def served(ctx, base_state) -> testing.State:
    return ctx.run(ctx.on.update_status(), base_state(config=CONFIG))


def get_config(ctx, state, **params) -> tuple[dict | None, str | None]:
    try:
        ctx.run(ctx.on.action("get-config", params=params), state)
    except testing.ActionFailed as failure:
        return None, failure.message
    return json.loads(ctx.action_results["properties"]), None


@pytest.mark.parametrize(
    "account",
    [
        "kube-system:x/../cluster-admin-token",
        "kube-system:x/..%2fcluster-admin-token",
        "team-a:bob\n",
        "team-a:bob?watch=1",
        "team-a:bob#x",
        "team-a: bob",
        "Team-A:bob",
        "team-a:" + "b" * 300,
        "a" * 64 + ":bob",
    ],
)
def test_get_config_refuses_an_account_that_is_not_a_namespace_and_name(
    ctx, base_state, cluster, account
):
    state = served(ctx, base_state)
    cluster.clear_requests()
    shown, failure = get_config(ctx, state, account=account)
    assert shown is None
    assert failure is not None and failure.startswith("account: expected `namespace:name`")
    assert cluster.count() == 0


def test_get_config_shows_only_secrets_this_hub_wrote(ctx, base_state, cluster):
    state = served(ctx, base_state)
    cluster.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "integrator-hub-conf-carol", "namespace": "team-a"},
            "data": {"token": base64.b64encode(PASSWORD.encode()).decode()},
        }
    )
    shown, failure = get_config(ctx, state, account="team-a:carol")
    assert shown is None and failure is not None and PASSWORD not in failure
    shown, failure = get_config(ctx, state, account="team-a:bob")
    assert failure is None and shown is not None
    assert shown["spark.executor.memory"] == "4g"


def test_get_config_masks_credentials_inside_urls(ctx, base_state, cluster):
    state = served(ctx, base_state)
    for params in ({"account": "team-a:bob"}, {}):
        shown, _ = get_config(ctx, state, **params)
        assert shown is not None
        assert PASSWORD not in json.dumps(shown), params
    shown, _ = get_config(ctx, state, account="team-a:bob", reveal=True)
    assert shown is not None and PASSWORD in json.dumps(shown)


TRIED = {"params": 0, "actions": 0, "crashes": 0, "credentials": 0}
"""What the property-based test did (printed for docs/reliability.md)."""
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
_PARAMS = st.sampled_from(["get-config", "list-accounts"]).flatmap(
    lambda action: st.tuples(
        st.just(action),
        st.fixed_dictionaries(
            {},
            optional={
                "account": st.one_of(_TEXT, st.from_regex(r"[a-z./:\n%-]{0,20}", fullmatch=True)),
                "namespace": _TEXT,
                "state": _TEXT,
            },
        ),
    )
)


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=_PARAMS)
def test_no_action_param_crashes_or_shows_a_credential(ctx, base_state, cluster, call):
    action, params = call
    if action == "list-accounts":
        params.pop("account", None)
    else:
        params = {k: v for k, v in params.items() if k == "account"}
    TRIED["params"] += 1
    state = base_state(config=CONFIG)
    try:
        ctx.run(ctx.on.action(action, params=params), state)
        output = json.dumps(ctx.action_results)
    except testing.ActionFailed as failure:
        output = failure.message
    except testing.errors.UncaughtCharmError:
        TRIED["crashes"] += 1
        raise
    TRIED["actions"] += 1
    TRIED["credentials"] += PASSWORD in output
    assert PASSWORD not in output


def test_zz_report_what_the_property_based_test_tried():
    print(f"hostile action params: {TRIED}")
