"""Unit tests of ``spot_operators.ingest_stats``: the Ingest page's numbers from real temporary ledgers.

Each test writes a config with absolute temporary folders, walks files through a real
:class:`FileLedger` with a fake clock (so "today", the hourly chart and the lag are exact), and
checks the numbers; Hive is a fake hook, including one that hangs and one that is down.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spot_operators import ingest_stats
from spot_operators.config import IngestConfig, load_ingest_config
from spot_operators.ingest_stats import (
    HiveCache,
    HiveStats,
    build_summary,
    count_failed_segments,
    hive_hour_counts,
    pipeline_stats,
    query_hive,
)
from spot_operators.ledger import FileLedger, FileVersion, State, file_digest

# 2024-03-05 10:30:00 UTC: 10.5 h into the day.
NOW = 1_709_634_600.0
DAY_START = 1_709_596_800.0
OWNER = "spot_collect_flow/run/collect_file/0"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_config(tmp_path: Path, pipelines: dict[str, str] | None = None) -> IngestConfig:
    """A valid config whose pipelines use folders under ``tmp_path``."""
    pipelines = pipelines or {"flow_a": "flow", "dns_b": "dns"}
    data = {
        "dbname": "spotdb",
        "hdfs_app_path": "/user/spot",
        "kafka": {"kafka_server": "127.0.0.1", "kafka_port": 9092},
        "pipelines": {
            name: {
                "type": kind,
                "collector_path": str(tmp_path / "collector" / name),
                "local_staging": str(tmp_path / "staging" / name),
            }
            for name, kind in pipelines.items()
        },
    }
    for name in pipelines:
        (tmp_path / "collector" / name).mkdir(parents=True)
        (tmp_path / "staging" / name).mkdir(parents=True)
    path = tmp_path / "ingest_conf.json"
    path.write_text(json.dumps(data))
    return load_ingest_config(path)


def collector_file(config: IngestConfig, pipeline: str, name: str, content: bytes, mtime: float) -> Path:
    path = config.pipelines[pipeline].collector_path / name
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))
    return path


def ingest(
    config: IngestConfig,
    pipeline: str,
    path: Path,
    *,
    at: float,
    rows: int,
    quarantined: int = 0,
    final: State = State.DONE,
) -> FileVersion:
    """Walk ``path`` through the ledger the way ``collect_file`` does, finishing at time ``at``."""
    clock = Clock(at - 5)
    ledger = FileLedger(config.pipelines[pipeline].local_staging / "ledger.sqlite3", clock=clock)
    version = FileVersion.from_path(pipeline, path)
    assert ledger.claim(version, OWNER, 600) is not None
    if final is State.FAILED:
        clock.now = at
        ledger.fail(version, OWNER, "HDFS unreachable")
        return version
    ledger.advance(version, OWNER, State.STORED, {"originals": ["/x"]})
    if final is State.STORED:
        return version
    ledger.advance(version, OWNER, State.PUBLISHED, {"rows": rows, "route": "inline", "messages": 1})
    clock.now = at
    ledger.advance(version, OWNER, State.DONE, {"quarantined": quarantined, "local_original": "kept"})
    return version


def test_counts_today_total_bytes_quarantine_and_last_success(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    yesterday = collector_file(config, "flow_a", "nfcapd.202403041200", b"a" * 100, DAY_START - 7200)
    early = collector_file(config, "flow_a", "nfcapd.202403050100", b"b" * 40, DAY_START + 3600)
    late = collector_file(config, "flow_a", "nfcapd.202403051000", b"c" * 7, NOW - 600)
    ingest(config, "flow_a", yesterday, at=DAY_START - 3600, rows=1000, quarantined=3)
    ingest(config, "flow_a", early, at=DAY_START + 2 * 3600 + 60, rows=20, quarantined=1)
    ingest(config, "flow_a", late, at=NOW - 300, rows=5)

    stats = pipeline_stats(config.pipelines["flow_a"], now=NOW)

    assert (stats.files_total, stats.files_today) == (3, 2)
    assert (stats.rows_total, stats.rows_today) == (1025, 25)
    assert (stats.bytes_total, stats.bytes_today) == (147, 47)
    assert (stats.quarantined_total, stats.quarantined_today) == (4, 1)
    assert stats.last_success_epoch == NOW - 300
    assert stats.last_success == "2024-03-05T10:25:00Z"
    # Every collector file is done (post_ingest keep leaves them there): lag counts from the last one.
    assert stats.waiting_files == 0
    assert (stats.lag_basis, stats.lag_seconds) == ("last_success", 300.0)
    assert stats.problems == []


def test_rows_per_hour_cover_the_last_24_hours_by_finish_time(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    old = collector_file(config, "flow_a", "nfcapd.202403030000", b"o", NOW - 3 * 86400)
    one = collector_file(config, "flow_a", "nfcapd.202403050800", b"1", NOW - 9000)
    two = collector_file(config, "flow_a", "nfcapd.202403050801", b"22", NOW - 9000)
    three = collector_file(config, "flow_a", "nfcapd.202403051001", b"333", NOW - 100)
    ingest(config, "flow_a", old, at=NOW - 2 * 86400, rows=999)  # outside the chart
    ingest(config, "flow_a", one, at=DAY_START + 8 * 3600 + 10, rows=10)
    ingest(config, "flow_a", two, at=DAY_START + 8 * 3600 + 3000, rows=11)
    ingest(config, "flow_a", three, at=NOW - 60, rows=7)

    buckets = pipeline_stats(config.pipelines["flow_a"], now=NOW).rows_per_hour

    assert len(buckets) == 24
    assert buckets[-1].hour == "2024-03-05T10:00:00Z"
    assert buckets[0].hour == "2024-03-04T11:00:00Z"
    by_hour = {b.hour: (b.rows, b.files) for b in buckets if b.rows or b.files}
    assert by_hour == {"2024-03-05T08:00:00Z": (21, 2), "2024-03-05T10:00:00Z": (7, 1)}


def test_failed_in_progress_and_waiting_files_and_lag_from_the_oldest_waiting(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    done = collector_file(config, "flow_a", "nfcapd.202403050900", b"d", NOW - 4000)
    failed = collector_file(config, "flow_a", "nfcapd.202403050901", b"f", NOW - 1800)
    busy = collector_file(config, "flow_a", "nfcapd.202403050902", b"s", NOW - 900)
    collector_file(config, "flow_a", "nfcapd.202403051020", b"new", NOW - 120)  # never claimed
    collector_file(config, "flow_a", "nfcapd.current.4242", b"partial", NOW - 10)  # still being written
    collector_file(config, "flow_a", "notes.txt", b"not ours", NOW - 99999)  # does not match
    ingest(config, "flow_a", done, at=NOW - 3600, rows=3)
    ingest(config, "flow_a", failed, at=NOW - 1700, rows=0, final=State.FAILED)
    ingest(config, "flow_a", busy, at=NOW - 800, rows=0, final=State.STORED)

    stats = pipeline_stats(config.pipelines["flow_a"], now=NOW)

    assert (stats.files_total, stats.failed_files, stats.in_progress) == (1, 1, 1)
    assert stats.waiting_files == 3  # failed, in progress and new: none is done yet
    assert stats.lag_basis == "waiting"
    assert stats.lag_seconds == pytest.approx(1800, abs=1)  # the oldest waiting file


def test_a_rewritten_file_is_a_new_version_waiting_again(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    path = collector_file(config, "flow_a", "nfcapd.202403050900", b"v1", NOW - 4000)
    ingest(config, "flow_a", path, at=NOW - 3600, rows=3)
    collector_file(config, "flow_a", "nfcapd.202403050900", b"v2 longer", NOW - 60)

    stats = pipeline_stats(config.pipelines["flow_a"], now=NOW)

    assert (stats.files_total, stats.waiting_files, stats.lag_basis) == (1, 1, "waiting")


def test_nothing_collected_yet_gives_zeros_and_no_lag(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    stats = pipeline_stats(config.pipelines["dns_b"], now=NOW)
    assert (stats.files_total, stats.rows_total, stats.waiting_files) == (0, 0, 0)
    assert (stats.last_success, stats.lag_seconds, stats.lag_basis) == (None, None, "none")
    assert not (config.pipelines["dns_b"].local_staging / "ledger.sqlite3").exists(), "must not create one"


def test_missing_collector_folder_is_a_problem_not_an_error(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    config.pipelines["dns_b"].collector_path.rmdir()
    stats = pipeline_stats(config.pipelines["dns_b"], now=NOW)
    assert len(stats.problems) == 1 and "dns_b" in stats.problems[0]


def test_failed_segments_count_data_files_only(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    folder = staging / "failed" / "nfcapd.202403050900.0123456789abcdef"
    folder.mkdir(parents=True)
    for index in range(3):
        (folder / f"segment-{index:05d}.avro").write_bytes(b"avro")
        (folder / f"segment-{index:05d}.json").write_text("{}")
    (folder / "segment-00003.avro.tmp").write_bytes(b"half")  # an interrupted write
    assert count_failed_segments(staging) == 3
    assert count_failed_segments(tmp_path / "nowhere") == 0


def test_failed_segments_come_from_the_replay_module_when_it_counts_per_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path)
    folder = config.pipelines["flow_a"].local_staging / "failed" / "f.0123456789abcdef"
    folder.mkdir(parents=True)
    (folder / "segment-00000.avro").write_bytes(b"x")

    def no_replay(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr(ingest_stats.importlib, "import_module", no_replay)
    assert ingest_stats.failed_segments_by_pipeline(config) == {"flow_a": 1, "dns_b": 0}

    class Replay:
        @staticmethod
        def pending_failed_segments(_config: IngestConfig) -> dict[str, Any]:
            return {"flow_a": ["a", "b"], "dns_b": 5}

    monkeypatch.setattr(ingest_stats.importlib, "import_module", lambda name: Replay)
    assert ingest_stats.failed_segments_by_pipeline(config) == {"flow_a": 2, "dns_b": 5}

    class TotalOnly:
        @staticmethod
        def pending_failed_segments(_config: IngestConfig) -> int:
            return 7

    monkeypatch.setattr(ingest_stats.importlib, "import_module", lambda name: TotalOnly)
    assert ingest_stats.failed_segments_by_pipeline(config) == {"flow_a": 1, "dns_b": 0}


class FakeHive:
    """``get_records`` over canned partition counts per table; records the statements."""

    def __init__(self, tables: dict[str, list[tuple[Any, ...]]]) -> None:
        self.tables = tables
        self.statements: list[str] = []

    def get_records(self, sql: str) -> list[tuple[Any, ...]]:
        self.statements.append(sql)
        for name, rows in self.tables.items():
            if f"`{name}`" in sql:
                return rows
        raise RuntimeError("[TABLE_OR_VIEW_NOT_FOUND] The table or view cannot be found")


def test_hive_hour_counts_query_and_hours() -> None:
    hook = FakeHive({"flow": [(2023, 1, 25, 18, 120), ("2023", "01", "25", "19", "30")]})
    assert hive_hour_counts(hook, "spotdb", "flow") == {
        "2023-01-25T18:00:00Z": 120,
        "2023-01-25T19:00:00Z": 30,
    }
    assert hook.statements == ["SELECT y, m, d, h, COUNT(*) FROM `spotdb`.`flow` GROUP BY y, m, d, h"]
    with pytest.raises(ValueError, match="database"):
        hive_hour_counts(hook, "spot; DROP", "flow")


def test_query_hive_per_table_and_missing_table(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    rows = [(2023, 1, 25, h, 10 * h) for h in range(30)]
    hive = query_hive(config, lambda: FakeHive({"flow": rows}), hours=24)
    assert hive.available and hive.error is None
    tables = {t.type: t for t in hive.tables}
    assert tables["flow"].rows == sum(10 * h for h in range(30))
    assert tables["flow"].partitions == 30
    assert len(tables["flow"].rows_per_hour) == 24  # the newest 24 hours
    assert tables["flow"].newest_hour == "2023-01-25T29:00:00Z"
    assert tables["dns"].rows is None and "TABLE_OR_VIEW_NOT_FOUND" in (tables["dns"].error or "")


def test_query_hive_down_is_unavailable_not_an_exception(tmp_path: Path) -> None:
    config = make_config(tmp_path)

    def refused() -> Any:
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    hive = query_hive(config, refused)
    assert not hive.available
    assert "Connection refused" in (hive.error or "")


def test_summary_joins_hive_rows_per_type_and_says_when_hive_is_down(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    path = collector_file(config, "flow_a", "nfcapd.202403051000", b"abc", NOW - 600)
    ingest(config, "flow_a", path, at=NOW - 300, rows=42, quarantined=2)
    up = query_hive(config, lambda: FakeHive({"flow": [(2024, 3, 5, 10, 42)], "dns": []}))

    doc = build_summary(config, now=NOW, hive=up)
    json.dumps(doc)  # JSON-ready
    flow = next(p for p in doc["pipelines"] if p["name"] == "flow_a")
    assert (flow["files_total"], flow["rows_total"], flow["hive_rows"]) == (1, 42, 42)
    assert doc["totals"]["rows_total"] == 42 and doc["totals"]["quarantined_total"] == 2
    assert doc["hive"]["available"] is True and doc["dbname"] == "spotdb"

    down = build_summary(config, now=NOW, hive=HiveStats(available=False, error="timed out"))
    flow = next(p for p in down["pipelines"] if p["name"] == "flow_a")
    assert (flow["rows_total"], flow["hive_rows"]) == (42, None)  # ledger numbers stay
    assert down["hive"] == {
        "available": False,
        "error": "timed out",
        "elapsed_seconds": 0.0,
        "tables": [],
        "checked_at": None,
    }


def test_hive_cache_times_out_without_stacking_queries_and_reuses_answers() -> None:
    release = threading.Event()
    calls: list[float] = []

    def slow() -> HiveStats:
        calls.append(time.monotonic())
        release.wait(10)
        return HiveStats(available=True)

    cache = HiveCache(slow, max_age=60)
    first = cache.get(timeout=0.05)
    second = cache.get(timeout=0.05)
    assert not first.available and "did not answer within 0.05 s" in (first.error or "")
    assert not second.available
    assert len(calls) == 1, "a second view must wait for the running query, not start another"
    release.set()
    deadline = time.monotonic() + 5
    while not cache.get(timeout=1).available:
        assert time.monotonic() < deadline
    assert cache.get(timeout=0).available and len(calls) == 1  # cached


def test_hive_cache_asks_again_after_max_age_and_survives_a_raising_compute() -> None:
    now = [0.0]
    answers: Iterator[Exception | HiveStats] = iter([RuntimeError("boom"), HiveStats(available=True)])

    def compute() -> HiveStats:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    cache = HiveCache(compute, max_age=30, clock=lambda: now[0])
    failed = cache.get(timeout=5)
    assert not failed.available and "boom" in (failed.error or "")
    now[0] = 10
    assert cache.get(timeout=5) is failed  # still fresh
    now[0] = 31
    assert cache.get(timeout=5).available


def test_ledger_digest_matches_the_collector_file(tmp_path: Path) -> None:
    """The tests above use the real ledger identity (size, mtime_ns, sha256) of real files."""
    config = make_config(tmp_path)
    path = collector_file(config, "flow_a", "nfcapd.202403051000", b"abc", NOW - 600)
    version = ingest(config, "flow_a", path, at=NOW, rows=1)
    assert version.digest == file_digest(path)
