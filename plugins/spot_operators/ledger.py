"""Durable file ledger: every collector file version is processed exactly once.

Why: Spot lost files that arrived while its daemon was down, processed some twice, and deleted
originals whose upload had failed (spot-reference.md, "What Spot got wrong" 1, 3, 5). Airflow
reruns, retries and overlapping DAG runs make "did somebody already handle this file?" a shared,
durable question, answered here in one SQLite file that all worker processes of one machine
(LocalExecutor) open concurrently.

Model:

* A **file version** is ``(pipeline, path, size, mtime_ns, sha256)``. A file rewritten under the same
  name is a new version (it must be ingested again); the same bytes re-created with the same mtime
  (e.g. restored from a backup with ``cp -p``) is the same version and is not ingested twice.
* States walk forward one step at a time: ``claimed -> stored -> published -> done``; any active
  state may go to ``failed``. Each step records a verified fact the next one relies on (the original
  is in HDFS, Kafka acknowledged every segment), so skipping one is refused.
* A claim is a **lease** held by an ``owner`` string. Use one that names the task instance without
  its try number (e.g. ``"<dag_id>/<run_id>/<task_id>/<map_index>"``): an Airflow retry then
  reclaims at once, while another DAG run waits until the lease expires (crashed worker) and then
  takes over. Once taken over, the old owner is fenced off: its ``advance``/``fail`` raise.
* A new claim always restarts at ``claimed``; the furthest verified state of earlier attempts is
  kept in ``reached`` and their ``details`` are kept too, so a resumed attempt can skip work
  (e.g. the HDFS upload when ``reached`` is ``stored``) and then re-advance cheaply.
* ``done`` is terminal: never reclaimed, never failed. Re-ingesting history goes through the
  backfill DAG, not through the ledger.

Concurrency and durability: every write runs in ``BEGIN IMMEDIATE`` (one writer at a time, readers
not blocked), WAL journal, ``synchronous=FULL`` (a committed ``done`` survives power loss), a busy
timeout instead of instant "database is locked" errors, and one short-lived connection per call, so
a ledger object is safe to use across ``fork`` and threads.

Limit: SQLite's WAL needs every process on **one host** (a shared-memory index next to the file)
and POSIX locks that network file systems (NFS, SMB) do not reliably provide. A Celery deployment
must not point this ledger at a shared directory; it needs a server database (the same API maps to
``INSERT ... ON CONFLICT`` / ``SELECT ... FOR UPDATE`` in PostgreSQL). The ledger refuses a missing
directory rather than creating one, so a missing mount fails loudly instead of silently giving a
host its own private ledger.

Change feed: every write gives the row the next value of a ledger-wide sequence (``seq``), assigned
under the write lock, so sequence order is commit order. :meth:`FileLedger.changes` returns the
records changed after a :class:`LedgerCursor`; a reader that polls forever (the folder watcher) reads
only what changed instead of the whole history, and sees a record leave a state too (a file given
up and then claimed again). :class:`SettledKeys` keeps :func:`settled_keys` up to date that way.
Wall-clock ``updated_at`` cannot serve: clocks step back, and a writer that took its timestamp
before another may commit after it.

Timestamps are UTC epoch seconds (``time.time()``). Pure standard library: no Airflow imports.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import sqlite3
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "SCHEMA_VERSION",
    "Claim",
    "FileChangedError",
    "FileLedger",
    "FileRecord",
    "FileVersion",
    "LedgerChanges",
    "LedgerCursor",
    "LedgerError",
    "LedgerStorageError",
    "SettledKeys",
    "State",
    "TransitionError",
    "file_digest",
    "is_settled",
    "settled_keys",
]

SCHEMA_VERSION = 2
"""2 added the change sequence (``files.seq``) and the ledger's id (``ledger_info``); a version-1
ledger is upgraded in place when opened. Code that knows only version 1 then refuses the file
instead of writing rows without a ``seq`` that readers of :meth:`FileLedger.changes` would miss."""
DEFAULT_BUSY_TIMEOUT = 30.0
_HEX = frozenset("0123456789abcdef")


class LedgerError(Exception):
    """Base of every ledger error."""


class LedgerStorageError(LedgerError):
    """The ledger database cannot be opened, created or written (message names its path)."""


class TransitionError(LedgerError):
    """A forbidden state change: wrong owner, backwards, skipped step, or terminal state."""


class FileChangedError(LedgerError):
    """The file changed while it was being hashed: still being written, not yet a stable version."""


class State(enum.StrEnum):
    """Ledger states of one file version."""

    CLAIMED = "claimed"
    STORED = "stored"
    PUBLISHED = "published"
    DONE = "done"
    FAILED = "failed"


# One forward step at a time: each state is a verified fact the next one depends on.
_NEXT: dict[State, State] = {
    State.CLAIMED: State.STORED,
    State.STORED: State.PUBLISHED,
    State.PUBLISHED: State.DONE,
}
_STATE_VALUES = tuple(s.value for s in State)
_ACTIVE = frozenset({State.CLAIMED, State.STORED, State.PUBLISHED})
_ORDER = {State.CLAIMED: 0, State.STORED: 1, State.PUBLISHED: 2, State.DONE: 3}


def file_digest(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in ``chunk``-byte pieces (bounded memory for big pcaps)."""
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, got {chunk}")
    sha = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            sha.update(view[:n])
    return sha.hexdigest()


@dataclass(frozen=True, slots=True)
class FileVersion:
    """Identity of one version of a collector file.

    ``path`` must be absolute so the identity does not depend on a worker's working directory.
    """

    pipeline: str
    path: str
    size: int
    mtime_ns: int
    digest: str

    def __post_init__(self) -> None:
        if isinstance(self.path, os.PathLike):
            object.__setattr__(self, "path", os.fspath(self.path))
        if not self.pipeline:
            raise ValueError("pipeline must be a non-empty string")
        if not os.path.isabs(self.path):
            raise ValueError(f"path must be absolute, got {self.path!r}")
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {self.size} for {self.path}")
        if len(self.digest) != 64 or not set(self.digest) <= _HEX:
            raise ValueError(
                f"digest must be a lowercase sha256 hex string, got {self.digest!r} for {self.path}"
            )

    @classmethod
    def from_path(cls, pipeline: str, path: str | os.PathLike[str], chunk: int = 1 << 20) -> FileVersion:
        """Stat and hash ``path``; raise :class:`FileChangedError` if it changes meanwhile.

        Why the second stat: a file still being written (``nfcapd.current.*``) must not be recorded
        under a digest that does not match its final size and mtime.
        """
        abspath = os.path.abspath(os.fspath(path))
        before = os.stat(abspath)
        if not stat.S_ISREG(before.st_mode):
            raise ValueError(f"{abspath} is not a regular file")
        digest = file_digest(abspath, chunk)
        after = os.stat(abspath)
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            raise FileChangedError(
                f"{abspath} changed while hashing (size {before.st_size} -> {after.st_size}, "
                f"mtime_ns {before.st_mtime_ns} -> {after.st_mtime_ns}): still being written?"
            )
        return cls(pipeline, abspath, after.st_size, after.st_mtime_ns, digest)

    def describe(self) -> str:
        """Human-readable identity used in error messages."""
        return (
            f"{self.path} (pipeline {self.pipeline!r}, size {self.size}, mtime_ns {self.mtime_ns}, "
            f"sha256 {self.digest[:12]}...)"
        )


@dataclass(frozen=True)
class FileRecord:
    """One ledger row. Times are UTC epoch seconds; ``details`` is the merged JSON of all steps."""

    version: FileVersion
    state: State
    reached: State
    attempts: int
    last_error: str | None
    claimed_by: str | None
    claimed_at: float | None
    lease_until: float | None
    updated_at: float
    details: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    """Position of the row's last change in the ledger's change sequence (see :meth:`FileLedger.changes`)."""


@dataclass(frozen=True, slots=True)
class LedgerCursor:
    """Where a reader of :meth:`FileLedger.changes` stands: a ledger (its id) and the last change seen."""

    ledger_id: str
    seq: int


@dataclass(frozen=True)
class LedgerChanges:
    """What :meth:`FileLedger.changes` returns.

    ``records``: the current record of every row changed after the cursor, each once, in change
    order. ``complete``: True when they are *all* records (no cursor given, or the cursor is not of
    this ledger's history: another or a restored file); the reader must then replace what it built,
    not merge. ``cursor``: pass it to the next call.
    """

    records: list[FileRecord]
    cursor: LedgerCursor
    complete: bool


@dataclass(frozen=True)
class Claim:
    """A granted claim: what the caller needs to process or resume a file version.

    ``previous_state`` is the state before this claim (``None`` for a first claim); ``reached`` is
    the furthest verified state of all attempts (``claimed`` if nothing was verified yet) and
    ``details`` what those attempts recorded, so e.g. an upload already ``stored`` can be skipped.
    """

    version: FileVersion
    owner: str
    attempt: int
    previous_state: State | None
    reached: State
    details: dict[str, Any]
    lease_until: float

    def has_reached(self, state: State | str) -> bool:
        """True if an earlier attempt already verified ``state`` (``stored``/``published``)."""
        return _ORDER[self.reached] >= _ORDER[State(state)]


# Version 1; a new file is created at version 1 and upgraded like an old one, so both end the same.
_SCHEMA = (
    """
    CREATE TABLE files (
        pipeline      TEXT    NOT NULL,
        path          TEXT    NOT NULL,
        size          INTEGER NOT NULL CHECK (size >= 0),
        mtime_ns      INTEGER NOT NULL,
        digest        TEXT    NOT NULL,
        state         TEXT    NOT NULL CHECK (state IN ('claimed', 'stored', 'published', 'done', 'failed')),
        reached       TEXT    NOT NULL CHECK (reached IN ('claimed', 'stored', 'published', 'done')),
        attempts      INTEGER NOT NULL CHECK (attempts >= 1),
        last_error    TEXT,
        claimed_by    TEXT,
        claimed_at    REAL,
        lease_seconds REAL,
        lease_until   REAL,
        updated_at    REAL    NOT NULL,
        details       TEXT    NOT NULL DEFAULT '{}',
        PRIMARY KEY (pipeline, path, size, mtime_ns, digest)
    )
    """,
    "CREATE INDEX files_by_path ON files (path, updated_at)",
    "CREATE INDEX files_by_state ON files (state)",
)
# Version 1 -> 2, also run after _SCHEMA on a new file: the change sequence and the ledger's id.
# Existing rows get distinct seqs (their rowid); a reader's first call reads everything anyway.
_UPGRADE_TO_2 = (
    "ALTER TABLE files ADD COLUMN seq INTEGER NOT NULL DEFAULT 0",
    "UPDATE files SET seq = rowid",
    "CREATE INDEX files_by_seq ON files (seq)",
    "CREATE TABLE ledger_info (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_KEY = "pipeline = ? AND path = ? AND size = ? AND mtime_ns = ? AND digest = ?"


def _db_path(path: str) -> str:
    """A path as SQLite can store it: non-UTF-8 name bytes (surrogate escapes) become ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _key(v: FileVersion) -> tuple[str, str, int, int, str]:
    return (v.pipeline, _db_path(v.path), v.size, v.mtime_ns, v.digest)


def _dumps(details: Mapping[str, Any], version: FileVersion) -> str:
    try:
        return json.dumps(dict(details), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise LedgerError(f"details for {version.describe()} are not JSON-serializable: {exc}") from exc


def _record(row: sqlite3.Row) -> FileRecord:
    version = FileVersion(row["pipeline"], row["path"], row["size"], row["mtime_ns"], row["digest"])
    return FileRecord(
        version=version,
        state=State(row["state"]),
        reached=State(row["reached"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        claimed_by=row["claimed_by"],
        claimed_at=row["claimed_at"],
        lease_until=row["lease_until"],
        updated_at=row["updated_at"],
        details=json.loads(row["details"]),
        seq=row["seq"],
    )


def _next_seq(con: sqlite3.Connection) -> int:
    """The next change number; only inside a write transaction, so numbers follow commit order."""
    return int(con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM files").fetchone()[0])


class FileLedger:
    """SQLite-backed ledger of collector file versions (see the module docstring for the rules).

    ``clock`` returns UTC epoch seconds; tests inject a fake one to expire leases without sleeping.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(db_path)
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._init_schema()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def __repr__(self) -> str:
        return f"FileLedger({str(self._path)!r})"

    # ----------------------------------------------------------------------------------- plumbing

    def _storage_error(self, exc: BaseException, doing: str) -> LedgerStorageError:
        text = str(exc)
        hint = ""
        if "not a database" in text or "malformed" in text:
            hint = " (corrupt, or not a SQLite file ledger)"
        elif "unable to open" in text or "readonly" in text:
            hint = " (the file and its directory must be writable: WAL adds -wal and -shm files)"
        elif "locked" in text or "busy" in text:
            hint = f" (still locked after {self._busy_timeout:g} s)"
        return LedgerStorageError(f"file ledger {self._path}: {doing} failed: {text}{hint}")

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode (isolation_level=None): transactions are the explicit BEGIN IMMEDIATE below.
        con = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            con.execute("PRAGMA synchronous = FULL")
        except BaseException:
            con.close()
            raise
        return con

    def _init_schema(self) -> None:
        """Create or check the schema; fail now, naming the path, if the database is unusable."""
        parent = self._path.parent
        if not parent.is_dir():
            raise LedgerStorageError(
                f"file ledger {self._path}: directory {parent} does not exist (not created on purpose: "
                "a missing mount must not silently give this host a private ledger)"
            )
        if self._path.exists() and not self._path.is_file():
            raise LedgerStorageError(f"file ledger {self._path}: exists but is not a regular file")
        try:
            con = self._connect()
            try:
                con.execute("BEGIN IMMEDIATE")
                found = con.execute("PRAGMA user_version").fetchone()[0]
                if found == 0:
                    tables = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
                    if tables:
                        names = ", ".join(sorted(r[0] for r in tables))
                        raise LedgerStorageError(
                            f"file ledger {self._path}: is a SQLite database of something else "
                            f"(tables: {names}), not a file ledger"
                        )
                    for statement in _SCHEMA:
                        con.execute(statement)
                    found = 1
                if found == 1:
                    for statement in _UPGRADE_TO_2:
                        con.execute(statement)
                    con.execute("INSERT INTO ledger_info (key, value) VALUES ('id', ?)", (uuid.uuid4().hex,))
                    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                elif found != SCHEMA_VERSION:
                    raise LedgerStorageError(
                        f"file ledger {self._path}: schema version {found}, this code knows {SCHEMA_VERSION}"
                    )
                con.execute("COMMIT")
                mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise LedgerStorageError(
                        f"file ledger {self._path}: cannot use WAL journal mode (got {mode!r}); "
                        "is it on a network file system?"
                    )
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise self._storage_error(exc, "opening") from exc

    @contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: read-check-write without another writer in between."""
        try:
            con = self._connect()
            try:
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise self._storage_error(exc, doing) from exc

    @contextmanager
    def _read(self, doing: str) -> Iterator[sqlite3.Connection]:
        try:
            con = self._connect()
            try:
                yield con
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise self._storage_error(exc, doing) from exc

    @staticmethod
    def _row(con: sqlite3.Connection, version: FileVersion) -> sqlite3.Row | None:
        row: sqlite3.Row | None = con.execute(f"SELECT * FROM files WHERE {_KEY}", _key(version)).fetchone()
        return row

    @classmethod
    def _reload(cls, con: sqlite3.Connection, version: FileVersion) -> FileRecord:
        row = cls._row(con, version)
        if row is None:  # cannot happen inside the transaction that just wrote it
            raise LedgerError(f"record of {version.describe()} vanished inside its own transaction")
        return _record(row)

    # ------------------------------------------------------------------------------------- writes

    def claim(self, version: FileVersion, owner: str, lease_seconds: float) -> Claim | None:
        """Claim ``version`` for ``owner`` for ``lease_seconds``, or return ``None`` if it is not free.

        Not free: ``done`` (exactly once), or active (claimed/stored/published) under another owner
        whose lease has not expired (an overlapping run is working on it). The same owner reclaims
        at once (an Airflow retry of the same task instance); an expired lease is taken over (its
        worker crashed); ``failed`` is claimable by anyone. Every granted claim is a new attempt.
        """
        if not owner:
            raise ValueError("owner must be a non-empty string")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        with self._write("claim") as con:
            now = self._clock()
            until = now + lease_seconds
            row = self._row(con, version)
            if row is None:
                con.execute(
                    "INSERT INTO files (pipeline, path, size, mtime_ns, digest, state, reached, attempts, "
                    "claimed_by, claimed_at, lease_seconds, lease_until, updated_at, details, seq) "
                    "VALUES (?, ?, ?, ?, ?, 'claimed', 'claimed', 1, ?, ?, ?, ?, ?, '{}', ?)",
                    (*_key(version), owner, now, lease_seconds, until, now, _next_seq(con)),
                )
                return Claim(version, owner, 1, None, State.CLAIMED, {}, until)
            state = State(row["state"])
            if state is State.DONE:
                return None
            live = row["lease_until"] is not None and row["lease_until"] > now
            if state in _ACTIVE and row["claimed_by"] != owner and live:
                return None
            attempt = row["attempts"] + 1
            con.execute(
                "UPDATE files SET state = 'claimed', attempts = ?, claimed_by = ?, claimed_at = ?, "
                f"lease_seconds = ?, lease_until = ?, updated_at = ?, seq = ? WHERE {_KEY}",
                (attempt, owner, now, lease_seconds, until, now, _next_seq(con), *_key(version)),
            )
            return Claim(
                version, owner, attempt, state, State(row["reached"]), json.loads(row["details"]), until
            )

    def _owned_row(
        self, con: sqlite3.Connection, version: FileVersion, owner: str, action: str, target: str
    ) -> sqlite3.Row:
        """The row if ``owner`` holds it; the error names the file, both states and both owners."""
        row = self._row(con, version)
        if row is None:
            raise TransitionError(f"cannot {action} {version.describe()} to {target!r}: it was never claimed")
        if row["claimed_by"] != owner:
            raise TransitionError(
                f"cannot {action} {version.describe()} from {row['state']!r} to {target!r}: "
                f"owned by {row['claimed_by']!r}, not {owner!r} (lease expired and taken over?)"
            )
        return row

    def advance(
        self, version: FileVersion, owner: str, state: State | str, details: Mapping[str, Any] | None = None
    ) -> FileRecord:
        """Move ``version`` one step forward and merge ``details`` into its recorded details.

        Only the current owner may advance (a fenced-off old owner must not overwrite a newer
        attempt), and only to the next state (each state certifies what the next relies on, so
        ``done`` cannot be reached without ``stored`` and ``published``). Renews the lease.
        """
        if state not in _STATE_VALUES:
            raise TransitionError(
                f"cannot advance {version.describe()} to {state!r}: not a state ({', '.join(_STATE_VALUES)})"
            )
        target = State(state)
        payload = _dumps(details or {}, version)
        with self._write("advance") as con:
            row = self._owned_row(con, version, owner, "advance", target.value)
            current = State(row["state"])
            allowed = _NEXT.get(current)
            if target is not allowed:
                if allowed is not None:
                    why = f"only {allowed.value!r} may follow it"
                elif current is State.FAILED:
                    why = "a failed file must be claimed again first"
                else:
                    why = "'done' is final"
                if target is State.FAILED:
                    why += "; use fail()"
                raise TransitionError(
                    f"cannot advance {version.describe()} from {current.value!r} to {target.value!r}: {why}"
                )
            now = self._clock()
            merged = {**json.loads(row["details"]), **json.loads(payload)}
            done = target is State.DONE
            con.execute(
                "UPDATE files SET state = ?, reached = ?, details = ?, updated_at = ?, lease_until = ?, "
                f"seq = ? WHERE {_KEY}",
                (
                    target.value,
                    target.value,
                    json.dumps(merged, sort_keys=True),
                    now,
                    None if done else now + row["lease_seconds"],
                    _next_seq(con),
                    *_key(version),
                ),
            )
            return self._reload(con, version)

    def fail(self, version: FileVersion, owner: str, error: str) -> FileRecord:
        """Mark ``version`` failed with ``error``; it becomes claimable by anyone at once.

        Only the owner may fail it (a fenced-off worker must not fail a newer attempt), and never
        once ``done`` (that would let it be ingested twice). ``reached`` and details are kept.
        """
        with self._write("fail") as con:
            row = self._owned_row(con, version, owner, "fail", State.FAILED.value)
            if row["state"] == State.DONE:
                raise TransitionError(
                    f"cannot fail {version.describe()} from 'done' to 'failed': it is final"
                )
            con.execute(
                "UPDATE files SET state = 'failed', last_error = ?, lease_until = NULL, updated_at = ?, "
                f"seq = ? WHERE {_KEY}",
                (error, self._clock(), _next_seq(con), *_key(version)),
            )
            return self._reload(con, version)

    def release(self, version: FileVersion, owner: str) -> bool:
        """Give up ``owner``'s lease now so another run can take over without waiting.

        For a task that stops without a verdict (cancelled, ``on_kill``): unlike :meth:`fail` it
        records no error. State, ``reached`` and details are kept. Returns ``False`` if there was
        nothing to release (``done``/``failed``/already released); raises if another owner holds it.
        """
        with self._write("release") as con:
            row = self._owned_row(con, version, owner, "release", "released")
            now = self._clock()
            if State(row["state"]) not in _ACTIVE or row["lease_until"] is None or row["lease_until"] <= now:
                return False
            con.execute(
                f"UPDATE files SET lease_until = ?, updated_at = ?, seq = ? WHERE {_KEY}",
                (now, now, _next_seq(con), *_key(version)),
            )
            return True

    def renew(self, version: FileVersion, owner: str, lease_seconds: float | None = None) -> float:
        """Extend ``owner``'s lease (e.g. during a long upload); returns the new expiry.

        Raises if the lease was taken over or the version is no longer active.
        """
        with self._write("renew") as con:
            row = self._owned_row(con, version, owner, "renew", "renewed")
            if State(row["state"]) not in _ACTIVE:
                raise TransitionError(
                    f"cannot renew {version.describe()} in state {row['state']!r}: not an active claim"
                )
            seconds = row["lease_seconds"] if lease_seconds is None else lease_seconds
            if seconds <= 0:
                raise ValueError(f"lease_seconds must be positive, got {seconds}")
            now = self._clock()
            until: float = now + seconds
            con.execute(
                f"UPDATE files SET lease_seconds = ?, lease_until = ?, updated_at = ?, seq = ? WHERE {_KEY}",
                (seconds, until, now, _next_seq(con), *_key(version)),
            )
            return until

    # -------------------------------------------------------------------------------------- reads

    def get(self, version: FileVersion) -> FileRecord | None:
        """The record of ``version``, or ``None`` if it was never claimed."""
        with self._read("get") as con:
            row = self._row(con, version)
        return None if row is None else _record(row)

    def state_of_path(self, path: str | os.PathLike[str], pipeline: str | None = None) -> FileRecord | None:
        """The most recently updated record of any version of ``path`` (optionally of one pipeline)."""
        query = "SELECT * FROM files WHERE path = ?"
        args: list[Any] = [_db_path(os.fspath(path))]
        if pipeline is not None:
            query += " AND pipeline = ?"
            args.append(pipeline)
        with self._read("state_of_path") as con:
            row = con.execute(query + " ORDER BY updated_at DESC, rowid DESC LIMIT 1", args).fetchone()
        return None if row is None else _record(row)

    def with_digest(
        self, pipeline: str, digest: str, other_than: FileVersion | None = None
    ) -> list[FileRecord]:
        """Every record of ``pipeline`` whose content has ``digest`` (but ``other_than``), oldest first.

        Why: a file copied or touched again has a new version (path, size, mtime) but the same rows;
        collect settles it as a duplicate instead of publishing the rows twice. Versions are compared
        in their stored form (a non-UTF-8 name is stored as ``\\xNN``).
        """
        query = "SELECT * FROM files WHERE pipeline = ? AND digest = ? ORDER BY updated_at, rowid"
        with self._read("with_digest") as con:
            rows = con.execute(query, (pipeline, digest)).fetchall()
        records = [_record(r) for r in rows]
        if other_than is not None:
            records = [r for r in records if _key(r.version) != _key(other_than)]
        return records

    def done_with_digest(self, pipeline: str, digest: str) -> FileRecord | None:
        """The first ``done`` record of ``pipeline`` whose content has ``digest``, or ``None``."""
        return next((r for r in self.with_digest(pipeline, digest) if r.state is State.DONE), None)

    def records(self, state: State | str | None = None, pipeline: str | None = None) -> list[FileRecord]:
        """All records, optionally of one state and/or pipeline, oldest update first."""
        clauses, args = [], []
        if state is not None:
            clauses.append("state = ?")
            args.append(State(state).value)
        if pipeline is not None:
            clauses.append("pipeline = ?")
            args.append(pipeline)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read("records") as con:
            rows = con.execute(f"SELECT * FROM files{where} ORDER BY updated_at, rowid", args).fetchall()
        return [_record(r) for r in rows]

    def summary(self, pipeline: str | None = None) -> dict[str, int]:
        """Count of records per state, every state present (zeros included): the ingest summary."""
        counts = {s.value: 0 for s in State}
        query = "SELECT state, COUNT(*) FROM files"
        args: tuple[str, ...] = ()
        if pipeline is not None:
            query += " WHERE pipeline = ?"
            args = (pipeline,)
        with self._read("summary") as con:
            for state, count in con.execute(query + " GROUP BY state", args):
                counts[state] = count
        return counts

    def changes(self, since: LedgerCursor | None = None, pipeline: str | None = None) -> LedgerChanges:
        """Records (optionally of one pipeline) changed after ``since``: an incremental read.

        Costs what changed, not the ledger's size: one indexed range read of ``seq``. Each write
        moves its row to the end of the sequence, so a record that leaves a state shows up too.
        Without ``since``, or when ``since`` is not of this ledger's history (another file at the
        path, or an older copy restored: its id differs or its sequence ends before ``since``), it
        returns every record with ``complete=True``. Read in one snapshot.
        """
        query = "SELECT * FROM files INDEXED BY files_by_seq WHERE seq > ?"
        if pipeline is not None:
            query += " AND pipeline = ?"
        with self._read("changes") as con:
            con.execute("BEGIN")  # the id, the last seq and the rows from one snapshot
            try:
                ledger_id = str(con.execute("SELECT value FROM ledger_info WHERE key = 'id'").fetchone()[0])
                last = int(con.execute("SELECT COALESCE(MAX(seq), 0) FROM files").fetchone()[0])
                complete = since is None or since.ledger_id != ledger_id or since.seq > last
                after = 0 if complete or since is None else since.seq
                args: list[Any] = [after] if pipeline is None else [after, pipeline]
                rows = con.execute(query + " ORDER BY seq", args).fetchall()
            finally:
                con.execute("COMMIT")
        return LedgerChanges([_record(r) for r in rows], LedgerCursor(ledger_id, last), complete)

    def is_done(self, version: FileVersion) -> bool:
        """True if ``version`` was fully processed."""
        record = self.get(version)
        return record is not None and record.state is State.DONE

    def pending(self, versions: Iterable[FileVersion]) -> list[FileVersion]:
        """``versions`` that are not ``done``, in input order: what the detection trigger calls new.

        In-flight versions are kept: :meth:`claim` is what arbitrates between runs.
        """
        wanted = list(versions)
        with self._read("pending") as con:
            con.execute("BEGIN")  # one snapshot for the whole batch
            try:
                done = {
                    v for v in wanted if (row := self._row(con, v)) is not None and row["state"] == "done"
                }
            finally:
                con.execute("COMMIT")
        return [v for v in wanted if v not in done]


LEDGER_FILE_NAME = "ledger.sqlite3"


def ledger_path(local_staging: Path) -> Path:
    """A pipeline's collect ledger lives next to its staging data (same machine as the collector)."""
    return Path(local_staging) / LEDGER_FILE_NAME


def is_settled(record: FileRecord, max_attempts: int) -> bool:
    """Whether a watcher must leave the file of ``record`` alone.

    Done (so ``post_ingest: keep`` originals are not collected twice) or failed ``max_attempts``
    times (left alone until an operator resets it, i.e. claims it again).
    """
    exhausted = record.state == State.FAILED and record.attempts >= max_attempts
    return record.state == State.DONE or exhausted


def _snapshot_key(version: FileVersion) -> str:
    """The version's :attr:`~spot_operators.detection.FileSnapshot.key` (``path|size|mtime_ns``)."""
    from spot_operators.detection import FileSnapshot

    return FileSnapshot(version.path, version.size, version.mtime_ns).key


def settled_keys(ledger: FileLedger, pipeline: str, max_attempts: int) -> list[str]:
    """``path|size|mtime_ns`` keys of the files of ``pipeline`` that are :func:`is_settled`.

    Reads the whole ledger: for a one-off look (a sensor). A reader that polls uses :class:`SettledKeys`.
    """
    return [
        _snapshot_key(r.version) for r in ledger.records(pipeline=pipeline) if is_settled(r, max_attempts)
    ]


class SettledKeys:
    """:func:`settled_keys` of one pipeline, kept up to date from :meth:`FileLedger.changes`.

    Each :meth:`refresh` reads only the records changed since the previous one, so a watcher that
    polls forever pays for what changed, not for every file ever collected. A record that stops
    being settled (a given-up file claimed again) is dropped. Membership (``key in keys``) is what
    a folder scan needs. Two versions may share a key (same path, size and mtime, other content):
    the key stays while one of them is settled.

    Not thread-safe: one reader at a time (the watcher polls sequentially).
    """

    def __init__(self, pipeline: str, max_attempts: int) -> None:
        self.pipeline = pipeline
        self.max_attempts = int(max_attempts)
        self._cursor: LedgerCursor | None = None
        self._by_version: dict[tuple[str, str, int, int, str], str] = {}  # settled row -> its key
        self._count: dict[str, int] = {}  # key -> settled rows with that key

    @property
    def cursor(self) -> LedgerCursor | None:
        """The position reached, None before the first refresh or after :meth:`clear`."""
        return self._cursor

    def refresh(self, ledger: FileLedger) -> SettledKeys:
        """Read what changed in ``ledger`` since the last refresh and apply it; returns self."""
        self.apply(ledger.changes(self._cursor, pipeline=self.pipeline))
        return self

    def apply(self, changes: LedgerChanges) -> None:
        """Apply one :meth:`FileLedger.changes` result (pure: no I/O)."""
        if changes.complete:
            self._by_version.clear()
            self._count.clear()
        for record in changes.records:
            if record.version.pipeline != self.pipeline:
                continue
            identity = _key(record.version)
            old = self._by_version.pop(identity, None)
            if old is not None:
                self._discard(old)
            if is_settled(record, self.max_attempts):
                key = _snapshot_key(record.version)
                self._by_version[identity] = key
                self._count[key] = self._count.get(key, 0) + 1
        self._cursor = changes.cursor

    def clear(self) -> None:
        """Forget everything (the ledger file went away); the next refresh reads it in full."""
        self._cursor = None
        self._by_version.clear()
        self._count.clear()

    def _discard(self, key: str) -> None:
        left = self._count[key] - 1
        if left:
            self._count[key] = left
        else:
            del self._count[key]

    def __contains__(self, key: object) -> bool:
        return key in self._count

    def __len__(self) -> int:
        return len(self._count)

    def __iter__(self) -> Iterator[str]:
        return iter(self._count)
