"""The desired-state store: a SQLite file on the charm's Juju storage (sqlite-utils).

It holds what the hub wants (the merged properties and their hash), what it has seen (the
accounts in the cluster), what it did (per-account applied state), the state machine's state,
and a bounded journal of passes. It is a *rebuildable cache*: the cluster and Juju are the truth,
so a deleted or corrupt file is replaced by an empty one and the next pass fills it again from
relations, config and the cluster without rewriting any Secret that is already in sync.

The file is created with mode 0600: it holds credentials (the desired properties).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import sqlite_utils

from core.properties import SparkProperties
from machine import StatusReport

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
JOURNAL_LIMIT = 200


class AccountState(str, Enum):
    """Where one account's Secret stands after a pass."""

    IN_SYNC = "in-sync"
    PENDING = "pending"
    DRIFTED = "drifted"
    CONFLICT = "conflict"
    ERROR = "error"


@dataclass
class AppliedRow:
    """What the hub last did for one account.

    Attributes:
        key: `namespace:name`.
        state: the account's state.
        hash: the hash of the data the Secret holds (after our write), or "" if none.
        resource_version: the Secret's resourceVersion after our last write or observation.
        attempts: consecutive failed attempts (0 when in sync).
        last_error: the last failure, safe to show, or "".
        updated_at: UNIX time of the last change of this row.
    """

    key: str
    state: AccountState
    hash: str = ""
    resource_version: str = ""
    attempts: int = 0
    last_error: str = ""
    updated_at: float = field(default_factory=time.time)


@dataclass
class JournalEntry:
    """One pass, as recorded in the journal."""

    trigger: str
    state: str
    message: str
    accounts: int = 0
    writes: int = 0
    deletes: int = 0
    requests: int = 0
    at: float = field(default_factory=time.time)


def _migrate_1(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")  # type: ignore[union-attr]
    db["applied"].create(  # type: ignore[union-attr]
        {
            "key": str,
            "state": str,
            "hash": str,
            "resource_version": str,
            "attempts": int,
            "last_error": str,
            "updated_at": float,
        },
        pk="key",
    )
    db["journal"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "at": float,
            "trigger": str,
            "state": str,
            "message": str,
            "accounts": int,
            "writes": int,
            "deletes": int,
            "requests": int,
        },
        pk="id",
    )


def _migrate_2(db: sqlite_utils.Database) -> None:
    db["accounts"].create(  # type: ignore[union-attr]
        {"key": str, "namespace": str, "name": str, "uid": str, "in_scope": int}, pk="key"
    )
    db["applied"].create_index(["state"])  # type: ignore[union-attr]


MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {1: _migrate_1, 2: _migrate_2}
"""Schema version → the migration that produces it from the version before."""


class Store:
    """The hub's SQLite store. Open it with `Store.open`."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    @classmethod
    def open(cls, path: Path | str) -> Store:
        """Open (creating or migrating) the store at `path`; a corrupt file is set aside.

        Use ":memory:" for a store that lives only as long as the object.
        """
        if str(path) != ":memory:":
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)
            os.chmod(path, 0o600)
        try:
            return cls._open(path)
        except sqlite3.DatabaseError as error:
            if str(path) == ":memory:":
                raise
            aside = Path(f"{path}.corrupt-{int(time.time())}")
            logger.warning("store %s unreadable (%s); moved to %s, rebuilding", path, error, aside)
            os.replace(path, aside)
            Path(path).touch(mode=0o600)
            return cls._open(path)

    @classmethod
    def _open(cls, path: Path | str) -> Store:
        db = sqlite_utils.Database(path)
        try:
            db.execute(
                "PRAGMA journal_mode=WAL" if str(path) != ":memory:" else "PRAGMA user_version"
            )
            store = cls(db)
            store._migrate()
        except BaseException:
            db.close()
            raise
        return store

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self._db.conn:
                MIGRATIONS[version](self._db)
                self._db.execute(f"PRAGMA user_version = {version}")
            logger.info("store migrated to schema version %d", version)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction."""
        with self._db.conn:
            yield

    # -- meta ---------------------------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def _set(self, key: str, value: str) -> None:
        self._db["meta"].upsert({"key": key, "value": value}, pk="key")  # type: ignore[union-attr]

    @property
    def machine_state(self) -> str | None:
        """The state machine's persisted state, or None on a new store."""
        return self._get("machine_state")

    @machine_state.setter
    def machine_state(self, state: str) -> None:
        self._set("machine_state", state)

    @property
    def status(self) -> StatusReport:
        """The Juju status the last pass decided (waiting, before any pass)."""
        return StatusReport(
            self._get("status_name") or "waiting", self._get("status_message") or ""
        )

    @status.setter
    def status(self, status: StatusReport) -> None:
        self._set("status_name", status.name)
        self._set("status_message", status.message)

    @property
    def problems(self) -> list[str]:
        """Problems of the `spark-service-account` requests, as the last pass found them."""
        return json.loads(self._get("provider_problems") or "[]")

    @problems.setter
    def problems(self, problems: list[str]) -> None:
        self._set("provider_problems", json.dumps(problems))

    def desired(self) -> SparkProperties | None:
        """The last desired properties written, or None."""
        text = self._get("desired")
        return SparkProperties.from_json(text) if text else None

    def set_desired(self, properties: SparkProperties) -> None:
        """Record the desired properties and their hash (no write when they are unchanged)."""
        text = properties.to_json()
        if text == self._get("desired"):
            return
        with self._db.conn:
            self._set("desired", text)
            self._set("desired_hash", properties.hash)

    @property
    def desired_hash(self) -> str | None:
        """The hash of the desired properties, or None."""
        return self._get("desired_hash")

    # -- accounts and applied state -----------------------------------------------------------

    def record_accounts(self, rows: Iterable[dict[str, object]]) -> None:
        """Replace the set of accounts seen with `rows` (key, namespace, name, uid, in_scope).

        Skipped when the set is the one already recorded (the common, steady-state case).
        """
        rows = list(rows)
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
        if digest == self._get("accounts_digest"):
            return
        with self._db.conn:
            self._db.execute("DELETE FROM accounts")
            self._db["accounts"].insert_all(rows, pk="key")  # type: ignore[union-attr]
            self._set("accounts_digest", digest)

    def accounts(self) -> list[dict[str, object]]:
        """The accounts seen on the last pass."""
        return list(self._db["accounts"].rows_where(order_by="key"))  # type: ignore[union-attr]

    def applied(self) -> dict[str, AppliedRow]:
        """Per-account applied state, by `namespace:name`."""
        rows = self._db["applied"].rows  # type: ignore[union-attr]
        return {row["key"]: _applied_row(row) for row in rows}

    def record_applied(self, rows: Iterable[AppliedRow]) -> None:
        """Insert or update applied rows."""
        records = [asdict(row) | {"state": row.state.value} for row in rows]
        if records:
            with self._db.conn:
                self._db["applied"].upsert_all(records, pk="key")  # type: ignore[union-attr]

    def forget(self, keys: Iterable[str]) -> None:
        """Drop the applied rows of accounts that are gone."""
        keys = list(keys)
        if keys:
            with self._db.conn:
                self._db.conn.executemany(
                    "DELETE FROM applied WHERE key = ?", [(k,) for k in keys]
                )

    def counts(self) -> Counter[AccountState]:
        """How many accounts are in each state."""
        rows = self._db.execute("SELECT state, COUNT(*) FROM applied GROUP BY state").fetchall()
        return Counter({AccountState(state): count for state, count in rows})

    # -- journal ------------------------------------------------------------------------------

    def journal_append(self, entry: JournalEntry) -> None:
        """Append a pass to the journal, keeping only the last `JOURNAL_LIMIT`."""
        with self._db.conn:
            self._db["journal"].insert(asdict(entry))  # type: ignore[union-attr]
            self._db.execute(
                "DELETE FROM journal WHERE id <= (SELECT MAX(id) FROM journal) - ?",
                [JOURNAL_LIMIT],
            )

    def journal(self, limit: int = 20) -> list[JournalEntry]:
        """The most recent passes, newest first."""
        rows = self._db.execute(
            "SELECT at, trigger, state, message, accounts, writes, deletes, requests "
            "FROM journal ORDER BY id DESC LIMIT ?",
            [limit],
        ).fetchall()
        return [
            JournalEntry(
                at=at,
                trigger=trigger,
                state=state,
                message=message,
                accounts=accounts,
                writes=writes,
                deletes=deletes,
                requests=requests,
            )
            for at, trigger, state, message, accounts, writes, deletes, requests in rows
        ]


def _applied_row(row: dict[str, object]) -> AppliedRow:
    values = dict(row)
    values["state"] = AccountState(values["state"])
    return AppliedRow(**values)  # type: ignore[arg-type]
