"""identical_done: copies of the same bytes are published once, even when collected at the same time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from spot_operators.collect import identical_done
from spot_operators.ledger import FileLedger, FileVersion, State
from tests.unit.test_ledger import LEASE, bring_to


def _copies(tmp_path: Path, n: int) -> list[FileVersion]:
    versions = []
    for i in range(n):
        path = tmp_path / f"copy-{i}.log"
        path.write_bytes(b"the same rows\n")
        versions.append(FileVersion.from_path("proxy", path))
    return versions


def test_no_other_copy_means_collect_it(tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / "ledger.db")
    (only,) = _copies(tmp_path, 1)
    assert ledger.claim(only, "run-a", LEASE) is not None
    assert identical_done(ledger, "proxy", only, wait=1) is None


def test_a_done_copy_makes_it_a_duplicate(tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / "ledger.db")
    first, second = _copies(tmp_path, 2)
    bring_to(ledger, first, State.DONE)
    assert ledger.claim(second, "run-b", LEASE) is not None
    found = identical_done(ledger, "proxy", second, wait=1)
    assert found is not None and found.version == first


def test_a_copy_in_flight_is_waited_for(tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / "ledger.db")
    first, second = _copies(tmp_path, 2)
    bring_to(ledger, first, State.PUBLISHED)
    assert ledger.claim(second, "run-b", LEASE) is not None
    finisher = threading.Timer(0.3, lambda: ledger.advance(first, "run-a", State.DONE))
    finisher.start()
    try:
        found = identical_done(ledger, "proxy", second, wait=10, poll=0.05)
    finally:
        finisher.join()
    assert found is not None and found.version == first


def test_a_failed_or_stuck_copy_does_not_block_forever(tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / "ledger.db")
    failed, stuck, mine = _copies(tmp_path, 3)
    bring_to(ledger, failed, State.FAILED)
    assert ledger.claim(mine, "run-c", LEASE) is not None
    assert identical_done(ledger, "proxy", mine, wait=5, poll=0.05) is None  # failed: collect it
    assert ledger.claim(stuck, "run-b", LEASE) is not None
    assert identical_done(ledger, "proxy", mine, wait=0.2, poll=0.05) is None  # stuck: give up waiting


def test_a_non_utf8_name_does_not_wait_for_its_own_record(tmp_path: Path) -> None:
    """The ledger stores such a name as ``\\xNN``: its own record must still be recognised as its own."""
    import os

    ledger = FileLedger(tmp_path / "ledger.db")
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9-latin1.log"
    with open(raw, "wb") as handle:
        handle.write(b"rows\n")
    version = FileVersion.from_path("proxy", os.fsdecode(raw))
    assert ledger.claim(version, "run-a", LEASE) is not None
    started = time.monotonic()
    assert identical_done(ledger, "proxy", version, wait=5, poll=0.05) is None
    assert time.monotonic() - started < 1, "it waited for its own record"
    assert ledger.with_digest("proxy", version.digest, other_than=version) == []
