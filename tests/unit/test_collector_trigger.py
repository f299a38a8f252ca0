"""CollectorFilesTrigger.run() driven in-process by asyncio against a temporary collector directory."""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import os
import pickle
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
from airflow.triggers.base import TriggerEvent

from spot_operators.detection import FileSnapshot
from spot_operators.triggers import collector as collector_module
from spot_operators.triggers.collector import CollectorFilesTrigger

SEC = 1_000_000_000
CLASSPATH = "spot_operators.triggers.collector.CollectorFilesTrigger"


def import_string(dotted_path: str) -> Any:
    """What the triggerer does with a stored classpath (it does not see the DAG folder)."""
    module, _, name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def write(path: Path | bytes, data: bytes = b"data", age: float = 60.0) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
    mtime = time.time_ns() - int(age * SEC)
    os.utime(path, ns=(mtime, mtime))


def make(path: Path, **overrides: Any) -> CollectorFilesTrigger:
    kwargs: dict[str, Any] = {
        "pipeline": "flow_test",
        "collector_path": str(path),
        "patterns": [r"nfcapd\.[0-9]{12}([0-9]{2})?", r"^.*\.pcap$"],
        "poll_interval": 0.05,
        "stable_seconds": 0.3,
        "max_wait_seconds": 10.0,
    }
    kwargs.update(overrides)
    return CollectorFilesTrigger(**kwargs)


async def first_event(trigger: CollectorFilesTrigger, timeout: float = 15.0) -> dict[str, Any]:
    """The payload of the first event; a trigger must fire exactly once, then stop."""
    events = cast(AsyncGenerator[TriggerEvent, None], trigger.run())
    try:
        event = await asyncio.wait_for(anext(events), timeout)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(events), 1.0)
    finally:
        await events.aclose()
    payload = event.payload
    msgspec.json.encode(payload)  # what the triggerer sends over its UTF-8 JSON channel
    return payload


def run(trigger: CollectorFilesTrigger, timeout: float = 15.0) -> dict[str, Any]:
    return asyncio.run(first_event(trigger, timeout))


def basenames(event: dict[str, Any]) -> list[str]:
    return [os.path.basename(f["path"]) for f in event["files"]]


def test_files_present_at_start_up_fire_ready(tmp_path: Path) -> None:
    write(tmp_path / "nfcapd.202401011205", b"12345", age=120)
    write(tmp_path / "nfcapd.202401011200", b"123", age=300)
    write(tmp_path / "nfcapd.current.991", age=0)
    write(tmp_path / "notes.txt")
    started = time.monotonic()
    event = run(make(tmp_path))
    assert event["status"] == "ready"
    assert event["pipeline"] == "flow_test"
    assert event["collector_path"] == str(tmp_path)
    assert basenames(event) == ["nfcapd.202401011200", "nfcapd.202401011205"]  # oldest first
    stat = os.stat(tmp_path / "nfcapd.202401011200")
    assert event["files"][0] == {
        "path": str(tmp_path / "nfcapd.202401011200"),
        "size": 3,
        "mtime_ns": stat.st_mtime_ns,
    }
    assert event["polls"] == 2  # seen twice, unchanged: no need to wait for the mtime to age
    assert event["more_ready"] == 0
    assert 0 < event["waited_seconds"] < 5
    assert time.monotonic() - started < 5


def test_file_written_after_start_is_picked_up(tmp_path: Path) -> None:
    async def scenario() -> tuple[dict[str, Any], float]:
        waiting = asyncio.create_task(first_event(make(tmp_path)))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        write(tmp_path / "late.pcap", b"abc", age=0)
        written = time.monotonic()
        event = await waiting
        return event, time.monotonic() - written

    event, after_write = asyncio.run(scenario())
    assert event["status"] == "ready"
    assert basenames(event) == ["late.pcap"]
    assert event["files"][0]["size"] == 3
    assert after_write >= 0.3 - 0.05  # waited for stable_seconds after the write (mtime granularity)


def test_growing_file_is_reported_only_once_stable(tmp_path: Path) -> None:
    target = tmp_path / "growing.pcap"

    async def grow() -> float:
        with open(target, "wb") as handle:
            for _ in range(12):
                handle.write(b"x" * 100)
                handle.flush()
                await asyncio.sleep(0.06)
        return time.monotonic()

    async def scenario() -> tuple[dict[str, Any], float, float]:
        target.touch()
        writer = asyncio.create_task(grow())
        event = await first_event(make(tmp_path, stable_seconds=0.5))
        return event, time.monotonic(), await writer

    event, fired, finished = asyncio.run(scenario())
    assert event["status"] == "ready"
    assert event["files"][0]["size"] == 1200 == target.stat().st_size
    assert fired >= finished


def test_copy_with_preserved_old_mtime_waits_for_a_second_look(tmp_path: Path) -> None:
    """An old mtime alone is not enough: the file must also look the same in two scans."""
    write(tmp_path / "old.pcap", age=3600)
    event = run(make(tmp_path, stable_seconds=0.0))
    assert event["polls"] == 2


def test_timeout_when_nothing_becomes_ready(tmp_path: Path) -> None:
    write(tmp_path / "nfcapd.current.1", age=600)
    write(tmp_path / ".hidden.pcap", age=600)
    write(tmp_path / "copy.pcap.part", age=600)
    write(tmp_path / "other.txt", age=600)
    started = time.monotonic()
    event = run(make(tmp_path, max_wait_seconds=0.4))
    assert event["status"] == "timeout"
    assert event["pipeline"] == "flow_test"
    assert "files" not in event
    assert 0.4 <= event["waited_seconds"] < 3
    assert time.monotonic() - started < 3
    assert event["polls"] >= 2


def test_timeout_zero_still_scans_once(tmp_path: Path) -> None:
    event = run(make(tmp_path, max_wait_seconds=0))
    assert event["status"] == "timeout"
    assert event["polls"] == 1


def test_missing_directory_is_an_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no such dir"
    event = run(make(missing))
    assert event["status"] == "error"
    assert str(missing) in event["message"]
    assert "does not exist" in event["message"]
    assert event["pipeline"] == "flow_test"


def test_collector_path_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "plain")
    event = run(make(tmp_path / "plain"))
    assert event["status"] == "error"
    assert "is not a directory" in event["message"]


def test_directory_removed_while_waiting_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "collector"
    root.mkdir()

    async def scenario() -> dict[str, Any]:
        waiting = asyncio.create_task(first_event(make(root)))
        await asyncio.sleep(0.2)
        root.rmdir()
        return await waiting

    event = asyncio.run(scenario())
    assert event["status"] == "error"
    assert str(root) in event["message"]


def test_recursive_flag_is_honoured(tmp_path: Path) -> None:
    (tmp_path / "2024").mkdir()
    write(tmp_path / "2024" / "deep.pcap")
    assert run(make(tmp_path, recursive=False, max_wait_seconds=0.3))["status"] == "timeout"
    event = run(make(tmp_path, recursive=True))
    assert basenames(event) == ["deep.pcap"]


def test_excluded_keys_are_not_reported_again(tmp_path: Path) -> None:
    write(tmp_path / "done.pcap", age=300)
    write(tmp_path / "new.pcap", age=200)
    stat = os.stat(tmp_path / "done.pcap")
    done_key = FileSnapshot(str(tmp_path / "done.pcap"), stat.st_size, stat.st_mtime_ns).key
    event = run(make(tmp_path, exclude=[done_key]))
    assert basenames(event) == ["new.pcap"]

    only_done = tmp_path / "only_done"
    only_done.mkdir()
    write(only_done / "done.pcap", age=300)
    stat = os.stat(only_done / "done.pcap")
    key = FileSnapshot(str(only_done / "done.pcap"), stat.st_size, stat.st_mtime_ns).key
    assert run(make(only_done, exclude=[key], max_wait_seconds=0.3))["status"] == "timeout"


def test_a_rewritten_file_is_not_excluded_by_its_old_key(tmp_path: Path) -> None:
    write(tmp_path / "a.pcap", b"v1", age=300)
    stat = os.stat(tmp_path / "a.pcap")
    old_key = FileSnapshot(str(tmp_path / "a.pcap"), stat.st_size, stat.st_mtime_ns).key
    write(tmp_path / "a.pcap", b"version 2", age=100)
    event = run(make(tmp_path, exclude=[old_key]))
    assert event["files"][0]["size"] == 9


def test_backlog_is_capped_per_event_oldest_first(tmp_path: Path) -> None:
    for minute in range(5):
        write(tmp_path / f"nfcapd.2024010112{minute:02d}", age=600 - minute)
    event = run(make(tmp_path, max_files=2))
    assert basenames(event) == ["nfcapd.202401011200", "nfcapd.202401011201"]
    assert event["more_ready"] == 3


def test_non_utf8_name_travels_in_the_event(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9 $(x);.pcap"
    write(raw, b"pcap bytes")
    event = run(make(tmp_path))
    [entry] = event["files"]
    snapshot = FileSnapshot.from_event(json.loads(json.dumps(entry)))
    assert os.fsencode(snapshot.path) == raw
    with open(snapshot.path, "rb") as handle:
        assert handle.read() == b"pcap bytes"


def test_scan_runs_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow scan (NFS, huge directory) must not freeze the other triggers of the triggerer."""
    real_scan = collector_module.scan_directory

    def slow_scan(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(collector_module, "scan_directory", slow_scan)

    async def scenario() -> tuple[dict[str, Any], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(ticker())
        event = await first_event(make(tmp_path, max_wait_seconds=0.0))
        beat.cancel()
        return event, ticks

    event, ticks = asyncio.run(scenario())
    assert event["status"] == "timeout"
    assert ticks >= 5  # the loop kept running during the 0.3 s scan


def test_progress_is_logged_each_poll(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "young.pcap", age=0)
    os.mkfifo(tmp_path / "fifo.pcap")
    with caplog.at_level("INFO"):
        event = run(make(tmp_path, stable_seconds=60, max_wait_seconds=0.2))
    assert event["status"] == "timeout"
    assert event["still_settling"] == 1
    captured = capsys.readouterr()  # Airflow's structlog may print instead of using logging
    text = caplog.text + captured.out + captured.err
    assert "pipeline flow_test poll 1 of" in text
    assert "1 candidate(s), 0 ready, 1 still settling" in text
    assert text.count("fifo.pcap: not a regular file") == 1  # a lasting problem is logged once


def test_serialize_round_trip(tmp_path: Path) -> None:
    trigger = make(
        tmp_path,
        recursive=True,
        exclude=[f"{tmp_path}/a.pcap|3|42"],
        max_files=7,
        poll_interval=10,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert import_string(classpath) is CollectorFilesTrigger
    json.dumps(kwargs)  # stored as JSON in the metadata database
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "pipeline": "flow_test",
        "collector_path": str(tmp_path),
        "patterns": [r"nfcapd\.[0-9]{12}([0-9]{2})?", r"^.*\.pcap$"],
        "recursive": True,
        "poll_interval": 10.0,
        "stable_seconds": 0.3,
        "max_wait_seconds": 10.0,
        "exclude": [f"{tmp_path}/a.pcap|3|42"],
        "max_files": 7,
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"patterns": ["nfcapd.(["]}, r"invalid pattern 'nfcapd\.\(\[': unterminated"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"stable_seconds": -1}, "stable_seconds"),
        ({"max_wait_seconds": -1}, "max_wait_seconds"),
        ({"max_files": 0}, "max_files"),
    ],
)
def test_bad_arguments_fail_at_construction(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        make(tmp_path, **overrides)


def test_trigger_can_be_copied_and_pickled(tmp_path: Path) -> None:
    write(tmp_path / "a.pcap", age=300)
    for clone in (copy.deepcopy(make(tmp_path)), pickle.loads(pickle.dumps(make(tmp_path)))):
        assert basenames(run(clone)) == ["a.pcap"]


def test_ready_now_returns_the_event_run_would_fire_without_waiting(tmp_path: Path) -> None:
    """What the sensor checks before deferring: stable files come back at once, young ones do not."""
    write(tmp_path / "nfcapd.202401011200", b"123", age=300)
    write(tmp_path / "young.pcap", b"x", age=0)
    write(tmp_path / "done.pcap", b"d", age=300)
    done_key = FileSnapshot.from_event(
        {
            "path": str(tmp_path / "done.pcap"),
            "size": 1,
            "mtime_ns": os.stat(tmp_path / "done.pcap").st_mtime_ns,
        }
    ).key
    trigger = make(tmp_path, stable_seconds=5, exclude=[done_key])
    started = time.monotonic()
    event = trigger.ready_now(gap=0.05)
    assert time.monotonic() - started < 2
    assert event is not None and event["status"] == "ready"
    assert basenames(event) == ["nfcapd.202401011200"]
    msgspec.json.encode(event)

    (tmp_path / "nfcapd.202401011200").unlink()
    assert make(tmp_path, stable_seconds=5, exclude=[done_key]).ready_now(gap=0.05) is None  # young only
    assert make(tmp_path / "missing").ready_now(gap=0.05) is None  # the trigger reports that one
