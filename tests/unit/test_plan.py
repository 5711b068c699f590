"""The reconciler's pure planning rules."""

from core.cluster import (
    HASH_ANNOTATION,
    HUB_MANAGER,
    MANAGED_BY,
    OWNER_ANNOTATION,
    Account,
    AccountRef,
    LiveSecret,
    Owner,
)
from core.config import parse_scope
from core.properties import Contribution, Source, SparkProperties
from reconciler import Action, Observation, plan

OWNER = Owner("hub", "model-1")
DESIRED = SparkProperties.merge([Contribution(Source.OPTIONS, {"spark.a": "1"})])


def account(ns, name):
    return Account(AccountRef(ns, name), f"uid-{name}")


def secret(ns, name, *, data=None, owner=OWNER.annotation, hash_=None):
    annotations = {} if owner is None else {OWNER_ANNOTATION: owner}
    annotations[HASH_ANNOTATION] = hash_ or DESIRED.hash
    return LiveSecret(
        AccountRef(ns, name),
        "5",
        {MANAGED_BY: HUB_MANAGER},
        annotations,
        DESIRED.secret_data() if data is None else data,
    )


def actions(accounts, secrets, scope="*:*"):
    observation = Observation(accounts, {s.ref: s for s in secrets})
    return {str(s.ref): s.action for s in plan(observation, DESIRED, OWNER, parse_scope(scope))}


def test_each_case_of_the_plan():
    planned = actions(
        [account("a", n) for n in ("new", "ok", "edited", "stale", "legacy", "theirs")],
        [
            secret("a", "ok"),
            secret("a", "edited", data={"spark.a": "2"}),
            secret("a", "stale", data={"spark.a": "0"}, hash_="old"),
            secret("a", "legacy", owner=None),
            secret("a", "theirs", owner="model-2/hub"),
            secret("a", "gone"),
            secret("a", "gone-theirs", owner="model-2/hub"),
        ],
    )
    assert planned == {
        "a:new": Action.CREATE,
        "a:ok": Action.IN_SYNC,
        "a:edited": Action.UPDATE,
        "a:stale": Action.UPDATE,
        "a:legacy": Action.ADOPT,
        "a:theirs": Action.CONFLICT,
        "a:gone": Action.DELETE,
    }


def test_an_edited_secret_is_marked_drifted():
    observation = Observation(
        [account("a", "x")], {AccountRef("a", "x"): secret("a", "x", data={"spark.a": "2"})}
    )
    (step,) = plan(observation, DESIRED, OWNER, parse_scope("*:*"))
    assert step.drifted


def test_undecodable_values_are_never_in_sync():
    planned = actions([account("a", "x")], [secret("a", "x", data={"spark.a": None})])
    assert planned == {"a:x": Action.UPDATE}


def test_out_of_scope_accounts_get_nothing_and_lose_our_secret():
    planned = actions(
        [account("a", "in"), account("b", "out"), account("b", "bare")],
        [secret("b", "out")],
        scope="a:*",
    )
    assert planned == {"a:in": Action.CREATE, "b:out": Action.DELETE}
