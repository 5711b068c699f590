"""A store file edited by hand between two hooks, through the real charm (issue 16, item 8).

The file passes `PRAGMA quick_check` (its pages are sound) but its rows hold what the hub never
writes: wrong types, states that do not exist, negative or absurd numbers, times that are not
finite, keys that are not accounts, JSON that is not JSON. Every read goes through typed
validation, so the next hook neither crashes nor loses anything: the unreadable rows are
dropped (logged by table and kind, never the value), and the pass writes them again from the
cluster without rewriting one Secret.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing

from store import Store
from tests.charm.test_integrations import (
    ACCOUNTS,
    IN_SYNC,
    MEMORY,
    NONE,
    Hook,
    contents,
    prime,
    versions,
)
from tests.cluster.helpers import add_account, hub_secret
from tests.unit.test_store import APPLIED_COLUMNS, JOURNAL_COLUMNS

CANARY = "hunter2-hand-edit"
"""A value written by hand into the file: it must never reach a log line or a status."""

HOSTILE: list[object] = [
    "bogus",
    "",
    -1,
    0,
    2**63 - 1,
    -(2**63),
    1e308,
    -1e308,
    math.inf,
    -math.inf,
    1.5,
    b"\x00\xff",
    None,
    "[" * 20_000,
    '{"key": 1}',
    "[1, 2]",
    '"in-sync"',
    "in-sync\n",
    CANARY,
    "x" * 300,
    "team-a:" + "a" * 240,
]
"""Values written by hand: wrong types, absurd numbers, non-finite floats, blobs, NULL, JSON
nested 20,000 deep, almost-right text. (SQLite turns NaN into NULL, so NaN is NULL here.)"""


@pytest.fixture
def cluster(kube_server, kubeconfig):
    for namespace, name in ACCOUNTS:
        add_account(kube_server, namespace, name)
    return kube_server


@pytest.fixture
def hook(ctx, base_state, cluster):
    return Hook(ctx, base_state, cluster)


def store_path(ctx, storage) -> Path:
    return storage.get_filesystem(ctx) / "hub.sqlite3"


def columns(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """Every (table, column) of every table the file holds."""
    tables = [
        row[0]
        for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        if not row[0].startswith("sqlite_")
    ]
    return [
        (table, row[1])
        for table in tables
        for row in db.execute(f"PRAGMA table_info([{table}])").fetchall()
    ]


def edit(path: Path, edits: list[tuple[str, str, object]]) -> int:
    """Write each value into its column, as someone with `sqlite3` would; how many SQLite took.

    Every row of `meta` gets the value (each row is another setting); other tables get it in
    their first row only (their keys are unique). An edit SQLite itself refuses (text into
    the journal's integer id) is skipped: it cannot happen by hand either.
    """
    db = sqlite3.connect(path)
    taken = 0
    try:
        for table, column, value in edits:
            where = (
                ""
                if table == "meta" and column == "value"
                else (f" WHERE rowid = (SELECT MIN(rowid) FROM [{table}])")
            )
            try:
                with db:
                    db.execute(f"UPDATE [{table}] SET [{column}] = ?{where}", [value])
                taken += 1
            except (sqlite3.IntegrityError, sqlite3.DatabaseError):
                continue  # a duplicate key, or a datatype the column refuses
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    quick = sqlite3.connect(path)
    try:
        assert quick.execute("PRAGMA quick_check").fetchall() == [("ok",)]  # pages are sound
    finally:
        quick.close()
    return taken


def every_column_edits(path: Path, value: object) -> list[tuple[str, str, object]]:
    db = sqlite3.connect(path)
    try:
        found = columns(db)
    finally:
        db.close()
    assert {table for table, _ in found} >= {"meta", "applied", "accounts", "journal"}
    return [(table, column, value) for table, column in found]


def primed(hook: Hook, path: Path) -> bool:
    if not path.exists():
        return False
    store = Store.open(path)
    try:
        return len(store.applied()) == len(ACCOUNTS)
    finally:
        store.close()


def assert_served_and_readable(
    hook: Hook, out: testing.State, before: dict, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The hub is in sync, wrote nothing, lost nothing and logged no hand-written value.

    It also rebuilt every row it reads: reading the store again drops nothing.
    """
    assert out.unit_status == IN_SYNC, out.unit_status
    assert hook.writes == NONE
    assert versions(hook.server) == before
    assert contents(hook.server) == MEMORY
    logged = " ".join(line.message for line in hook.ctx.juju_log)
    assert CANARY not in logged and CANARY not in out.unit_status.message
    caplog.clear()
    store = Store.open(path)
    try:
        applied = store.applied()
        assert sorted(applied) == sorted(f"{ns}:{name}" for ns, name in ACCOUNTS)
        assert {row.state.value for row in applied.values()} == {"in-sync"}
        assert [row["key"] for row in store.accounts()] == sorted(applied)
        assert store.machine_state == "active"
        assert store.journal(1)[0].state == "active"
        assert store.status == store.status.__class__("active", IN_SYNC.message)
    finally:
        store.close()
    assert not [r for r in caplog.records if r.getMessage().startswith("store: dropped")]


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:24])
def test_every_column_of_every_table_edited_by_hand(hook, ctx, storage, caplog, value):
    before = prime(hook)
    path = store_path(ctx, storage)
    assert edit(path, every_column_edits(path, value)) > 0
    out = hook.run(lambda on: on.update_status())
    assert_served_and_readable(hook, out, before, path, caplog)
    hook.run(lambda on: on.action("list-accounts"))
    listed = json.loads(ctx.action_results["accounts"])  # type: ignore[index]
    assert {row["state"] for row in listed} == {"in-sync"} and len(listed) == len(ACCOUNTS)


def test_the_drop_is_logged_by_kind_never_by_value(hook, ctx, storage, caplog):
    before = prime(hook)
    path = store_path(ctx, storage)
    edit(
        path,
        [
            ("applied", "state", CANARY),
            ("applied", "attempts", -5),
            ("meta", "value", CANARY),
            ("journal", "at", math.inf),
        ],
    )
    out = hook.run(lambda on: on.update_status())
    assert_served_and_readable(hook, out, before, path, caplog)
    warnings = [line.message for line in ctx.juju_log if line.level == "WARNING"]
    dropped = [message for message in warnings if message.startswith("store: dropped")]
    assert any("applied row" in message and "state: enum" in message for message in dropped)
    assert any("the unreadable machine_state" in message for message in dropped)
    assert not any(CANARY in message for message in warnings)


def test_a_negative_schema_version_is_set_aside_like_a_damaged_file(hook, ctx, storage, caplog):
    before = prime(hook)
    path = store_path(ctx, storage)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = -7")
    db.close()
    out = hook.run(lambda on: on.update_status())
    assert_served_and_readable(hook, out, before, path, caplog)


def test_a_dropped_table_is_set_aside_like_a_damaged_file(hook, ctx, storage, caplog):
    before = prime(hook)
    path = store_path(ctx, storage)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE applied")
    db.close()
    out = hook.run(lambda on: on.update_status())
    assert_served_and_readable(hook, out, before, path, caplog)


# -- property-based: any value, in any column -------------------------------------------------

_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=16),
    st.none(),
    st.sampled_from(HOSTILE),
    st.sampled_from(
        ["active", "blocked", "reconciling", "in-sync", "conflict", "invalid", "a" * 64, "[]"]
    ),
)
_COLUMNS = st.sampled_from(
    [
        ("meta", "key"),
        ("meta", "value"),
        *[("applied", c) for c in APPLIED_COLUMNS],
        *[("accounts", c) for c in ("key", "namespace", "name", "uid", "in_scope")],
        *[("journal", c) for c in JOURNAL_COLUMNS],
    ]
)
TRIED = {"examples": 0, "edits": 0, "hooks": 0, "crashes": 0, "writes": 0, "lost": 0}
"""What the property-based test did (printed for docs/reliability.md)."""


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=st.lists(st.tuples(_COLUMNS, _VALUES), min_size=1, max_size=6))
def test_no_hand_edit_crashes_a_hook_or_costs_a_write(hook, ctx, storage, caplog, edits):
    path = store_path(ctx, storage)
    if not primed(hook, path):
        prime(hook)
    before = versions(hook.server)
    TRIED["examples"] += 1
    TRIED["edits"] += edit(path, [(table, column, value) for (table, column), value in edits])
    try:
        out = hook.run(lambda on: on.update_status())
    except testing.errors.UncaughtCharmError:
        TRIED["crashes"] += 1
        raise
    TRIED["hooks"] += 1
    TRIED["writes"] += sum(hook.writes.values())
    TRIED["lost"] += sum(1 for ns, name in ACCOUNTS if hub_secret(hook.server, ns, name) is None)
    assert_served_and_readable(hook, out, before, path, caplog)


def test_zz_report_what_the_property_based_test_tried():
    print(f"hand-edited stores: {TRIED}")
