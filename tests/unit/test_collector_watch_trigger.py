"""CollectorFolderWatchTrigger (event-driven scheduling of collect DAGs) driven in-process by asyncio."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from airflow.triggers.base import BaseEventTrigger

from spot_operators.ledger import FileLedger, FileVersion, LedgerChanges, State, ledger_path, settled_keys
from spot_operators.sensors.collector import watcher_run_wait
from spot_operators.triggers.collector import CollectorFolderWatchTrigger
from tests.unit.test_collector_trigger import import_string, write

CLASSPATH = "spot_operators.triggers.collector.CollectorFolderWatchTrigger"


def make(folder: Path, staging: Path, **overrides: Any) -> CollectorFolderWatchTrigger:
    kwargs: dict[str, Any] = {
        "pipeline": "flow_test",
        "collector_path": str(folder),
        "patterns": [r"nfcapd\.[0-9]{12}([0-9]{2})?"],
        "ledger_path": str(ledger_path(staging)),
        "poll_interval": 0.05,
        "stable_seconds": 0.2,
        "max_attempts": 2,
    }
    kwargs.update(overrides)
    return CollectorFolderWatchTrigger(**kwargs)


class Watch:
    """Runs the trigger's generator in a task and queues its payloads (a cancelled ``anext`` would
    close the generator, which a long-running watcher must not see in a test)."""

    def __init__(self, trigger: CollectorFolderWatchTrigger) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.create_task(self._drain(trigger.run()))

    async def _drain(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            msgspec.json.encode(event.payload)  # the triggerer's JSON channel
            await self.events.put(dict(event.payload))

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def quiet(self, seconds: float = 0.6) -> None:
        await asyncio.sleep(seconds)
        assert self.events.empty(), f"unexpected event {self.events.get_nowait()}"
        assert not self.task.done(), "the watcher stopped"

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def test_it_is_an_event_trigger_and_round_trips(tmp_path: Path) -> None:
    trigger = make(tmp_path, tmp_path / "staging", recursive=True, poll_interval=10)
    assert isinstance(trigger, BaseEventTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    json.dumps(kwargs)
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["ledger_path"] == str(tmp_path / "staging" / "ledger.sqlite3")
    assert kwargs["poll_interval"] == 10.0 and kwargs["recursive"] is True and kwargs["max_attempts"] == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"patterns": ["nfcapd.(["]}, "invalid pattern"),
        ({"poll_interval": 0}, "poll_interval must be > 0"),
        ({"stable_seconds": -1}, "stable_seconds must be >= 0"),
    ],
)
def test_bad_arguments_fail_at_construction(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(tmp_path, tmp_path, **overrides)


def test_announces_each_new_file_once_and_keeps_watching(tmp_path: Path) -> None:
    folder = tmp_path / "collector"
    folder.mkdir()
    write(folder / "nfcapd.202401011200", b"a", age=120)
    write(folder / "nfcapd.current.123", b"x", age=0)
    write(folder / "notes.txt", b"x", age=120)

    async def scenario() -> list[dict[str, Any]]:
        watch = Watch(make(folder, tmp_path / "staging"))
        try:
            first = await watch.next()
            await watch.quiet()  # the same file is not announced again while it stays
            write(folder / "nfcapd.202401011205", b"bb", age=0)
            second = await watch.next()
            return [first, second]
        finally:
            await watch.stop()

    first, second = asyncio.run(scenario())
    assert first == {
        "pipeline": "flow_test",
        "collector_path": str(folder),
        "new_files": 1,
        "files": ["nfcapd.202401011200"],
    }
    assert second["files"] == ["nfcapd.202401011205"] and second["new_files"] == 1


def test_a_file_that_left_and_came_back_changed_is_announced_again(tmp_path: Path) -> None:
    folder = tmp_path / "collector"
    folder.mkdir()
    target = folder / "nfcapd.202401011200"
    write(target, b"a", age=120)

    async def scenario() -> dict[str, Any]:
        watch = Watch(make(folder, tmp_path / "staging"))
        try:
            await watch.next()
            target.unlink()  # collected with post_ingest: delete
            await watch.quiet(0.3)
            write(target, b"new content", age=60)  # the collector rewrote the name
            return await watch.next()
        finally:
            await watch.stop()

    assert asyncio.run(scenario())["files"] == ["nfcapd.202401011200"]


def test_files_the_ledger_holds_done_or_given_up_start_no_run(tmp_path: Path) -> None:
    folder, staging = tmp_path / "collector", tmp_path / "staging"
    folder.mkdir()
    staging.mkdir()
    done, failed, fresh = (folder / f"nfcapd.20240101120{i}" for i in range(3))
    for path in (done, failed, fresh):
        write(path, path.name.encode(), age=120)
    ledger = FileLedger(ledger_path(staging))
    v_done = FileVersion.from_path("flow_test", done)
    ledger.claim(v_done, "run", 60)
    for state in (State.STORED, State.PUBLISHED, State.DONE):
        ledger.advance(v_done, "run", state)
    v_failed = FileVersion.from_path("flow_test", failed)
    for attempt in range(2):  # max_attempts = 2
        ledger.claim(v_failed, f"run-{attempt}", 60)
        ledger.fail(v_failed, f"run-{attempt}", "boom")
    assert len(settled_keys(ledger, "flow_test", 2)) == 2

    async def scenario() -> dict[str, Any]:
        watch = Watch(make(folder, staging))
        try:
            payload = await watch.next()
            await watch.quiet()
            return payload
        finally:
            await watch.stop()

    assert asyncio.run(scenario())["files"] == [fresh.name]


def test_a_missing_folder_is_logged_and_watched_until_it_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "not-yet"

    async def scenario() -> dict[str, Any]:
        watch = Watch(make(folder, tmp_path / "staging"))
        try:
            await watch.quiet(0.4)
            folder.mkdir()
            write(folder / "nfcapd.202401011200", b"a", age=120)
            return await watch.next()
        finally:
            await watch.stop()

    with caplog.at_level("INFO"):
        payload = asyncio.run(scenario())
    assert payload["files"] == ["nfcapd.202401011200"]
    captured = capsys.readouterr()  # Airflow's structlog may print instead of using logging
    text = caplog.text + captured.out + captured.err
    assert text.count("cannot watch") == 1, text  # once, not at every poll
    assert f"pipeline flow_test: cannot watch {folder}" in text and "does not exist" in text
    assert f"watching {folder} again" in text


def test_a_growing_file_is_announced_once_it_is_stable(tmp_path: Path) -> None:
    folder = tmp_path / "collector"
    folder.mkdir()
    target = folder / "nfcapd.202401011200"

    async def grow() -> float:
        with open(target, "wb") as handle:
            for _ in range(8):
                handle.write(b"x" * 100)
                handle.flush()
                await asyncio.sleep(0.05)
        return time.monotonic()

    async def scenario() -> tuple[float, float]:
        watch = Watch(make(folder, tmp_path / "staging", stable_seconds=0.3))
        try:
            writer = asyncio.create_task(grow())
            await watch.next()
            return time.monotonic(), await writer
        finally:
            await watch.stop()

    fired, finished = asyncio.run(scenario())
    assert fired >= finished
    assert os.path.getsize(target) == 800


@pytest.mark.parametrize(
    ("max_wait", "stable", "interval", "expected"),
    [(600.0, 30.0, 10.0, 60.0), (20.0, 30.0, 10.0, 20.0), (600.0, 0.0, 1.0, 3.0)],
)
def test_a_watcher_run_waits_briefly(
    max_wait: float, stable: float, interval: float, expected: float
) -> None:
    assert watcher_run_wait(max_wait, stable, interval) == expected


def _give_up(ledger: FileLedger, v: FileVersion, attempts: int = 2) -> None:
    for attempt in range(attempts):  # max_attempts = 2 in make()
        ledger.claim(v, f"run-{attempt}", 60)
        ledger.fail(v, f"run-{attempt}", "boom")


def test_each_poll_reads_only_the_ledger_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger is opened once and read in full once; later polls read what changed, not history."""
    folder, staging = tmp_path / "collector", tmp_path / "staging"
    folder.mkdir()
    staging.mkdir()
    ledger = FileLedger(ledger_path(staging))
    for i in range(5):  # history: collected files that are gone from the folder
        v = FileVersion("flow_test", str(folder / f"nfcapd.20230101000{i}"), 1, 1, "0" * 63 + str(i))
        ledger.claim(v, "run", 60)
        for state in (State.STORED, State.PUBLISHED, State.DONE):
            ledger.advance(v, "run", state)
    opened: list[str] = []
    read: list[tuple[bool, int]] = []
    real_init, real_changes = FileLedger.__init__, FileLedger.changes

    def counting_init(self: FileLedger, *args: Any, **kwargs: Any) -> None:
        opened.append(str(args[0]))
        real_init(self, *args, **kwargs)

    def counting_changes(self: FileLedger, *args: Any, **kwargs: Any) -> LedgerChanges:
        changes = real_changes(self, *args, **kwargs)
        read.append((changes.complete, len(changes.records)))
        return changes

    def full_read(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the watcher read the whole ledger")

    monkeypatch.setattr(FileLedger, "__init__", counting_init)
    monkeypatch.setattr(FileLedger, "changes", counting_changes)
    monkeypatch.setattr(FileLedger, "records", full_read)
    target = folder / "nfcapd.202401011200"

    async def scenario() -> dict[str, Any]:
        watch = Watch(make(folder, staging))
        try:
            await watch.quiet(0.5)
            write(target, b"a", age=120)
            return await watch.next()
        finally:
            await watch.stop()

    assert asyncio.run(scenario())["files"] == [target.name]
    assert opened == [str(ledger_path(staging))]
    assert len(read) >= 5 and read[0] == (True, 5)
    assert read[1:] == [(False, 0)] * (len(read) - 1)


def test_a_given_up_file_claimed_again_is_announced(tmp_path: Path) -> None:
    """A record that leaves the settled state while the watcher runs is seen (incremental read)."""
    folder, staging = tmp_path / "collector", tmp_path / "staging"
    folder.mkdir()
    staging.mkdir()
    target = folder / "nfcapd.202401011200"
    write(target, b"a", age=120)
    ledger = FileLedger(ledger_path(staging))
    v = FileVersion.from_path("flow_test", target)
    _give_up(ledger, v)

    async def scenario() -> dict[str, Any]:
        watch = Watch(make(folder, staging))
        try:
            await watch.quiet(0.5)  # given up: left alone
            ledger.claim(v, "operator-reset", 60)  # an operator resets it
            payload = await watch.next()
            ledger.fail(v, "operator-reset", "again")  # given up again: no new announcement
            await watch.quiet(0.5)
            return payload
        finally:
            await watch.stop()

    assert asyncio.run(scenario())["files"] == [target.name]


def test_files_settled_while_watching_and_a_ledger_that_goes_away(tmp_path: Path) -> None:
    folder, staging = tmp_path / "collector", tmp_path / "staging"
    folder.mkdir()
    staging.mkdir()
    db = ledger_path(staging)
    done, later = folder / "nfcapd.202401011200", folder / "nfcapd.202401011205"
    write(done, b"a", age=120)

    async def scenario() -> list[list[str]]:
        watch = Watch(make(folder, staging))
        try:
            first = await watch.next()  # no ledger yet (no collect ran)
            ledger = FileLedger(db)
            v = FileVersion.from_path("flow_test", done)
            ledger.claim(v, "run", 60)
            for state in (State.STORED, State.PUBLISHED, State.DONE):
                ledger.advance(v, "run", state)
            await watch.quiet(0.4)
            # The ledger is deleted (the keys it held are dropped): its done file is new again.
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            second = await watch.next()
            write(later, b"b", age=120)
            third = await watch.next()
            return [first["files"], second["files"], third["files"]]
        finally:
            await watch.stop()

    assert asyncio.run(scenario()) == [[done.name], [done.name], [later.name]]
