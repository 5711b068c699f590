"""`cos` (pushgateway) and `logging` (loki_push_api) through our own typed readers.

The databags are what the providers' libraries write: `PrometheusPushgatewayProvider` puts
`push-endpoint` = `{"url": ...}` in its application databag, `LokiPushApiProvider` puts
`endpoint` = `{"url": ...}` in every unit's databag.
"""

import json
from typing import Any

import pytest
from ops import testing

from core.inputs import Incomplete, Invalid
from core.properties import Contribution, Source
from sources import ENDPOINTS
from tests.relations import GATEWAY, META, loki_databag, loki_url
from tests.relations import SourcesProbe as Hub


def read_after(event, state: testing.State, endpoint: Source) -> Any:
    ctx = testing.Context(Hub, meta=META)
    with ctx(event, state) as manager:
        manager.run()
        charm = manager.charm
        assert isinstance(charm, Hub)
        return charm.reads[-1][ENDPOINTS.index(endpoint)]


CTX = testing.Context(Hub, meta=META)


# -- cos ----------------------------------------------------------------------------------------


def test_pushgateway_related_with_its_endpoint():
    relation = testing.Relation(
        "cos",
        remote_app_name="prometheus-pushgateway-k8s",
        remote_app_data={"push-endpoint": json.dumps({"url": GATEWAY})},
    )
    cos = read_after(
        CTX.on.relation_changed(relation), testing.State(relations={relation}), Source.PUSHGATEWAY
    )
    assert isinstance(cos, Contribution)
    assert cos.properties["spark.metrics.conf.*.sink.prometheus.pushgateway-address"] == (
        "10.1.38.86:9091"
    )


def test_pushgateway_without_endpoint_yet_is_incomplete():
    relation = testing.Relation("cos", remote_app_name="prometheus-pushgateway-k8s")
    cos = read_after(
        CTX.on.relation_created(relation), testing.State(relations={relation}), Source.PUSHGATEWAY
    )
    assert cos == Incomplete("cos", "waiting for `push-endpoint` from prometheus-pushgateway-k8s")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (GATEWAY, "`push-endpoint`"),
        (json.dumps({"hostname": "gw", "port": 9091}), "`push-endpoint.url`"),
        (json.dumps({"url": "10.1.38.86:9091"}), "`push-endpoint.url`"),
    ],
)
def test_pushgateway_malformed_endpoint_is_invalid(raw, field):
    relation = testing.Relation(
        "cos", remote_app_name="prometheus-pushgateway-k8s", remote_app_data={"push-endpoint": raw}
    )
    cos = read_after(
        CTX.on.relation_changed(relation), testing.State(relations={relation}), Source.PUSHGATEWAY
    )
    assert isinstance(cos, Invalid)
    assert cos.message.startswith(f"{field} from prometheus-pushgateway-k8s:")


def test_pushgateway_relation_broken_no_longer_counts():
    relation = testing.Relation(
        "cos",
        remote_app_name="prometheus-pushgateway-k8s",
        remote_app_data={"push-endpoint": json.dumps({"url": GATEWAY})},
    )
    cos = read_after(
        CTX.on.relation_broken(relation), testing.State(relations={relation}), Source.PUSHGATEWAY
    )
    assert cos is None


# -- logging ------------------------------------------------------------------------------------


def test_loki_two_units_the_first_by_unit_number_is_used():
    relation = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={1: loki_databag(1), 0: loki_databag(0)},
    )
    logging_ = read_after(
        CTX.on.relation_changed(relation, remote_unit=1),
        testing.State(relations={relation}),
        Source.LOKI,
    )
    assert isinstance(logging_, Contribution)
    assert logging_.properties == {
        "spark.executorEnv.LOKI_URL": loki_url(0),
        "spark.kubernetes.driverEnv.LOKI_URL": loki_url(0),
    }


def test_loki_units_are_ordered_by_number_not_by_text():
    relation = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={10: loki_databag(10), 2: loki_databag(2)},
    )
    logging_ = read_after(
        CTX.on.relation_changed(relation, remote_unit=10),
        testing.State(relations={relation}),
        Source.LOKI,
    )
    assert isinstance(logging_, Contribution)
    assert logging_.properties["spark.executorEnv.LOKI_URL"] == loki_url(2)


def test_loki_departing_unit_is_removed_even_while_juju_still_lists_it():
    relation = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={0: loki_databag(0), 1: loki_databag(1)},
    )
    logging_ = read_after(
        CTX.on.relation_departed(relation, remote_unit=0, departing_unit=0),
        testing.State(relations={relation}),
        Source.LOKI,
    )
    assert isinstance(logging_, Contribution)
    assert logging_.properties["spark.executorEnv.LOKI_URL"] == loki_url(1)


def test_loki_two_units_then_one_departed():
    both = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={0: loki_databag(0), 1: loki_databag(1)},
    )
    first = read_after(
        CTX.on.relation_changed(both, remote_unit=1), testing.State(relations={both}), Source.LOKI
    )
    assert isinstance(first, Contribution)
    assert first.properties["spark.executorEnv.LOKI_URL"] == loki_url(0)

    # What Juju shows in relation-departed of loki/0: the unit is no longer listed.
    one = testing.Relation(
        "logging", id=both.id, remote_app_name="loki", remote_units_data={1: loki_databag(1)}
    )
    after = read_after(
        CTX.on.relation_departed(one, remote_unit=0, departing_unit=0),
        testing.State(relations={one}),
        Source.LOKI,
    )
    assert isinstance(after, Contribution)
    assert after.properties["spark.executorEnv.LOKI_URL"] == loki_url(1)


def test_loki_last_unit_departed_waits():
    relation = testing.Relation(
        "logging", remote_app_name="loki", remote_units_data={0: loki_databag(0)}
    )
    logging_ = read_after(
        CTX.on.relation_departed(relation, remote_unit=0, departing_unit=0),
        testing.State(relations={relation}),
        Source.LOKI,
    )
    assert isinstance(logging_, Incomplete)


def test_loki_units_without_endpoint_yet_are_skipped_or_waited_for():
    waiting = testing.Relation("logging", remote_app_name="loki", remote_units_data={0: {}, 1: {}})
    assert isinstance(
        read_after(
            CTX.on.relation_changed(waiting, remote_unit=1),
            testing.State(relations={waiting}),
            Source.LOKI,
        ),
        Incomplete,
    )
    partly = testing.Relation(
        "logging", remote_app_name="loki", remote_units_data={0: {}, 1: loki_databag(1)}
    )
    logging_ = read_after(
        CTX.on.relation_changed(partly, remote_unit=1),
        testing.State(relations={partly}),
        Source.LOKI,
    )
    assert isinstance(logging_, Contribution)
    assert logging_.properties["spark.executorEnv.LOKI_URL"] == loki_url(1)


def test_loki_malformed_endpoint_is_invalid_naming_the_unit():
    relation = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={0: {"endpoint": "http://loki-0:3100"}, 1: loki_databag(1)},
    )
    logging_ = read_after(
        CTX.on.relation_changed(relation, remote_unit=0),
        testing.State(relations={relation}),
        Source.LOKI,
    )
    assert isinstance(logging_, Invalid)
    assert logging_.message.startswith("`endpoint` of loki/0 (loki): not JSON")


def test_loki_several_relations_the_lowest_relation_id_wins():
    agent = testing.Relation(
        "logging",
        id=12,
        remote_app_name="grafana-agent",
        remote_units_data={0: loki_databag(0, "agent")},
    )
    loki = testing.Relation(
        "logging", id=11, remote_app_name="loki", remote_units_data={3: loki_databag(3)}
    )
    logging_ = read_after(
        CTX.on.relation_changed(agent, remote_unit=0),
        testing.State(relations={agent, loki}),
        Source.LOKI,
    )
    assert isinstance(logging_, Contribution)
    assert logging_.properties["spark.executorEnv.LOKI_URL"] == loki_url(3)

    without_loki = read_after(
        CTX.on.relation_broken(loki), testing.State(relations={agent, loki}), Source.LOKI
    )
    assert isinstance(without_loki, Contribution)
    assert without_loki.properties["spark.executorEnv.LOKI_URL"] == loki_url(0, "agent")


def test_loki_relation_broken_no_longer_counts():
    relation = testing.Relation(
        "logging", remote_app_name="loki", remote_units_data={0: loki_databag(0)}
    )
    assert (
        read_after(
            CTX.on.relation_broken(relation), testing.State(relations={relation}), Source.LOKI
        )
        is None
    )
