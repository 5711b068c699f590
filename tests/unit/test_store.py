"""The SQLite store: schema, permissions, round trips, journal bound, corruption."""

import os
import sqlite3
import stat

import pytest

import store as store_module
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
    store.record_applied([AppliedRow("ns:a", AccountState.IN_SYNC, "h", "7")])
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
