"""The SQLite store: schema, permissions, round trips, journal bound, corruption, hand edits."""

import dataclasses
import os
import sqlite3
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import store as store_module
from core.cluster import AccountRef
from core.properties import Contribution, Source, SparkProperties
from machine import StatusReport
from store import JOURNAL_LIMIT, SCHEMA_VERSION, AccountState, AppliedRow, JournalEntry, Store


def test_new_store_is_private_and_at_the_latest_schema(tmp_path):
    path = tmp_path / "state" / "hub.sqlite3"
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.machine_state is None
    assert store.desired_keys() == []
    assert store.status == StatusReport("waiting", "")
    store.close()


def test_round_trips(tmp_path):
    store = Store.open(tmp_path / "hub.sqlite3")
    desired = SparkProperties.merge([Contribution(Source.OPTIONS, {"spark.a": "1"})])
    store.set_desired(desired)
    store.machine_state = "active"
    store.status = StatusReport("active", "1 accounts in sync")
    store.record_applied([AppliedRow("ns:a", AccountState.IN_SYNC, "a" * 64, "7")])
    store.record_accounts(
        [{"key": "ns:a", "namespace": "ns", "name": "a", "uid": "u", "in_scope": 1}]
    )
    store.close()
    again = Store.open(tmp_path / "hub.sqlite3")
    assert again.desired_keys() == [{"key": "spark.a", "source": "options", "sensitive": False}]
    assert again.desired_hash == desired.hash
    assert again.machine_state == "active"
    assert again.status.message == "1 accounts in sync"
    assert again.applied()["ns:a"].resource_version == "7"
    assert again.counts()[AccountState.IN_SYNC] == 1
    assert again.accounts()[0]["uid"] == "u"
    again.forget(["ns:a"])
    assert again.applied() == {}
    again.close()


def test_journal_is_bounded(tmp_path):
    store = Store.open(tmp_path / "hub.sqlite3")
    for number in range(JOURNAL_LIMIT + 25):
        store.journal_append(JournalEntry(trigger=f"t{number}", state="active", message=""))
    entries = store.journal(limit=1000)
    assert len(entries) == JOURNAL_LIMIT
    assert entries[0].trigger == f"t{JOURNAL_LIMIT + 24}"
    store.close()


def test_corrupt_file_is_set_aside_and_rebuilt(tmp_path):
    path = tmp_path / "hub.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION
    assert list(tmp_path.glob("hub.sqlite3.corrupt-*"))
    store.close()


def test_migrations_run_from_an_older_schema(tmp_path, monkeypatch):
    path = tmp_path / "hub.sqlite3"
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 1)
    Store.open(path).close()
    monkeypatch.undo()
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION
    store.record_accounts(
        [{"key": "a:b", "namespace": "a", "name": "b", "uid": "", "in_scope": 1}]
    )
    store.close()


def test_a_database_that_fails_to_open_is_closed(tmp_path, monkeypatch):
    """The error path closes what it opened (Python 3.13 warns about unclosed connections)."""
    opened: list[store_module.sqlite_utils.Database] = []
    real_database = store_module.sqlite_utils.Database

    def recording_database(*args, **kwargs):
        database = real_database(*args, **kwargs)
        opened.append(database)
        return database

    monkeypatch.setattr(store_module.sqlite_utils, "Database", recording_database)
    path = tmp_path / "hub.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store = Store.open(path)
    assert len(opened) == 2
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened[0].execute("SELECT 1")
    assert store.schema_version == SCHEMA_VERSION
    store.close()


def test_inner_page_damage_is_detected_set_aside_and_only_the_latest_copy_kept(tmp_path):
    path = tmp_path / "hub.sqlite3"
    for round_ in range(2):
        store = Store.open(path)
        store.record_accounts(
            [
                {"key": f"a:{n}", "namespace": "a", "name": str(n), "uid": "", "in_scope": 1}
                for n in range(200)
            ]
        )
        store.close()
        data = bytearray(path.read_bytes())
        data[4096:] = b"\x5a" * (len(data) - 4096)  # the header page stays intact
        path.write_bytes(bytes(data))
        rebuilt = Store.open(path)
        assert rebuilt.rebuilding
        assert rebuilt.accounts() == []
        assert len(list(tmp_path.glob("hub.sqlite3.corrupt-*"))) == 1, round_
        rebuilt.close()
    again = Store.open(path)
    assert again.discard_set_aside() == 1
    assert not list(tmp_path.glob("hub.sqlite3.corrupt-*"))
    assert again.discard_set_aside() == 0
    again.close()


def test_schema_3_drops_the_values_older_files_stored(tmp_path, monkeypatch):
    path = tmp_path / "hub.sqlite3"
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    old = Store.open(path)
    old._set("desired", '[{"key": "spark.a.secret", "value": "hunter2-in-clear"}]')
    old.close()
    monkeypatch.undo()
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION == 3
    store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("hub.sqlite3*"))
    assert b"hunter2-in-clear" not in data


# -- rows edited by hand: read through typed validation, dropped when unreadable ----------------

HASH = "0123456789abcdef" * 4
YEAR_2100 = 4_102_444_800.0
APPLIED_COLUMNS = tuple(field.name for field in dataclasses.fields(AppliedRow))
JOURNAL_COLUMNS = ("id", *(field.name for field in dataclasses.fields(JournalEntry)))


def filled(path) -> Store:
    """A store holding one row of every kind, as a pass writes them."""
    store = Store.open(path)
    store.set_desired(SparkProperties.merge([Contribution(Source.OPTIONS, {"spark.a": "1"})]))
    store.machine_state = "active"
    store.status = StatusReport("active", "2 accounts in sync")
    store.problems = ["spark-service-account:3 (kyuubi): namespace refused"]
    store.watch_missing = ["watch secrets"]
    store.refused_hash = HASH
    store.record_applied(
        [
            AppliedRow("ns:a", AccountState.IN_SYNC, HASH, "7", updated_at=1.7e9),
            AppliedRow("ns:b", AccountState.ERROR, "", "8", 2, "503 from API", 1.7e9),
        ]
    )
    store.record_accounts(
        [
            {"key": "ns:a", "namespace": "ns", "name": "a", "uid": "u-a", "in_scope": 1},
            {"key": "ns:b", "namespace": "ns", "name": "b", "uid": "u-b", "in_scope": 0},
        ]
    )
    store.journal_append(JournalEntry("config-changed", "active", "2 accounts in sync", at=1.7e9))
    return store


def hand_edit(store: Store, sql: str, *params) -> None:
    """What someone with `sqlite3` does to the file (another connection, committed)."""
    path = store.path
    assert path is not None
    db = sqlite3.connect(path)
    with db:
        db.execute(sql, params)
    db.close()


def dropped(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("store: dropped")]


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("state", "exploded", "state: enum"),
        ("state", None, "state: enum"),
        ("attempts", -1, "attempts: greater_than_equal"),
        ("attempts", 2**63 - 1, "attempts: less_than_equal"),
        ("attempts", "three", "attempts: int_type"),
        ("attempts", 2.5, "attempts: int_type"),
        ("updated_at", float("inf"), "updated_at: finite_number"),
        ("updated_at", -5.0, "updated_at: greater_than_equal"),
        ("updated_at", 1e300, "updated_at: less_than_equal"),
        ("updated_at", "yesterday", "updated_at: float_type"),
        ("hash", 42, "hash: string_pattern_mismatch"),
        ("hash", b"\x00" * 32, "hash: string_type"),
        ("hash", "z" * 64, "hash: string_pattern_mismatch"),
        ("resource_version", "7\n8", "resource_version: string_pattern_mismatch"),
        ("last_error", b"\xff", "last_error: string_type"),
        ("key", None, "key: string_type"),
        ("key", "not an account", "key: string_pattern_mismatch"),
        ("key", "ns:" + "a" * 240, "key: value_error"),
    ],
)
def test_an_unreadable_applied_row_is_dropped_and_read_as_absent(
    tmp_path, caplog, column, value, problem
):
    store = filled(tmp_path / "hub.sqlite3")
    hand_edit(store, f"UPDATE applied SET [{column}] = ? WHERE key = 'ns:b'", value)
    assert sorted(store.applied()) == ["ns:a"]
    assert store.counts() == {AccountState.IN_SYNC: 1}
    (message,) = dropped(caplog)
    assert message == f"store: dropped 1 unreadable applied row(s) ({problem})"
    caplog.clear()
    assert sorted(store.applied()) == ["ns:a"] and not dropped(caplog)  # deleted, not re-read
    store.record_applied([AppliedRow("ns:b", AccountState.IN_SYNC, HASH, "9")])  # the next pass
    assert store.applied()["ns:b"].resource_version == "9"
    store.close()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("in_scope", 7),
        ("in_scope", "yes"),
        ("uid", b"\x00"),
        ("uid", "u" * 200),
        ("key", "ns:c"),
        ("namespace", 5),
        ("name", None),
    ],
)
def test_an_unreadable_account_row_is_rewritten_by_the_next_pass(tmp_path, caplog, column, value):
    store = filled(tmp_path / "hub.sqlite3")
    rows = store.accounts()
    hand_edit(store, f"UPDATE accounts SET [{column}] = ? WHERE key = 'ns:b'", value)
    store.record_accounts(rows)  # the same set: only the edit makes the pass write it again
    assert store.accounts() == rows
    assert not dropped(caplog)
    store.close()


def test_a_well_formed_account_row_that_is_no_account_is_dropped_and_its_set_recorded_again(
    tmp_path, caplog
):
    store = filled(tmp_path / "hub.sqlite3")
    rows = store.accounts()
    hand_edit(store, "UPDATE accounts SET key = 'NS:b', namespace = 'NS' WHERE key = 'ns:b'")
    assert [row["key"] for row in store.accounts()] == ["ns:a"]
    assert dropped(caplog) == [
        "store: dropped 1 unreadable accounts row(s) (key: string_pattern_mismatch)"
    ]
    store.record_accounts(rows)
    assert store.accounts() == rows
    store.close()


@pytest.mark.parametrize(
    ("key", "value", "read"),
    [
        ("machine_state", "exploded", lambda s: s.machine_state is None),
        ("machine_state", 3, lambda s: s.machine_state is None),
        ("status_name", "fine", lambda s: s.status == StatusReport("waiting", "")),
        ("status_message", b"\x00", lambda s: s.status == StatusReport("active", "")),
        ("provider_problems", "{not json", lambda s: s.problems == []),
        ("provider_problems", "[" * 100_000, lambda s: s.problems == []),
        ("provider_problems", "[1, 2]", lambda s: s.problems == []),
        ("provider_problems", b"[]", lambda s: s.problems == []),
        ("watch_missing", '"watch secrets"', lambda s: s.watch_missing == []),
        ("desired_keys", '[{"key": 1}]', lambda s: s.desired_keys() == []),
        (
            "desired_keys",
            '[{"key": "a", "source": "x", "sensitive": 0}]',
            lambda s: not s.desired_keys(),
        ),
        ("desired_hash", "not a hash", lambda s: s.desired_hash is None),
        ("refused_hash", 5, lambda s: s.refused_hash is None),
        ("accounts_digest", b"\x00", lambda s: s._get("accounts_digest") is None),
    ],
)
def test_an_unreadable_setting_is_dropped_and_read_as_absent(tmp_path, caplog, key, value, read):
    store = filled(tmp_path / "hub.sqlite3")
    hand_edit(store, "UPDATE meta SET value = ? WHERE key = ?", value, key)
    assert read(store)
    (message,) = dropped(caplog)
    assert message.startswith(f"store: dropped the unreadable {key} (")
    assert store._raw(key) is None  # deleted from the file
    store.close()


def test_the_journal_survives_an_absurd_id_and_unreadable_entries(tmp_path, caplog):
    store = filled(tmp_path / "hub.sqlite3")
    hand_edit(store, "UPDATE journal SET id = ?", 2**63 - 1)
    hand_edit(store, "INSERT INTO journal VALUES (5, 'x', 'x', 'x', 'x', 1, 2, 3, 4)")
    hand_edit(
        store,
        "INSERT INTO journal (id, at, trigger, state, message, accounts, writes, "
        "deletes, requests) VALUES (6, 1e999, 't', 'active', '', 0, 0, 0, 0)",
    )
    for number in range(JOURNAL_LIMIT + 5):
        store.journal_append(JournalEntry(trigger=f"t{number}", state="active", message=""))
    entries = store.journal(limit=1000)
    assert len(entries) == JOURNAL_LIMIT
    assert entries[0].trigger == f"t{JOURNAL_LIMIT + 4}"
    assert dropped(caplog) == ["store: dropped 1 unreadable journal row(s) (id: out of range)"]
    store.close()


def test_a_negative_schema_version_or_a_missing_table_is_set_aside(tmp_path):
    path = tmp_path / "hub.sqlite3"
    for damage in ("PRAGMA user_version = -3", "DROP TABLE applied", "DROP TABLE accounts"):
        filled(path).close()
        db = sqlite3.connect(path)
        db.execute(damage)
        db.close()
        store = Store.open(path)
        assert store.rebuilding, damage
        assert store.applied() == {} and store.schema_version == SCHEMA_VERSION
        store.close()


def test_a_store_as_the_hub_writes_it_reads_back_without_a_drop(tmp_path, caplog):
    store = filled(tmp_path / "hub.sqlite3")
    store.close()
    store = Store.open(tmp_path / "hub.sqlite3")
    assert len(store.applied()) == 2 and len(store.accounts()) == 2
    assert store.machine_state == "active" and store.status.message == "2 accounts in sync"
    assert store.problems and store.watch_missing and store.refused_hash == HASH
    assert store.desired_keys() and store.desired_hash and store.journal()
    total, unreadable = store._db.execute(store_module.ACCOUNTS_AUDIT).fetchone()
    assert (total, unreadable) == (2, 0)
    assert not dropped(caplog)
    store.close()


# -- the fast checks agree with the slow ones ---------------------------------------------------

_NAMEISH = st.from_regex(r"[a-z0-9.\-:A]{0,8}", fullmatch=True)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(
    text=st.one_of(
        _NAMEISH,
        st.builds(lambda a, b: f"{a}:{b}", _NAMEISH, _NAMEISH),
        st.builds(lambda n, m: f"{'a' * n}:{'b' * m}", st.integers(0, 70), st.integers(0, 240)),
        st.text(max_size=12),
    )
)
def test_the_account_key_pattern_is_account_ref_parse(text):
    """The store matches keys with pydantic's regex engine; `AccountRef.parse` is the rule."""
    try:
        AccountRef.parse(text)
        parsed = True
    except ValueError:
        parsed = False
    try:
        store_module._APPLIED.validate_python((text, "in-sync", "", "", 0, "", 0.0))
        valid = True
    except store_module.ValidationError:
        valid = False
    assert valid == parsed


_SQL_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.binary(max_size=3),
    st.none(),
    st.sampled_from(["ns", "a", "ns:a", "", "u" * 129, 0, 1, "NS", "a" * 240]),
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    row=st.fixed_dictionaries(
        {
            "key": st.one_of(st.just("ns:a"), _SQL_VALUES),
            "namespace": st.one_of(st.just("ns"), _SQL_VALUES),
            "name": st.one_of(st.just("a"), _SQL_VALUES),
            "uid": st.one_of(st.just("u"), _SQL_VALUES),
            "in_scope": st.one_of(st.just(1), _SQL_VALUES),
        }
    )
)
def test_the_pass_audit_of_accounts_sees_what_a_read_would_drop(row):
    """A row a read keeps never costs a rewrite.

    A row the audit passes is dropped only when its (consistent, well-typed) key is not an
    account's, which the read then reports.
    """
    store = Store.open(":memory:")
    store._db.execute(
        "INSERT INTO accounts (key, namespace, name, uid, in_scope) VALUES (?, ?, ?, ?, ?)",
        [row["key"], row["namespace"], row["name"], row["uid"], row["in_scope"]],
    )
    _, unreadable = store._db.execute(store_module.ACCOUNTS_AUDIT).fetchone()
    kept = bool(store.accounts())
    if kept:
        assert unreadable == 0
    elif unreadable == 0:
        with pytest.raises(ValueError):
            AccountRef.parse(str(row["key"]))
    store.close()


# -- property: any value in any column never breaks a read -----------------------------------

_COLUMNS = st.sampled_from(
    [
        ("meta", "key"),
        ("meta", "value"),
        *[("applied", c) for c in APPLIED_COLUMNS],
        *[("accounts", c) for c in ("key", "namespace", "name", "uid", "in_scope")],
        *[("journal", c) for c in JOURNAL_COLUMNS],
    ]
)
_ANY = st.one_of(
    _SQL_VALUES,
    st.sampled_from(
        ["[" * 5000, "[1]", '["x"]', '{"a": 1}', "in-sync", "active", HASH, 2**53 + 1]
    ),
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(_COLUMNS, _ANY), min_size=1, max_size=5))
def test_no_hand_edit_breaks_a_read_and_what_is_read_is_typed(tmp_path_factory, edits):
    store = filled(tmp_path_factory.mktemp("store") / "hub.sqlite3")
    for (table, column), value in edits:
        where = "" if table == "meta" else f" WHERE rowid = (SELECT MIN(rowid) FROM {table})"
        try:
            hand_edit(store, f"UPDATE [{table}] SET [{column}] = ?{where}", value)
        except sqlite3.IntegrityError:
            pass  # SQLite itself refuses it (a duplicate key, text in the integer id)
    for row in store.applied().values():
        assert isinstance(row.state, AccountState) and 0 <= row.attempts <= 2**31 - 1
        assert 0 <= row.updated_at <= YEAR_2100
        AccountRef.parse(row.key)
    for account in store.accounts():
        assert account["key"] == f"{account['namespace']}:{account['name']}"
    assert store.machine_state in (
        None,
        "active",
        "blocked",
        "reconciling",
        "waiting-for-integrations",
    )
    assert isinstance(store.status.message, str) and isinstance(store.problems, list)
    assert all(isinstance(p, str) for p in store.problems + store.watch_missing)
    assert all(isinstance(k["sensitive"], bool) for k in store.desired_keys())
    assert store.desired_hash is None or len(store.desired_hash) == 64
    assert all(0 <= e.at <= YEAR_2100 for e in store.journal(1000))
    store.journal_append(JournalEntry("update-status", "active", ""))
    store.record_applied([AppliedRow("ns:a", AccountState.IN_SYNC, HASH, "1")])
    assert store.journal(1)[0].trigger == "update-status"
    store.close()
