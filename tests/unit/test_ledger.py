"""Unit tests of ``spot_operators.ledger``: each file version is processed exactly once.

They try to break the guarantee the way Airflow would: retries of the same task instance, a crashed
worker whose lease expires, overlapping DAG runs in separate processes racing on one SQLite file,
files rewritten or re-created under the same name, and unusable database paths.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from spot_operators import ledger as ledger_module
from spot_operators.ledger import (
    Claim,
    FileChangedError,
    FileLedger,
    FileVersion,
    LedgerError,
    LedgerStorageError,
    State,
    TransitionError,
    file_digest,
)

LEASE = 60.0
FORWARD = [State.CLAIMED, State.STORED, State.PUBLISHED, State.DONE]
ALL_STATES = [*FORWARD, State.FAILED]


class FakeClock:
    """Settable UTC epoch clock: expires leases without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def version(name: str = "nfcapd.202401010000", pipeline: str = "flow", content: bytes = b"x") -> FileVersion:
    """A synthetic version (no file on disk) for state-machine tests."""
    return FileVersion(
        pipeline, f"/collector/{pipeline}/{name}", len(content), 1_000, hashlib.sha256(content).hexdigest()
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> FileLedger:
    return FileLedger(tmp_path / "ledger.db", clock=clock)


def bring_to(ledger: FileLedger, v: FileVersion, state: State, owner: str = "run-a") -> None:
    """Walk ``v`` through the machine up to ``state`` (``failed`` = failed after ``stored``)."""
    assert ledger.claim(v, owner, LEASE) is not None
    target = State.STORED if state is State.FAILED else state
    for step in FORWARD[1 : FORWARD.index(target) + 1]:
        ledger.advance(v, owner, step)
    if state is State.FAILED:
        ledger.fail(v, owner, "boom")


# ------------------------------------------------------------------------------------ file identity


def test_file_digest_streams_in_chunks_and_matches_sha256(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert file_digest(path, chunk=7) == hashlib.sha256(data).hexdigest()
    assert file_digest(str(path)) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_digest(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
    with pytest.raises(ValueError, match="chunk"):
        file_digest(path, chunk=0)
    with pytest.raises(FileNotFoundError):
        file_digest(tmp_path / "missing")


def test_version_from_path_records_absolute_path_size_mtime_and_digest(tmp_path: Path) -> None:
    path = tmp_path / "nfcapd.1"
    path.write_bytes(b"abc")
    st = path.stat()
    v = FileVersion.from_path("flow", path)
    assert v == FileVersion("flow", str(path), 3, st.st_mtime_ns, hashlib.sha256(b"abc").hexdigest())
    with pytest.raises(ValueError, match="regular file"):
        FileVersion.from_path("flow", tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"path": "relative/nfcapd.1"}, "absolute"),
        ({"digest": "ABC"}, "sha256"),
        ({"digest": "G" * 64}, "sha256"),
        ({"size": -1}, "size"),
        ({"pipeline": ""}, "pipeline"),
    ],
)
def test_version_rejects_malformed_identity(kwargs: dict[str, Any], match: str) -> None:
    fields = {"pipeline": "flow", "path": "/c/nfcapd.1", "size": 1, "mtime_ns": 1, "digest": "a" * 64}
    with pytest.raises(ValueError, match=match):
        FileVersion(**{**fields, **kwargs})


def test_version_from_path_refuses_a_file_that_changes_while_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "nfcapd.current.1"
    path.write_bytes(b"first part")
    real = ledger_module.file_digest

    def growing(p: str, chunk: int = 1 << 20) -> str:
        digest = real(p, chunk)
        with open(p, "ab") as fh:  # the collector is still writing
            fh.write(b" and more")
        return digest

    monkeypatch.setattr(ledger_module, "file_digest", growing)
    with pytest.raises(FileChangedError, match="still being written") as err:
        FileVersion.from_path("flow", path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, LedgerError)


def test_changed_file_with_same_name_is_a_new_version(tmp_path: Path, ledger: FileLedger) -> None:
    path = tmp_path / "nfcapd.202401010000"
    path.write_bytes(b"version one")
    v1 = FileVersion.from_path("flow", path)
    bring_to(ledger, v1, State.DONE)

    # Same size and same mtime but other bytes: only the digest tells them apart.
    path.write_bytes(b"version two")
    os.utime(path, ns=(v1.mtime_ns, v1.mtime_ns))
    v2 = FileVersion.from_path("flow", path)
    assert (v2.size, v2.mtime_ns) == (v1.size, v1.mtime_ns)
    assert v2 != v1
    # Appended to: size and mtime change.
    path.write_bytes(b"version two, longer")
    v3 = FileVersion.from_path("flow", path)
    assert v3 not in (v1, v2)

    assert ledger.pending([v1, v2, v3]) == [v2, v3]
    claim = ledger.claim(v3, "run-b", LEASE)
    assert claim is not None and claim.attempt == 1 and claim.previous_state is None
    latest = ledger.state_of_path(path)
    assert latest is not None and latest.version == v3 and latest.state is State.CLAIMED
    assert ledger.is_done(v1) and not ledger.is_done(v3)


def test_done_with_digest_finds_identical_content_of_the_same_pipeline_only(
    tmp_path: Path, ledger: FileLedger
) -> None:
    first, copy = tmp_path / "nfcapd.202401010000", tmp_path / "nfcapd.20240101000000"
    first.write_bytes(b"same rows")
    copy.write_bytes(b"same rows")
    v_first, v_copy = FileVersion.from_path("flow", first), FileVersion.from_path("flow", copy)
    assert v_first.digest == v_copy.digest and v_first != v_copy
    assert ledger.done_with_digest("flow", v_first.digest) is None
    bring_to(ledger, v_first, State.PUBLISHED)
    assert ledger.done_with_digest("flow", v_first.digest) is None, "only done content counts"
    ledger.advance(v_first, "run-a", State.DONE)
    found = ledger.done_with_digest("flow", v_copy.digest)
    assert found is not None and found.version == v_first
    assert ledger.done_with_digest("flow_other", v_first.digest) is None


def test_same_content_recreated_with_same_mtime_is_the_same_version(
    tmp_path: Path, ledger: FileLedger
) -> None:
    path = tmp_path / "proxy.log"
    path.write_bytes(b"GET http://example.test/ 200\n")
    v1 = FileVersion.from_path("proxy", path)
    bring_to(ledger, v1, State.DONE)

    path.unlink()  # e.g. restored from a backup with cp -p
    path.write_bytes(b"GET http://example.test/ 200\n")
    os.utime(path, ns=(v1.mtime_ns, v1.mtime_ns))
    again = FileVersion.from_path("proxy", path)

    assert again == v1
    assert ledger.is_done(again)
    assert ledger.pending([again]) == []
    assert ledger.claim(again, "run-b", LEASE) is None


# ------------------------------------------------------------------------------------ state machine


def test_full_state_machine_merges_details_and_ends_done(ledger: FileLedger, clock: FakeClock) -> None:
    v = version()
    claim = ledger.claim(v, "run-a", LEASE)
    assert claim == Claim(v, "run-a", 1, None, State.CLAIMED, {}, clock.now + LEASE)
    record = ledger.get(v)
    assert record is not None
    assert (record.state, record.attempts, record.claimed_by, record.claimed_at) == (
        State.CLAIMED,
        1,
        "run-a",
        clock.now,
    )

    clock.now += 1
    stored = ledger.advance(v, "run-a", State.STORED, {"hdfs_path": "/spot/flow/binary/20240101/00/f"})
    assert (stored.state, stored.reached, stored.updated_at) == (State.STORED, State.STORED, clock.now)
    published = ledger.advance(v, "run-a", "published", {"topic": "spot-flow", "segments": 3, "rows": 10})
    assert published.details == {
        "hdfs_path": "/spot/flow/binary/20240101/00/f",
        "topic": "spot-flow",
        "segments": 3,
        "rows": 10,
    }
    done = ledger.advance(v, "run-a", State.DONE, {"rows": 11})
    assert done.state is State.DONE and done.details["rows"] == 11 and done.details["segments"] == 3
    assert done.lease_until is None and done.claimed_by == "run-a"
    assert ledger.is_done(v)
    assert ledger.summary() == {"claimed": 0, "stored": 0, "published": 0, "done": 1, "failed": 0}


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (a, b)
        for a in ALL_STATES
        for b in ALL_STATES
        if not (a in FORWARD[:-1] and b is FORWARD[FORWARD.index(a) + 1])
    ],
    ids=lambda s: s.value,
)
def test_forbidden_advances_raise_naming_file_and_both_states(
    ledger: FileLedger, current: State, target: State
) -> None:
    v = version()
    bring_to(ledger, v, current)
    before = ledger.get(v)
    with pytest.raises(TransitionError) as err:
        ledger.advance(v, "run-a", target, {"junk": True})
    message = str(err.value)
    assert v.path in message and repr(current.value) in message and repr(target.value) in message
    assert ledger.get(v) == before  # nothing written


@pytest.mark.parametrize("current", [State.CLAIMED, State.STORED, State.PUBLISHED])
def test_any_active_state_can_fail_and_failed_is_reclaimed_with_more_attempts(
    ledger: FileLedger, current: State
) -> None:
    v = version()
    bring_to(ledger, v, current)
    failed = ledger.fail(v, "run-a", "HDFS checksum mismatch")
    assert (failed.state, failed.last_error, failed.lease_until) == (
        State.FAILED,
        "HDFS checksum mismatch",
        None,
    )
    assert failed.reached is current
    # Failed is free at once, for anybody; the attempt counter goes on.
    claim = ledger.claim(v, "run-b", LEASE)
    assert claim is not None
    assert (claim.attempt, claim.previous_state, claim.reached) == (2, State.FAILED, current)
    assert ledger.get(v).attempts == 2  # type: ignore[union-attr]
    ledger.fail(v, "run-b", "again")
    third = ledger.claim(v, "run-c", LEASE)
    assert third is not None and third.attempt == 3


def test_failed_attempt_keeps_what_it_verified_so_the_next_one_resumes(ledger: FileLedger) -> None:
    v = version()
    ledger.claim(v, "run-a", LEASE)
    ledger.advance(v, "run-a", State.STORED, {"hdfs_path": "/spot/flow/binary/x"})
    ledger.fail(v, "run-a", "kafka: timed out")
    claim = ledger.claim(v, "run-b", LEASE)
    assert claim is not None
    assert claim.has_reached(State.STORED) and not claim.has_reached("published")
    assert claim.details == {"hdfs_path": "/spot/flow/binary/x"}
    # The new attempt restarts at 'claimed' and re-asserts each step, skipping the upload itself.
    assert ledger.get(v).state is State.CLAIMED  # type: ignore[union-attr]
    with pytest.raises(TransitionError, match="only 'stored' may follow"):
        ledger.advance(v, "run-b", State.PUBLISHED)
    ledger.advance(v, "run-b", State.STORED)
    ledger.advance(v, "run-b", State.PUBLISHED, {"segments": 1})
    done = ledger.advance(v, "run-b", State.DONE)
    assert done.details == {"hdfs_path": "/spot/flow/binary/x", "segments": 1}
    assert done.attempts == 2 and done.last_error == "kafka: timed out"


def test_done_is_never_reclaimed_nor_failed(ledger: FileLedger, clock: FakeClock) -> None:
    v = version()
    bring_to(ledger, v, State.DONE)
    clock.now += 10 * 365 * 86400
    assert ledger.claim(v, "run-a", LEASE) is None
    assert ledger.claim(v, "run-b", LEASE) is None
    with pytest.raises(TransitionError, match="'done' to 'failed'"):
        ledger.fail(v, "run-a", "late error")
    assert ledger.release(v, "run-a") is False
    record = ledger.get(v)
    assert record is not None and record.state is State.DONE and record.attempts == 1


def test_unknown_state_and_unclaimed_version_are_refused(ledger: FileLedger) -> None:
    v = version()
    with pytest.raises(TransitionError, match="never claimed") as err:
        ledger.advance(v, "run-a", State.STORED)
    assert v.path in str(err.value)
    with pytest.raises(TransitionError, match="never claimed"):
        ledger.fail(v, "run-a", "x")
    ledger.claim(v, "run-a", LEASE)
    with pytest.raises(TransitionError, match="not a state"):
        ledger.advance(v, "run-a", "uploaded")
    with pytest.raises(ValueError, match="owner"):
        ledger.claim(version("other"), "", LEASE)
    with pytest.raises(ValueError, match="lease_seconds"):
        ledger.claim(version("other"), "run-a", 0)


def test_details_must_be_json_and_a_bad_payload_writes_nothing(ledger: FileLedger) -> None:
    v = version()
    ledger.claim(v, "run-a", LEASE)
    with pytest.raises(LedgerError, match="JSON") as err:
        ledger.advance(v, "run-a", State.STORED, {"when": object()})
    assert v.path in str(err.value)
    assert ledger.get(v).state is State.CLAIMED  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- owners, leases, retries


def test_retry_by_same_owner_reclaims_a_live_claim(ledger: FileLedger, clock: FakeClock) -> None:
    v = version()
    ledger.claim(v, "flow/run-1/store/0", LEASE)
    ledger.advance(v, "flow/run-1/store/0", State.STORED, {"hdfs_path": "/p"})
    clock.now += 5  # the try crashed; Airflow retries well within the lease
    assert ledger.claim(v, "flow/run-2/store/0", LEASE) is None  # an overlapping run must wait
    retry = ledger.claim(v, "flow/run-1/store/0", LEASE)
    assert retry is not None
    assert (retry.attempt, retry.previous_state, retry.reached, retry.details) == (
        2,
        State.STORED,
        State.STORED,
        {"hdfs_path": "/p"},
    )


def test_expired_lease_is_taken_over_and_the_old_owner_is_fenced_off(
    ledger: FileLedger, clock: FakeClock
) -> None:
    v = version()
    ledger.claim(v, "run-a", 30)
    clock.now += 29.9
    assert ledger.claim(v, "run-b", 30) is None
    clock.now += 0.1  # lease_until == now: expired
    takeover = ledger.claim(v, "run-b", 30)
    assert takeover is not None and takeover.attempt == 2 and takeover.previous_state is State.CLAIMED
    # run-a was only slow, not dead: it must not touch run-b's attempt.
    for action in (
        lambda: ledger.advance(v, "run-a", State.STORED),
        lambda: ledger.fail(v, "run-a", "x"),
        lambda: ledger.release(v, "run-a"),
        lambda: ledger.renew(v, "run-a"),
    ):
        with pytest.raises(TransitionError, match="owned by 'run-b', not 'run-a'") as err:
            action()
        assert v.path in str(err.value)
    assert ledger.get(v).claimed_by == "run-b"  # type: ignore[union-attr]


@pytest.mark.parametrize("current", [State.STORED, State.PUBLISHED])
def test_stored_or_published_by_a_live_owner_is_not_claimable(
    ledger: FileLedger, clock: FakeClock, current: State
) -> None:
    v = version()
    bring_to(ledger, v, current)
    assert ledger.claim(v, "run-b", LEASE) is None
    clock.now += LEASE
    claim = ledger.claim(v, "run-b", LEASE)
    assert claim is not None and claim.reached is current


def test_advancing_renews_the_lease(ledger: FileLedger, clock: FakeClock) -> None:
    v = version()
    ledger.claim(v, "run-a", 10)
    clock.now += 8
    ledger.advance(v, "run-a", State.STORED)
    clock.now += 7  # 15 s after the claim, 7 s after the advance
    assert ledger.claim(v, "run-b", 10) is None
    clock.now += 3
    assert ledger.claim(v, "run-b", 10) is not None


def test_renew_and_release(ledger: FileLedger, clock: FakeClock) -> None:
    v = version()
    ledger.claim(v, "run-a", 10)
    clock.now += 9
    assert ledger.renew(v, "run-a") == clock.now + 10
    assert ledger.renew(v, "run-a", 100) == clock.now + 100
    clock.now += 50
    assert ledger.claim(v, "run-b", 10) is None
    assert ledger.release(v, "run-a") is True
    assert ledger.release(v, "run-a") is False  # idempotent
    record = ledger.get(v)
    assert record is not None and record.state is State.CLAIMED and record.last_error is None
    claim = ledger.claim(v, "run-b", 10)
    assert claim is not None and claim.attempt == 2
    bring_to(ledger, version("done"), State.DONE)
    with pytest.raises(TransitionError, match="not an active claim"):
        ledger.renew(version("done"), "run-a")


# ---------------------------------------------------------------------------------------- queries


def test_records_summary_pending_and_state_of_path(ledger: FileLedger, clock: FakeClock) -> None:
    states = {"a": State.CLAIMED, "b": State.STORED, "c": State.PUBLISHED, "d": State.DONE, "e": State.FAILED}
    versions = {}
    for name, state in states.items():
        clock.now += 1
        versions[name] = version(name)
        bring_to(ledger, versions[name], state)
    dns = version("dns.pcap", pipeline="dns")
    bring_to(ledger, dns, State.DONE)

    assert ledger.summary() == {"claimed": 1, "stored": 1, "published": 1, "done": 2, "failed": 1}
    assert ledger.summary("dns") == {"claimed": 0, "stored": 0, "published": 0, "done": 1, "failed": 0}
    assert [r.version for r in ledger.records(State.DONE)] == [versions["d"], dns]
    assert [r.version for r in ledger.records("done", pipeline="flow")] == [versions["d"]]
    assert len(ledger.records()) == 6
    failed = ledger.records(State.FAILED)
    assert len(failed) == 1 and failed[0].last_error == "boom"
    # In-flight versions stay pending: claim() arbitrates, not the trigger.
    fresh = version("new")
    wanted = [fresh, versions["e"], versions["d"], versions["a"], dns]
    assert ledger.pending(wanted) == [fresh, versions["e"], versions["a"]]
    assert ledger.pending([]) == []
    assert ledger.state_of_path(versions["b"].path).state is State.STORED  # type: ignore[union-attr]
    assert ledger.state_of_path("/nowhere") is None
    assert ledger.state_of_path(dns.path, pipeline="flow") is None
    assert ledger.get(fresh) is None and not ledger.is_done(fresh)


def test_state_of_path_returns_the_latest_version(ledger: FileLedger, clock: FakeClock) -> None:
    old, new = version(content=b"old"), version(content=b"new")
    bring_to(ledger, old, State.DONE)
    clock.now += 1
    bring_to(ledger, new, State.STORED)
    assert ledger.state_of_path(old.path).version == new  # type: ignore[union-attr]
    clock.now += 1
    ledger.fail(new, "run-a", "x")
    latest = ledger.state_of_path(Path(old.path))
    assert latest is not None and latest.version == new and latest.state is State.FAILED


def test_ledger_survives_reopen(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "ledger.db"
    first = FileLedger(db, clock=clock)
    done, busy = version("done"), version("busy")
    bring_to(first, done, State.DONE)
    first.claim(busy, "run-a", LEASE)
    first.advance(busy, "run-a", State.STORED, {"hdfs_path": "/p"})
    del first

    second = FileLedger(db, clock=clock)
    assert second.is_done(done)
    assert second.claim(done, "run-b", LEASE) is None
    assert second.claim(busy, "run-b", LEASE) is None  # the lease is durable too
    assert second.get(busy).details == {"hdfs_path": "/p"}  # type: ignore[union-attr]
    assert second.summary()["stored"] == 1
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert repr(second) == f"FileLedger({str(db)!r})" and second.path == db


# -------------------------------------------------------------------------------- unusable database


def test_missing_directory_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "not-mounted" / "ledger.db"
    with pytest.raises(LedgerStorageError, match="does not exist") as err:
        FileLedger(db)
    assert str(db) in str(err.value)
    assert not db.parent.exists()


def test_corrupt_database_names_the_path(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    db.write_bytes(b"this is not sqlite, just junk " * 200)
    with pytest.raises(LedgerStorageError, match="not a database") as err:
        FileLedger(db)
    assert str(db) in str(err.value)


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "airflow.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE dag_run (id INTEGER)")
    with pytest.raises(LedgerStorageError, match="not a file ledger") as err:
        FileLedger(db)
    assert str(db) in str(err.value) and "dag_run" in str(err.value)


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    FileLedger(db)
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA user_version = 99")
    with pytest.raises(LedgerStorageError, match="schema version 99") as err:
        FileLedger(db)
    assert str(db) in str(err.value)


def test_directory_as_database_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LedgerStorageError, match="not a regular file") as err:
        FileLedger(tmp_path)
    assert str(tmp_path) in str(err.value)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_unwritable_directory_names_the_path() -> None:
    db = Path("/proc/spot-ledger.db")  # no file can be created here, not even by root
    with pytest.raises(LedgerStorageError, match="unable to open") as err:
        FileLedger(db)
    assert str(db) in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_database_names_the_path(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    FileLedger(db)
    tmp_path.chmod(0o500)
    db.chmod(0o400)
    try:
        with pytest.raises(LedgerStorageError) as err:
            FileLedger(db).claim(version(), "run-a", LEASE)
        assert str(db) in str(err.value)
    finally:
        tmp_path.chmod(0o700)
        db.chmod(0o600)


def test_claim_decides_under_the_write_lock_and_readers_are_not_blocked(tmp_path: Path) -> None:
    """Deterministic check of BEGIN IMMEDIATE: a second writer cannot slip in between check and write."""
    db, v = tmp_path / "ledger.db", version()
    other = FileLedger(db, busy_timeout=0.2)  # another worker, its own connections
    seen: dict[str, Any] = {}

    def clock() -> float:  # called by claim() inside its transaction, after BEGIN IMMEDIATE
        if not seen:
            seen["read"] = other.get(v)
            try:
                seen["claim"] = other.claim(v, "run-b", LEASE)
            except LedgerStorageError as exc:
                seen["claim"] = exc
        return 1_700_000_000.0

    claim = FileLedger(db, clock=clock).claim(v, "run-a", LEASE)
    assert claim is not None and claim.owner == "run-a"
    assert seen["read"] is None  # WAL: readers see the last commit and do not wait
    assert isinstance(seen["claim"], LedgerStorageError), seen["claim"]
    assert "locked" in str(seen["claim"]) and str(db) in str(seen["claim"])
    assert other.get(v).claimed_by == "run-a"  # type: ignore[union-attr]


# ------------------------------------------------------------------- several processes, one ledger

PROCESSES = 8
ROUNDS = 60  # versions raced per test: many near-simultaneous claims, not one lucky interleaving
# Separate processes, each with its own SQLite connections, as LocalExecutor forks its workers.
_MP: Any = multiprocessing.get_context(
    "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
)


def _race_claim(db: str, versions: list[FileVersion], owner: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(60)
        ledger = FileLedger(Path(db))  # racing schema creation too when the file is new
        barrier.wait(60)
        won = {}
        for v in versions:
            claim = ledger.claim(v, owner, LEASE)
            if claim is not None:
                won[v.path] = claim.attempt
        results.put((owner, won))
    except BaseException as exc:
        results.put((owner, f"error: {exc!r}"))


def _run_race(db: Path, versions: list[FileVersion]) -> dict[str, dict[str, int]]:
    """Every process claims every version in the same order; returns {path: {winner: attempt}}."""
    barrier, results = _MP.Barrier(PROCESSES), _MP.Queue()
    procs = [
        _MP.Process(target=_race_claim, args=(str(db), versions, f"run-{i}", barrier, results))
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    outcome = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [o for o in outcome.values() if isinstance(o, str)] == []
    winners: dict[str, dict[str, int]] = {v.path: {} for v in versions}
    for owner, won in outcome.items():
        for path, attempt in won.items():
            winners[path][owner] = attempt
    return winners


def _raced_versions() -> list[FileVersion]:
    return [version(f"nfcapd.{i:04d}", content=str(i).encode()) for i in range(ROUNDS)]


def test_processes_racing_for_new_files_exactly_one_wins_each(tmp_path: Path) -> None:
    db, versions = tmp_path / "fresh.db", _raced_versions()
    winners = _run_race(db, versions)
    assert all(len(w) == 1 and list(w.values()) == [1] for w in winners.values()), winners
    ledger = FileLedger(db)
    for v in versions:
        record = ledger.get(v)
        assert record is not None and record.attempts == 1
        assert [record.claimed_by] == list(winners[v.path])


def test_processes_racing_for_failed_files_exactly_one_wins_each(tmp_path: Path) -> None:
    db, versions = tmp_path / "ledger.db", _raced_versions()
    ledger = FileLedger(db)
    for v in versions:
        ledger.claim(v, "crashed-run", LEASE)
        ledger.fail(v, "crashed-run", "boom")
    winners = _run_race(db, versions)
    assert all(len(w) == 1 and list(w.values()) == [2] for w in winners.values()), winners
    assert {r.attempts for r in ledger.records()} == {2}


def test_processes_racing_for_expired_leases_exactly_one_wins_each(tmp_path: Path) -> None:
    db, versions = tmp_path / "ledger.db", _raced_versions()
    ledger = FileLedger(db)
    for v in versions:
        ledger.claim(v, "crashed-run", 0.001)  # expired long before the racers start
    winners = _run_race(db, versions)
    assert all(len(w) == 1 and list(w.values()) == [2] for w in winners.values()), winners
    assert all(r.claimed_by != "crashed-run" for r in ledger.records())


def _overlapping_run(db: str, versions: list[FileVersion], owner: str, seed: int, results: Any) -> None:
    try:
        ledger = FileLedger(Path(db))
        processed = []
        for v in random.Random(seed).sample(versions, len(versions)):
            if ledger.claim(v, owner, LEASE) is None:
                continue
            ledger.advance(v, owner, State.STORED, {"hdfs_path": f"/spot/{v.path}"})
            ledger.advance(v, owner, State.PUBLISHED, {"by": owner})
            ledger.advance(v, owner, State.DONE)
            processed.append(v.path)
        results.put(processed)
    except BaseException as exc:
        results.put(f"error in {owner}: {exc!r}")


def test_overlapping_runs_process_every_file_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    FileLedger(db)
    versions = [version(f"nfcapd.{i:04d}", content=str(i).encode()) for i in range(40)]
    results = _MP.Queue()
    procs = [
        _MP.Process(target=_overlapping_run, args=(str(db), versions, f"run-{i}", i, results))
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [o for o in outcomes if isinstance(o, str)] == []
    processed = [path for run in outcomes for path in run]
    assert sorted(processed) == sorted(v.path for v in versions)  # each once, none lost
    ledger = FileLedger(db)
    assert ledger.summary() == {"claimed": 0, "stored": 0, "published": 0, "done": 40, "failed": 0}
    assert ledger.pending(versions) == []
    assert all(r.attempts == 1 for r in ledger.records())
