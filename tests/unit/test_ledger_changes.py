"""The ledger's change feed (``FileLedger.changes``) and the incremental ``SettledKeys`` built on it.

Why: the folder watcher polls forever; reading every record ever settled at each poll made a poll's
cost grow with the ledger's history. These tests pin that a reader gets exactly what changed (also a
record leaving a state, also from other processes writing meanwhile), that the read is an indexed
range read, and that a replaced or upgraded ledger file is read again in full.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from spot_operators import ledger as ledger_module
from spot_operators.ledger import (
    SCHEMA_VERSION,
    FileLedger,
    FileVersion,
    LedgerChanges,
    LedgerCursor,
    SettledKeys,
    State,
    is_settled,
    settled_keys,
)
from tests.unit.test_ledger import _MP, LEASE, PROCESSES, FakeClock, bring_to, version

MAX_ATTEMPTS = 2


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> FileLedger:
    return FileLedger(tmp_path / "ledger.db", clock=clock)


def paths(changes: LedgerChanges) -> list[str]:
    return [r.version.path for r in changes.records]


def key(v: FileVersion) -> str:
    return f"{v.path}|{v.size}|{v.mtime_ns}"


# ------------------------------------------------------------------------------------ changes()


def test_first_read_is_complete_then_only_what_changed(ledger: FileLedger) -> None:
    a, b, c = version("a"), version("b"), version("c")
    bring_to(ledger, a, State.DONE)
    bring_to(ledger, b, State.STORED)
    first = ledger.changes()
    assert first.complete and sorted(paths(first)) == [a.path, b.path]

    quiet = ledger.changes(first.cursor)
    assert not quiet.complete and quiet.records == [] and quiet.cursor == first.cursor

    ledger.claim(c, "run-a", LEASE)
    ledger.advance(b, "run-a", State.PUBLISHED)
    delta = ledger.changes(first.cursor)
    assert not delta.complete and paths(delta) == [c.path, b.path]  # change order, each once
    assert [r.state for r in delta.records] == [State.CLAIMED, State.PUBLISHED]
    assert delta.cursor.seq > first.cursor.seq and delta.cursor.ledger_id == first.cursor.ledger_id
    assert ledger.changes(delta.cursor).records == []


@pytest.mark.parametrize("write", ["claim", "advance", "fail", "release", "renew", "reclaim"])
def test_every_write_moves_the_row_to_the_end_of_the_feed(
    ledger: FileLedger, clock: FakeClock, write: str
) -> None:
    v, other = version("v"), version("other")
    bring_to(ledger, v, State.FAILED if write == "reclaim" else State.STORED)
    if write == "claim":
        v = version("new")
    ledger.claim(other, "run-a", LEASE)
    cursor = ledger.changes().cursor
    before = {r.version.path: r.seq for r in ledger.records()}
    clock.now += 1
    if write == "claim":
        ledger.claim(v, "run-a", LEASE)
    elif write == "advance":
        ledger.advance(v, "run-a", State.PUBLISHED)
    elif write == "fail":
        ledger.fail(v, "run-a", "boom")
    elif write == "release":
        assert ledger.release(v, "run-a")
    elif write == "renew":
        ledger.renew(v, "run-a")
    else:
        ledger.claim(v, "run-b", LEASE)
    delta = ledger.changes(cursor)
    assert paths(delta) == [v.path]
    assert delta.records[0].seq == delta.cursor.seq > max(before.values())
    assert ledger.get(v).seq == delta.cursor.seq  # type: ignore[union-attr]


def test_a_refused_write_changes_nothing(ledger: FileLedger) -> None:
    v = version()
    bring_to(ledger, v, State.DONE)
    cursor = ledger.changes().cursor
    assert ledger.claim(v, "run-b", LEASE) is None
    assert ledger.changes(cursor).records == []


def test_changes_of_one_pipeline(ledger: FileLedger) -> None:
    flow, dns = version("f", pipeline="flow"), version("d", pipeline="dns")
    bring_to(ledger, flow, State.DONE)
    cursor = ledger.changes(pipeline="flow").cursor
    bring_to(ledger, dns, State.DONE)
    assert ledger.changes(cursor, pipeline="flow").records == []
    assert paths(ledger.changes(cursor, pipeline="dns")) == [dns.path]
    assert paths(ledger.changes(pipeline="dns")) == [dns.path]


def test_another_file_at_the_path_or_an_older_copy_is_read_in_full(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    first = FileLedger(db)
    bring_to(first, version("a"), State.DONE)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(db) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    bring_to(first, version("b"), State.DONE)
    cursor = first.changes().cursor

    # An older copy restored in place: same id, its sequence ends before the cursor.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    backup.rename(db)
    restored = FileLedger(db).changes(cursor)
    assert restored.complete and paths(restored) == [version("a").path]

    # A new ledger at the same path: another id, even if its sequence reaches as far.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    fresh = FileLedger(db)
    for name in ("x", "y", "z", "w"):
        bring_to(fresh, version(name), State.STORED)
    replaced = fresh.changes(cursor)
    assert replaced.cursor.ledger_id != cursor.ledger_id and replaced.cursor.seq >= cursor.seq
    assert replaced.complete and len(replaced.records) == 4


def test_the_read_is_an_indexed_range_of_the_sequence(
    ledger: FileLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cost follows what changed: every query of a poll searches the seq index, none scans rows.

    Without ``INDEXED BY`` SQLite picks the primary key (``pipeline = ?``): every row of the pipeline.
    """
    for i in range(50):
        bring_to(ledger, version(f"f{i}", content=str(i).encode()), State.DONE)
    cursor = ledger.changes(pipeline="flow").cursor
    statements: list[str] = []
    connect = FileLedger._connect

    def tracing(self: FileLedger) -> sqlite3.Connection:
        con = connect(self)
        con.set_trace_callback(statements.append)  # SQL with the bound values
        return con

    monkeypatch.setattr(FileLedger, "_connect", tracing)
    assert ledger.changes(cursor, pipeline="flow").records == []
    queries = [s for s in statements if s.startswith("SELECT")]
    assert len(queries) == 3, statements
    with sqlite3.connect(ledger.path) as con:
        for query in queries:
            plan = [str(row[-1]) for row in con.execute(f"EXPLAIN QUERY PLAN {query}")]
            assert all(step.startswith("SEARCH") for step in plan), (query, plan)
            if "FROM files" in query:
                assert all("files_by_seq" in step for step in plan), (query, plan)


# ---------------------------------------------------------------------------------------- upgrade


def _v1_ledger(db: Path, rows: int) -> None:
    """A ledger as version-1 code left it (no seq column, no ledger_info)."""
    with sqlite3.connect(db) as con:
        for statement in ledger_module._SCHEMA:
            con.execute(statement)
        con.execute("PRAGMA user_version = 1")
        for i in range(rows):
            v = version(f"old{i}", content=str(i).encode())
            con.execute(
                "INSERT INTO files (pipeline, path, size, mtime_ns, digest, state, reached, attempts, "
                "updated_at) VALUES (?, ?, ?, ?, ?, 'done', 'done', 1, ?)",
                (v.pipeline, v.path, v.size, v.mtime_ns, v.digest, 1.0 + i),
            )


def test_a_version_1_ledger_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _v1_ledger(db, 3)
    ledger = FileLedger(db)
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    everything = ledger.changes()
    assert everything.complete and len(everything.records) == 3
    assert len({r.seq for r in everything.records}) == 3 and all(r.seq > 0 for r in everything.records)
    assert ledger.summary()["done"] == 3
    bring_to(ledger, version("new"), State.DONE)
    assert paths(ledger.changes(everything.cursor)) == [version("new").path]
    assert FileLedger(db).changes().cursor.ledger_id == everything.cursor.ledger_id  # upgraded once


def test_a_new_ledger_has_the_same_schema_as_an_upgraded_one(tmp_path: Path) -> None:
    def schema(db: Path) -> list[Any]:
        with sqlite3.connect(db) as con:
            return sorted(con.execute("SELECT type, name, sql FROM sqlite_master").fetchall())

    _v1_ledger(tmp_path / "old.db", 0)
    FileLedger(tmp_path / "old.db")
    FileLedger(tmp_path / "new.db")
    assert schema(tmp_path / "old.db") == schema(tmp_path / "new.db")


# ------------------------------------------------------------------------------------ SettledKeys


def test_settled_means_done_or_failed_max_attempts_times(ledger: FileLedger) -> None:
    done, once, busy = version("done"), version("once"), version("busy")
    bring_to(ledger, done, State.DONE)
    bring_to(ledger, once, State.FAILED)
    bring_to(ledger, busy, State.PUBLISHED)
    settled = {r.version.path for r in ledger.records() if is_settled(r, MAX_ATTEMPTS)}
    assert settled == {done.path}
    ledger.claim(once, "run-b", LEASE)
    ledger.fail(once, "run-b", "again")  # second failure: given up
    assert {r.version.path for r in ledger.records() if is_settled(r, MAX_ATTEMPTS)} == {done.path, once.path}


def test_settled_keys_follow_the_ledger_reading_only_changes(ledger: FileLedger) -> None:
    done, given_up, fresh = version("done"), version("given_up"), version("fresh")
    bring_to(ledger, done, State.DONE)
    bring_to(ledger, given_up, State.FAILED)
    ledger.claim(given_up, "run-b", LEASE)
    ledger.fail(given_up, "run-b", "again")
    keys = SettledKeys("flow", MAX_ATTEMPTS).refresh(ledger)
    assert set(keys) == {key(done), key(given_up)} and key(done) in keys and len(keys) == 2

    read: list[int] = []
    real = ledger.changes

    def counting(*args: Any, **kwargs: Any) -> LedgerChanges:
        changes = real(*args, **kwargs)
        read.append(len(changes.records))
        return changes

    ledger.changes = counting  # type: ignore[method-assign]
    keys.refresh(ledger)
    assert read == [0]  # nothing changed: nothing read

    ledger.claim(given_up, "operator-reset", LEASE)  # an operator retries a given-up file
    bring_to(ledger, fresh, State.DONE)
    keys.refresh(ledger)
    assert read[-1] == 2
    assert set(keys) == {key(done), key(fresh)} and key(given_up) not in keys
    assert sorted(keys) == sorted(settled_keys(ledger, "flow", MAX_ATTEMPTS))


def test_a_key_shared_by_two_versions_stays_while_one_is_settled(ledger: FileLedger) -> None:
    a = version("same", content=b"a")
    b = version("same", content=b"b")  # same path, size and mtime; other content
    assert key(a) == key(b) and a != b
    bring_to(ledger, a, State.DONE)
    bring_to(ledger, b, State.FAILED)
    ledger.claim(b, "run-b", LEASE)
    ledger.fail(b, "run-b", "again")
    keys = SettledKeys("flow", MAX_ATTEMPTS).refresh(ledger)
    assert list(keys) == [key(a)]
    ledger.claim(b, "run-c", LEASE)  # b leaves the settled state, a is still done
    assert key(a) in keys.refresh(ledger)


def test_apply_is_pure_and_a_complete_listing_replaces_everything(ledger: FileLedger) -> None:
    keys = SettledKeys("flow", MAX_ATTEMPTS)
    bring_to(ledger, version("a"), State.DONE)
    keys.apply(ledger.changes())
    assert set(keys) == {key(version("a"))}
    keys.apply(LedgerChanges([], LedgerCursor("other-ledger", 0), complete=True))
    assert len(keys) == 0 and keys.cursor == LedgerCursor("other-ledger", 0)
    keys.apply(ledger.changes(pipeline="flow"))
    keys.clear()
    assert keys.cursor is None and list(keys) == []


def test_random_histories_match_a_full_read(tmp_path: Path, clock: FakeClock) -> None:
    rng = random.Random(7)
    ledger = FileLedger(tmp_path / "ledger.db", clock=clock)
    versions = [version(f"f{i % 12}", content=str(i % 15).encode()) for i in range(15)]
    owners = ["run-a", "run-b"]
    keys = SettledKeys("flow", MAX_ATTEMPTS)
    for _ in range(400):
        v, owner = rng.choice(versions), rng.choice(owners)
        step = rng.random()
        clock.now += rng.choice([0, 1, 100])
        try:
            if step < 0.35:
                ledger.claim(v, owner, LEASE)
            elif step < 0.7:
                record = ledger.get(v)
                if record is not None and record.state in ledger_module._NEXT:
                    ledger.advance(v, record.claimed_by or owner, ledger_module._NEXT[record.state])
            else:
                record = ledger.get(v)
                if record is not None and record.claimed_by:
                    ledger.fail(v, record.claimed_by, "boom")
        except ledger_module.TransitionError:
            pass
        if rng.random() < 0.3:
            keys.refresh(ledger)
            assert sorted(keys) == sorted(set(settled_keys(ledger, "flow", MAX_ATTEMPTS)))
    keys.refresh(ledger)
    assert sorted(keys) == sorted(set(settled_keys(ledger, "flow", MAX_ATTEMPTS)))


def _writer(db: str, versions: list[FileVersion], owner: str, seed: int, results: Any) -> None:
    try:
        ledger = FileLedger(Path(db))
        rng = random.Random(seed)
        for v in rng.sample(versions, len(versions)):
            if ledger.claim(v, owner, LEASE) is None:
                continue
            if rng.random() < 0.3:
                ledger.fail(v, owner, "boom")
                continue
            for state in (State.STORED, State.PUBLISHED, State.DONE):
                ledger.advance(v, owner, state)
        results.put("ok")
    except BaseException as exc:
        results.put(f"error in {owner}: {exc!r}")


def test_a_reader_polling_while_processes_write_misses_nothing(tmp_path: Path) -> None:
    """Sequence numbers follow commit order, so a cursor never skips a row committed later."""
    db = tmp_path / "ledger.db"
    FileLedger(db)
    versions = [version(f"nfcapd.{i:04d}", content=str(i).encode()) for i in range(40)]
    results = _MP.Queue()
    procs = [
        _MP.Process(target=_writer, args=(str(db), versions, f"run-{i}", i, results))
        for i in range(PROCESSES)
    ]
    reader, keys = FileLedger(db), SettledKeys("flow", 1)
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):
        keys.refresh(reader)
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert outcomes == ["ok"] * PROCESSES
    keys.refresh(reader)
    expected = settled_keys(reader, "flow", 1)
    assert len(expected) == len(versions)  # every file ended done or failed once (max_attempts 1)
    assert sorted(keys) == sorted(expected)
