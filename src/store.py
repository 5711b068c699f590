"""The desired-state store: a SQLite file on the charm's Juju storage (sqlite-utils).

It holds what the hub wants (the keys of the merged properties, their sources and the hash of
the Secret data — never a value), what it has seen (the accounts in the cluster), what it did
(per-account applied state), the state machine's state, and a bounded journal of passes. It is
a *rebuildable cache*: the cluster and Juju are the truth, so a deleted or corrupt file — one
SQLite cannot open, or whose pages fail `PRAGMA quick_check` — is set aside as
`<file>.corrupt-<time>` (only the latest copy is kept, and it is removed once the rebuilt store
has recorded a converged pass) and the next pass fills a new file again from relations, config
and the cluster without rewriting any Secret that is already in sync.

Values (credentials among them) are never written: schema version 3 drops those older files
held, and `secure_delete` with a `VACUUM` leaves no copy in free pages. The file is still
created with mode 0600.
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

SCHEMA_VERSION = 3
JOURNAL_LIMIT = 200


class AccountState(str, Enum):
    """Where one account's Secret stands after a pass."""

    IN_SYNC = "in-sync"
    PENDING = "pending"
    DRIFTED = "drifted"
    CONFLICT = "conflict"
    ERROR = "error"
    INVALID = "invalid"
    """The API server refused the Secret as written (400/422): the operator must act."""


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


def _migrate_3(db: sqlite_utils.Database) -> None:
    """Drop the desired properties' values (versions ≤ 2 stored them, credentials included)."""
    db.execute("DELETE FROM meta WHERE key = 'desired'")


MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {
    1: _migrate_1,
    2: _migrate_2,
    3: _migrate_3,
}
"""Schema version → the migration that produces it from the version before."""


class Store:
    """The hub's SQLite store. Open it with `Store.open`."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self.rebuilding = False
        """Whether corrupt copies of this file are set aside, awaiting a converged pass."""

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
            store = cls._open(path)
        except sqlite3.DatabaseError as error:
            if str(path) == ":memory:":
                raise
            _set_aside(Path(path), type(error).__name__)
            store = cls._open(path)
        if str(path) != ":memory:":
            store.rebuilding = bool(_set_aside_copies(Path(path)))
        return store

    @classmethod
    def _open(cls, path: Path | str) -> Store:
        db = sqlite_utils.Database(path)
        try:
            db.execute("PRAGMA secure_delete = ON")
            if str(path) != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
                _check_pages(db)
            store = cls(db)
            store._migrate()
        except BaseException:  # close it, whatever went wrong, then let the caller decide
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
        if current and current < 3:
            self._db.execute("VACUUM")  # no page of the old file keeps a dropped value
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @property
    def path(self) -> Path | None:
        """The file, or None for an in-memory store."""
        name = self._db.execute("PRAGMA database_list").fetchone()[2]
        return Path(name) if name else None

    def discard_set_aside(self) -> int:
        """Remove the corrupt copies set aside before this file was rebuilt; how many.

        Call once a pass has converged on the rebuilt file (then nothing in them is needed).
        """
        if self.path is None or not self.rebuilding:
            return 0
        self.rebuilding = False
        removed = 0
        for aside in _set_aside_copies(self.path):
            aside.unlink(missing_ok=True)
            removed += 1
        if removed:
            logger.info("store rebuilt: removed %d corrupt copy (copies)", removed)
        return removed

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

    @property
    def refused_hash(self) -> str | None:
        """The hash of desired properties the API server refused (400/422), or None."""
        return self._get("refused_hash") or None

    @refused_hash.setter
    def refused_hash(self, value: str | None) -> None:
        if (value or "") != (self._get("refused_hash") or ""):
            self._set("refused_hash", value or "")

    @property
    def watch_missing(self) -> list[str]:
        """The watcher's permissions the last access review found missing."""
        return json.loads(self._get("watch_missing") or "[]")

    @watch_missing.setter
    def watch_missing(self, missing: list[str]) -> None:
        if json.dumps(missing) != (self._get("watch_missing") or "[]"):
            self._set("watch_missing", json.dumps(missing))

    def desired_keys(self) -> list[dict[str, object]]:
        """Key, source and credential flag of each desired property (values are not stored)."""
        return json.loads(self._get("desired_keys") or "[]")

    def set_desired(self, properties: SparkProperties) -> None:
        """Record the desired properties' keys and hash (no write when they are unchanged)."""
        keys = json.dumps(properties.describe())
        if properties.hash == self._get("desired_hash") and keys == self._get("desired_keys"):
            return
        with self._db.conn:
            self._set("desired_keys", keys)
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
        # `vars`, not `asdict`: the fields are scalars, and asdict's deep copy is most of the cost
        records = [vars(row) | {"state": row.state.value} for row in rows]
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


def _check_pages(db: sqlite_utils.Database) -> None:
    """Raise `sqlite3.DatabaseError` unless every page of the file is sound."""
    problems = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError(f"quick_check found {len(problems)} problems")


def _set_aside_copies(path: Path) -> list[Path]:
    """The corrupt copies of `path`, oldest first."""
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


def _set_aside(path: Path, why: str) -> None:
    """Move a corrupt store (and its WAL) aside, keeping only this latest copy."""
    for older in _set_aside_copies(path):
        older.unlink(missing_ok=True)
    aside = path.with_name(f"{path.name}.corrupt-{time.time_ns()}")
    logger.warning("store %s unreadable (%s); moved to %s, rebuilding", path, why, aside.name)
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.touch(mode=0o600)
    os.chmod(path, 0o600)


def _applied_row(row: dict[str, object]) -> AppliedRow:
    values = dict(row)
    values["state"] = AccountState(values["state"])
    return AppliedRow(**values)  # type: ignore[arg-type]
