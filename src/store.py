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

Every row is read through typed validation (pydantic, strict: the types SQLite hands back, and
bounds): a row that passes `quick_check` but was edited by hand into something the hub never
writes — a wrong type, a state that does not exist, a negative or absurd number, a time that is
not finite, a key that is not an account — is deleted, logged by table and kind of problem
(never its value), and read as absent, so the next pass writes it again from the cluster, as
it would fill a new file. The accounts table, which a pass does not read (it skips rewriting an
unchanged set), is audited by one SQL scan per pass instead (`ACCOUNTS_AUDIT`). A file whose
tables or columns are missing, or whose schema version is negative, is set aside like a
damaged one.
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import sqlite_utils
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from core.cluster import MAX_ACCOUNT_NAME
from core.properties import Source, SparkProperties
from machine import ALL_STATES, JUJU_STATUS, StatusReport

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


# -- what a row may hold: anything else was not written by the hub ------------------------------

MAX_TIME = 4_102_444_800.0
"""2100-01-01T00:00:00Z: a later time (or a negative one) in a row is absurd."""
MAX_COUNT = 2**31 - 1
"""A counter beyond this is absurd (and `+ 1` on SQLite's largest integer would overflow)."""
MAX_TEXT = 2**20
"""The longest text kept (a status message, an error): 1 MiB of characters."""
MAX_LIST = 100_000
"""The most entries a stored list (problems, desired keys) may have."""
MAX_JOURNAL_ID = 2**53
"""Journal ids count passes from 1; a larger one was written by hand (and breaks the trim)."""

_STRICT = ConfigDict(strict=True, allow_inf_nan=False, frozen=True)
_Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
_Short = Annotated[str, StringConstraints(max_length=256)]
_Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
_Time = Annotated[float, Field(ge=0.0, le=MAX_TIME, allow_inf_nan=False)]
_Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
_HashOrEmpty = Annotated[str, StringConstraints(pattern=r"^(?:[0-9a-f]{64})?$")]
_ResourceVersion = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{0,128}$")]


_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
ACCOUNT_KEY_PATTERN = rf"^[a-z0-9](?:[-a-z0-9]{{0,61}}[a-z0-9])?:{_LABEL}(?:\.{_LABEL})*$"
"""`namespace:name` as `AccountRef.parse` takes it (a DNS-1123 label of at most 63 characters,
`:`, a DNS-1123 subdomain), matched by pydantic's own regex engine: reading 50,000 rows costs
half what calling `AccountRef.parse` on each would. A unit test holds the two to the same
answers; `_account_name_length` adds the name's bound."""


def _account_name_length(text: str) -> str:
    if len(text) - text.index(":") - 1 > MAX_ACCOUNT_NAME:
        raise ValueError("the account name is too long")
    return text


def _one_of(allowed: Sequence[str]) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in allowed:
            raise ValueError("not one of the known values")
        return text

    return check


ACCOUNTS_AUDIT = (
    "SELECT COUNT(*), COALESCE(SUM(NOT ("
    "typeof(namespace) = 'text' AND length(namespace) BETWEEN 1 AND 63"
    f" AND typeof(name) = 'text' AND length(name) BETWEEN 1 AND {MAX_ACCOUNT_NAME}"
    " AND typeof(key) = 'text' AND key = namespace || ':' || name"
    " AND typeof(uid) = 'text' AND length(uid) <= 128"
    " AND typeof(in_scope) = 'integer' AND in_scope IN (0, 1)"
    ")), 0) FROM accounts"
)
"""One scan, in SQLite, for what a hand edit of `accounts` leaves: how many rows, and how many
have a wrong type, an absurd number or length, or a key that is not their namespace and name
(44 ms at 50,000 rows, where matching each name's characters too would cost 200 ms). A row
that passes it yet is not an account (`A:b`) is dropped when `accounts` reads it, which
forgets the digest: the next pass records the set again."""

_AccountKey = Annotated[
    str, StringConstraints(pattern=ACCOUNT_KEY_PATTERN), AfterValidator(_account_name_length)
]
_HubStateValue = Annotated[str, AfterValidator(_one_of(ALL_STATES))]
_StatusName = Annotated[str, AfterValidator(_one_of(sorted(set(JUJU_STATUS.values()))))]


class _AppliedRecord(NamedTuple):
    """A row of `applied`, in `AppliedRow`'s field order."""

    key: _AccountKey
    state: Annotated[AccountState, Strict(False)]  # the enum from its stored value
    hash: _HashOrEmpty
    resource_version: _ResourceVersion
    attempts: _Count
    last_error: _Text
    updated_at: _Time


class _AccountRecord(NamedTuple):
    """A row of `accounts` (its key must also name its namespace and name: `accounts`)."""

    key: _AccountKey
    namespace: _Short
    name: _Short
    uid: Annotated[str, StringConstraints(max_length=128)]
    in_scope: Annotated[int, Field(ge=0, le=1)]


class _JournalRecord(NamedTuple):
    """A row of `journal`, after its id, in `JournalEntry`'s field order."""

    trigger: _Short
    state: _HubStateValue
    message: _Text
    accounts: _Count
    writes: _Count
    deletes: _Count
    requests: _Count
    at: _Time


class _DesiredKey(BaseModel):
    """One entry of the desired keys: a property key, its source and credential flag."""

    model_config = _STRICT

    key: _Text
    source: Annotated[Source, Strict(False)]
    sensitive: bool


_APPLIED_COLUMNS = _AppliedRecord._fields
_ACCOUNT_COLUMNS = _AccountRecord._fields
_JOURNAL_COLUMNS = _JournalRecord._fields
_APPLIED = TypeAdapter(_AppliedRecord, config=_STRICT)
_ACCOUNT = TypeAdapter(_AccountRecord, config=_STRICT)
_JOURNAL = TypeAdapter(_JournalRecord, config=_STRICT)
_JOURNAL_ID = TypeAdapter(Annotated[int, Field(ge=1, le=MAX_JOURNAL_ID)], config=_STRICT)
_TEXTS = TypeAdapter(Annotated[list[_Text], Field(max_length=MAX_LIST)], config=_STRICT)
_DESIRED_KEYS = TypeAdapter(
    Annotated[list[_DesiredKey], Field(max_length=MAX_LIST)], config=_STRICT
)

META: dict[str, tuple[TypeAdapter[Any], bool]] = {
    "machine_state": (TypeAdapter(_HubStateValue, config=_STRICT), False),
    "status_name": (TypeAdapter(_StatusName, config=_STRICT), False),
    "status_message": (TypeAdapter(_Text, config=_STRICT), False),
    "provider_problems": (_TEXTS, True),
    "refused_hash": (TypeAdapter(_HashOrEmpty, config=_STRICT), False),
    "watch_missing": (_TEXTS, True),
    "desired_keys": (_DESIRED_KEYS, True),
    "desired_hash": (TypeAdapter(_Hash, config=_STRICT), False),
    "accounts_digest": (TypeAdapter(_Hash, config=_STRICT), False),
}
"""Each value the `meta` table holds: its type, and whether it is stored as JSON."""


def _problems(error: ValidationError, fields: Sequence[str] = ()) -> set[str]:
    """What was wrong, by column and kind (`attempts: greater_than_equal`), never the value.

    Args:
        error: the validation error.
        fields: the column names of a tuple row (its errors are located by position).
    """
    kinds = set()
    for detail in error.errors(include_url=False, include_input=False, include_context=False):
        loc = detail["loc"]
        first = loc[0] if loc else None
        where = fields[first] if isinstance(first, int) and first < len(fields) else first
        where = where if isinstance(where, str) else ""
        kinds.add(f"{where}: {detail['type']}" if where else detail["type"])
    return kinds


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
            _check_schema(db)
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
        if current < 0:  # only a hand edit writes one: the file is as good as damaged
            raise sqlite3.DatabaseError("negative schema version")
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

    def _raw(self, key: str) -> object:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def _get(self, key: str) -> Any:
        """The typed value of `meta` row `key`, or None (absent, or unreadable and dropped)."""
        raw = self._raw(key)
        if raw is None:
            return None
        adapter, is_json = META[key]
        try:
            if not is_json:
                return adapter.validate_python(raw)
            if isinstance(raw, str):
                return adapter.validate_json(raw)
            problems = {"string_type"}  # JSON is stored as text
        except ValidationError as error:
            problems = _problems(error)
        with self._db.conn:
            self._drop("meta", "key", [key], problems)
        return None

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
        name = self._get("status_name")
        message = self._get("status_message")
        if name is None:  # a message without its status name means nothing
            return StatusReport("waiting", "")
        return StatusReport(name, message or "")

    @status.setter
    def status(self, status: StatusReport) -> None:
        self._set("status_name", status.name)
        self._set("status_message", status.message)

    @property
    def problems(self) -> list[str]:
        """Problems of the `spark-service-account` requests, as the last pass found them."""
        return self._get("provider_problems") or []

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
        return self._get("watch_missing") or []

    @watch_missing.setter
    def watch_missing(self, missing: list[str]) -> None:
        if missing != self.watch_missing:
            self._set("watch_missing", json.dumps(missing))

    def desired_keys(self) -> list[dict[str, object]]:
        """Key, source and credential flag of each desired property (values are not stored)."""
        keys = self._get("desired_keys") or []
        return [key.model_dump(mode="json") for key in keys]

    def set_desired(self, properties: SparkProperties) -> None:
        """Record the desired properties' keys and hash (no write when they are unchanged)."""
        described = properties.describe()
        keys = json.dumps(described)
        if properties.hash == self._get("desired_hash") and described == self.desired_keys():
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

        Skipped when the set is the one already recorded (the common, steady-state case) and
        the table still holds that many rows, every one of them readable (`ACCOUNTS_AUDIT`: a
        hand edit is then rewritten by this pass, not first seen by `list-accounts`).
        """
        rows = list(rows)
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
        if digest == self._get("accounts_digest"):
            total, unreadable = self._db.execute(ACCOUNTS_AUDIT).fetchone()
            if total == len(rows) and not unreadable:
                return
            logger.warning("store: the accounts table was edited; recording it again")
        with self._db.conn:
            self._db.execute("DELETE FROM accounts")
            self._db["accounts"].insert_all(rows, pk="key")  # type: ignore[union-attr]
            self._set("accounts_digest", digest)

    def accounts(self) -> list[dict[str, object]]:
        """The accounts seen on the last pass (unreadable rows are dropped).

        Dropping a row also forgets the set's digest, so the next pass records the set again.
        """
        columns = ", ".join(_ACCOUNT_COLUMNS)
        cursor = self._db.execute(f"SELECT rowid, {columns} FROM accounts ORDER BY key")
        accounts: list[dict[str, object]] = []
        dropped: list[int] = []
        problems: set[str] = set()
        for rowid, *values in cursor.fetchall():
            try:
                record = _ACCOUNT.validate_python(values)
            except ValidationError as error:
                dropped.append(rowid)
                problems |= _problems(error, _ACCOUNT_COLUMNS)
                continue
            if record.key != f"{record.namespace}:{record.name}":
                dropped.append(rowid)
                problems.add("key: does not name the row's namespace and name")
                continue
            accounts.append(record._asdict())
        if dropped:
            with self._db.conn:
                self._drop("accounts", "rowid", dropped, problems)
                self._db.execute("DELETE FROM meta WHERE key = 'accounts_digest'")
        return accounts

    def applied(self) -> dict[str, AppliedRow]:
        """Per-account applied state, by `namespace:name` (unreadable rows are dropped)."""
        cursor = self._db.execute(f"SELECT rowid, {', '.join(_APPLIED_COLUMNS)} FROM applied")
        rows: dict[str, AppliedRow] = {}
        dropped: list[int] = []
        problems: set[str] = set()
        for rowid, *values in cursor.fetchall():
            try:
                record = _APPLIED.validate_python(values)
            except ValidationError as error:
                dropped.append(rowid)
                problems |= _problems(error, _APPLIED_COLUMNS)
                continue
            rows[record.key] = AppliedRow(*record)
        if dropped:
            with self._db.conn:
                self._drop("applied", "rowid", dropped, problems)
        return rows

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
        """How many accounts are in each state (of the readable rows)."""
        return Counter(row.state for row in self.applied().values())

    # -- journal ------------------------------------------------------------------------------

    def journal_append(self, entry: JournalEntry) -> None:
        """Append a pass to the journal, keeping only the last `JOURNAL_LIMIT`.

        An id outside 1 .. `MAX_JOURNAL_ID` (written by hand) is dropped first: the new entry
        would otherwise follow it, and the trim keep it instead of the passes.
        """
        with self._db.conn:
            absurd = self._db.execute(
                "SELECT id FROM journal WHERE id < 1 OR id > ?", [MAX_JOURNAL_ID]
            ).fetchall()
            if absurd:
                self._drop("journal", "id", [row[0] for row in absurd], {"id: out of range"})
            self._db["journal"].insert(asdict(entry))  # type: ignore[union-attr]
            self._db.execute(
                "DELETE FROM journal WHERE id <= (SELECT MAX(id) FROM journal) - ?",
                [JOURNAL_LIMIT],
            )

    def journal(self, limit: int = 20) -> list[JournalEntry]:
        """The most recent passes, newest first (unreadable entries are dropped)."""
        rows = self._db.execute(
            f"SELECT id, {', '.join(_JOURNAL_COLUMNS)} FROM journal ORDER BY id DESC LIMIT ?",
            [limit],
        ).fetchall()
        entries: list[JournalEntry] = []
        dropped: list[object] = []
        problems: set[str] = set()
        for id_, *values in rows:
            try:
                _JOURNAL_ID.validate_python(id_)
                record = _JOURNAL.validate_python(values)
            except ValidationError as error:
                dropped.append(id_)
                problems |= _problems(error, _JOURNAL_COLUMNS)
                continue
            entries.append(JournalEntry(**record._asdict()))
        if dropped:
            with self._db.conn:
                self._drop("journal", "id", dropped, problems)
        return entries

    # -- dropping unreadable rows -----------------------------------------------------------------

    def _drop(self, table: str, column: str, keys: Sequence[object], problems: set[str]) -> None:
        """Delete rows by `column` (rowid, key or id): an unreadable row is as good as absent.

        Logged by table and kind of problem only: a hand-edited value may be anything.
        """
        self._db.conn.executemany(
            f"DELETE FROM [{table}] WHERE [{column}] IS ?", [(key,) for key in keys]
        )
        kinds = ", ".join(sorted(problems))
        if table == "meta":  # its keys are the store's own names (META), never hand-written
            logger.warning("store: dropped the unreadable %s (%s)", keys[0], kinds)
        else:
            logger.warning("store: dropped %d unreadable %s row(s) (%s)", len(keys), table, kinds)


def _check_pages(db: sqlite_utils.Database) -> None:
    """Raise `sqlite3.DatabaseError` unless every page of the file is sound."""
    problems = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError(f"quick_check found {len(problems)} problems")


TABLES: dict[str, tuple[int, frozenset[str]]] = {
    "meta": (1, frozenset({"key", "value"})),
    "applied": (1, frozenset(AppliedRow.__dataclass_fields__)),
    "journal": (1, frozenset({"id"} | set(JournalEntry.__dataclass_fields__))),
    "accounts": (2, frozenset({"key", "namespace", "name", "uid", "in_scope"})),
}
"""Each table: the schema version that creates it, and the columns the store reads."""


def _check_schema(db: sqlite_utils.Database) -> None:
    """Raise `sqlite3.DatabaseError` unless every table has every column the store reads."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for table, (since, columns) in TABLES.items():
        if version < since:
            continue
        found = {row[1] for row in db.execute(f"PRAGMA table_info([{table}])").fetchall()}
        if not columns <= found:
            raise sqlite3.DatabaseError(f"table {table} lacks columns the store reads")


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
