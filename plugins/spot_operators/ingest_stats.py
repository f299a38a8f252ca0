"""The numbers of the Ingest page: per pipeline files, rows, bytes, quarantine, backlog, lag, rows per hour.

Why a module of its own: the page must show what really happened, so every number is computed here
from the durable records (each pipeline's collect ledger, its ``failed/`` segments and collector
folder) and from Hive's tables, and this code is tested with temporary ledgers instead of a browser.
It imports nothing from Airflow; Hive is reached through any object with ``get_records(sql)`` (a
``HiveServer2Hook`` in the api-server), behind a timeout, because a Hive outage must degrade the page
to the ledger numbers rather than hang it.

All times are UTC epoch seconds; "today" starts at 00:00 UTC (the time zone Airflow schedules in).
"""

from __future__ import annotations

import concurrent.futures
import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spot_operators.config import IngestConfig, PipelineConfig
from spot_operators.detection import CollectorPathError, path_text, scan_directory
from spot_operators.hql import quote_identifier
from spot_operators.ledger import FileLedger, FileRecord, LedgerError, State
from spot_operators.ledger import ledger_path as collect_ledger_path

__all__ = [
    "CHART_HOURS",
    "HiveCache",
    "HiveStats",
    "HiveTableStats",
    "HourBucket",
    "PipelineStats",
    "build_summary",
    "count_failed_segments",
    "failed_segments_by_pipeline",
    "hive_hour_counts",
    "ledger_path",
    "pipeline_stats",
    "query_hive",
    "summarize_records",
    "waiting_files",
]

log = logging.getLogger(__name__)

CHART_HOURS = 24
"""Hours shown in the rows-per-hour charts."""

_HOUR = 3600.0
_DAY = 86400.0


@dataclass
class HourBucket:
    """Rows and files of one hour; ``hour`` is the ISO time of its start (UTC)."""

    hour: str
    rows: int = 0
    files: int = 0


@dataclass
class PipelineStats:
    """What the page shows for one pipeline (JSON-ready through :func:`dataclasses.asdict`)."""

    name: str
    type: str
    files_today: int = 0
    files_total: int = 0
    rows_today: int = 0
    rows_total: int = 0
    bytes_today: int = 0
    bytes_total: int = 0
    quarantined_today: int = 0
    quarantined_total: int = 0
    failed_files: int = 0  # ledger state failed: retried by the next run, or waiting for an operator
    in_progress: int = 0  # claimed, stored or published: a collect task is on it
    waiting_files: int = 0  # ready-looking collector files the ledger has not seen done
    failed_segments_pending: int = 0
    last_success: str | None = None
    last_success_epoch: float | None = None
    lag_seconds: float | None = None
    lag_basis: str = "none"  # waiting | last_success | none
    hive_rows: int | None = None  # rows of <db>.<type> (shared by the type's pipelines)
    rows_per_hour: list[HourBucket] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class HiveTableStats:
    """``COUNT(*)`` of one Spot table, in total and for its newest partition hours."""

    type: str
    table: str
    rows: int | None = None
    partitions: int = 0
    newest_hour: str | None = None
    rows_per_hour: list[HourBucket] = field(default_factory=list)
    error: str | None = None


@dataclass
class HiveStats:
    """Hive's side of the page; ``available`` is false when HiveServer2 did not answer in time."""

    available: bool
    error: str | None = None
    elapsed_seconds: float = 0.0
    tables: list[HiveTableStats] = field(default_factory=list)
    checked_at: str | None = None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _hour_floor(epoch: float) -> float:
    return epoch - epoch % _HOUR


def ledger_path(pipeline: PipelineConfig) -> Path:
    """Where the collect step keeps the pipeline's ledger."""
    return collect_ledger_path(pipeline.local_staging)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def summarize_records(
    stats: PipelineStats, records: Iterable[FileRecord], *, now: float, hours: int = CHART_HOURS
) -> None:
    """Fill ``stats`` from ledger records: counts, today vs. total, last success, rows per hour.

    A file counts once it is ``done`` (stored, published and acknowledged); ``updated_at`` of a done
    record is the moment it finished, which dates it for "today" and for the chart.
    """
    day_start = now - now % _DAY
    first_hour = _hour_floor(now) - (hours - 1) * _HOUR
    buckets = [HourBucket(_iso(first_hour + i * _HOUR)) for i in range(hours)]
    for record in records:
        if record.state is State.FAILED:
            stats.failed_files += 1
            continue
        if record.state is not State.DONE:
            stats.in_progress += 1
            continue
        if record.details.get("duplicate_of"):  # identical content counted with its first version
            continue
        rows = _int(record.details.get("rows"))
        quarantined = _int(record.details.get("quarantined"))
        size = record.version.size
        stats.files_total += 1
        stats.rows_total += rows
        stats.bytes_total += size
        stats.quarantined_total += quarantined
        finished = record.updated_at
        if finished >= day_start:
            stats.files_today += 1
            stats.rows_today += rows
            stats.bytes_today += size
            stats.quarantined_today += quarantined
        if stats.last_success_epoch is None or finished > stats.last_success_epoch:
            stats.last_success_epoch = finished
        index = int((_hour_floor(finished) - first_hour) // _HOUR)
        if 0 <= index < hours:
            buckets[index].rows += rows
            buckets[index].files += 1
    stats.rows_per_hour = buckets
    if stats.last_success_epoch is not None:
        stats.last_success = _iso(stats.last_success_epoch)


def waiting_files(pipeline: PipelineConfig, done: set[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Collector files (matching, not hidden or in progress) whose exact version is not done.

    A version is ``(path, size, mtime_ns)``, the way detection tells versions apart without hashing
    (hashing every big pcap on each page view would be far too slow).
    """
    scan = scan_directory(pipeline.collector_path, recursive=pipeline.recursive, matches=pipeline.matches)
    found = [(path_text(s.path), s.size, s.mtime_ns) for s in scan.files.values()]
    return [version for version in found if version not in done]


def count_failed_segments(staging: Path) -> int:
    """Undelivered Kafka segments kept under ``<local_staging>/failed/`` (one ``segment-*.avro`` each).

    Each segment is a data file plus its ``.json`` metadata, and writes go through ``.tmp`` names;
    counting the data files alone gives the number of segments a replay still has to deliver.
    """
    failed = staging / "failed"
    if not failed.is_dir():
        return 0
    return sum(1 for p in failed.rglob("segment-*.avro") if p.is_file())


def failed_segments_by_pipeline(config: IngestConfig) -> dict[str, int]:
    """Pending failed segments per pipeline, through the replay module when it offers a count.

    ``spot_operators.replay.pending_failed_segments(config)`` owns the definition of "pending" once it
    exists (it replays and removes them); until then, or if its answer is not per pipeline, the
    segment files are counted here.
    """
    counted = {name: count_failed_segments(p.local_staging) for name, p in config.pipelines.items()}
    try:
        replay = importlib.import_module("spot_operators.replay")
        pending = replay.pending_failed_segments
    except (ImportError, AttributeError):
        return counted
    try:
        answer = pending(config)
    except Exception as exc:  # the page must still render when the replay helper breaks
        log.warning("pending_failed_segments failed, counting files instead: %s", exc)
        return counted
    if not isinstance(answer, Mapping):
        return counted
    result = dict(counted)
    for name, value in answer.items():
        if name in result:
            result[name] = len(value) if isinstance(value, Sized) else _int(value)
    return result


def pipeline_stats(
    pipeline: PipelineConfig, *, now: float, failed_segments: int | None = None, hours: int = CHART_HOURS
) -> PipelineStats:
    """Everything the page shows for one pipeline, from its ledger, staging and collector folders.

    Lag: with files waiting in the collector folder, how long the oldest of them has waited (how far
    ingest is behind); with none, the time since the last file finished (how long the pipeline has
    been quiet). Missing folders or ledger (nothing collected yet) give zeros, not errors.
    """
    stats = PipelineStats(name=pipeline.name, type=pipeline.type)
    records: list[FileRecord] = []
    path = ledger_path(pipeline)
    if path.is_file():
        try:
            records = FileLedger(path).records(pipeline=pipeline.name)
        except LedgerError as exc:
            stats.problems.append(f"ledger unreadable: {exc}")
    summarize_records(stats, records, now=now, hours=hours)
    done = {(r.version.path, r.version.size, r.version.mtime_ns) for r in records if r.state is State.DONE}
    waiting: list[tuple[str, int, int]] = []
    try:
        waiting = waiting_files(pipeline, done)
    except CollectorPathError as exc:
        stats.problems.append(str(exc))
    stats.waiting_files = len(waiting)
    stats.failed_segments_pending = (
        count_failed_segments(pipeline.local_staging) if failed_segments is None else failed_segments
    )
    if waiting:
        oldest = min(mtime_ns for _, _, mtime_ns in waiting) / 1e9
        stats.lag_seconds = max(0.0, now - oldest)
        stats.lag_basis = "waiting"
    elif stats.last_success_epoch is not None:
        stats.lag_seconds = max(0.0, now - stats.last_success_epoch)
        stats.lag_basis = "last_success"
    return stats


def hive_hour_counts(hook: Any, database: str, table: str) -> dict[str, int]:
    """Rows per partition hour of ``database.table`` as ``{"YYYY-MM-DDTHH:00:00Z": rows}``."""
    qualified = f"{quote_identifier(database, 'database')}.{quote_identifier(table, 'table')}"
    sql = f"SELECT y, m, d, h, COUNT(*) FROM {qualified} GROUP BY y, m, d, h"
    counts: dict[str, int] = {}
    for y, m, d, h, n in hook.get_records(sql):
        try:
            hour = f"{int(y):04d}-{int(m):02d}-{int(d):02d}T{int(h):02d}:00:00Z"
        except (TypeError, ValueError):
            hour = f"{y}-{m}-{d}T{h}"  # a partition outside Spot's layout is still counted
        counts[hour] = counts.get(hour, 0) + _int(n)
    return counts


def _table_stats(hook: Any, database: str, data_type: str, hours: int) -> HiveTableStats:
    stats = HiveTableStats(type=data_type, table=f"{database}.{data_type}")
    counts = hive_hour_counts(hook, database, data_type)
    stats.rows = sum(counts.values())
    stats.partitions = len(counts)
    newest = sorted(counts)[-hours:]
    stats.newest_hour = newest[-1] if newest else None
    stats.rows_per_hour = [HourBucket(hour, rows=counts[hour]) for hour in newest]
    return stats


def _is_missing_table(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(m in text for m in ("table_or_view_not_found", "table not found", "no such table"))


def query_hive(
    config: IngestConfig,
    hook_factory: Callable[[], Any],
    *,
    hours: int = CHART_HOURS,
    clock: Callable[[], float] = time.time,
) -> HiveStats:
    """Row counts of the configured types' tables, or ``available=False`` with the reason; never raises.

    A missing table (``spot_setup`` not run yet) is reported on that table only; any other error
    means HiveServer2 itself failed, and the page falls back to the ledger numbers.
    """
    started = clock()
    result = HiveStats(available=True)
    try:
        hook = hook_factory()
        for data_type in sorted({p.type for p in config.pipelines.values()}):
            try:
                result.tables.append(_table_stats(hook, config.dbname, data_type, hours))
            except Exception as exc:
                if not _is_missing_table(exc):
                    raise
                table = f"{config.dbname}.{data_type}"
                result.tables.append(HiveTableStats(type=data_type, table=table, error=f"{exc}"[:300]))
    except Exception as exc:
        result = HiveStats(available=False, error=f"{type(exc).__name__}: {exc}"[:500])
    result.elapsed_seconds = round(clock() - started, 3)
    result.checked_at = _iso(clock())
    return result


class HiveCache:
    """At most one Hive query at a time, its answer reused for ``max_age`` seconds.

    Why: ``COUNT(*)`` over Spot's tables takes seconds on a busy HiveServer2, and a page that several
    people reload must neither stack queries nor wait for a Hive that is down. :meth:`get` waits up
    to ``timeout`` seconds for a running query; past that it reports Hive as unavailable, and the
    query goes on in the background so a later view gets its answer.
    """

    def __init__(
        self,
        compute: Callable[[], HiveStats],
        *,
        max_age: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="spot-ingest-hive"
        )
        self._future: concurrent.futures.Future[HiveStats] | None = None
        self._value: HiveStats | None = None
        self._value_at = 0.0

    def _run(self) -> HiveStats:
        try:
            value = self._compute()
        except Exception as exc:  # compute should not raise; the page must render anyway
            value = HiveStats(available=False, error=f"{type(exc).__name__}: {exc}"[:500])
        with self._lock:
            self._value, self._value_at, self._future = value, self._clock(), None
        return value

    def get(self, timeout: float) -> HiveStats:
        """The fresh cached answer, else the running or a new query's answer within ``timeout`` s."""
        with self._lock:
            if self._value is not None and self._clock() - self._value_at < self._max_age:
                return self._value
            if self._future is None:
                self._future = self._pool.submit(self._run)
            future = self._future
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            return HiveStats(
                available=False, error=f"HiveServer2 did not answer within {timeout:g} s (still trying)"
            )


def build_summary(
    config: IngestConfig,
    *,
    now: float | None = None,
    hive: HiveStats | None = None,
    hours: int = CHART_HOURS,
) -> dict[str, Any]:
    """The JSON document of ``/api/summary``: pipelines (from ledgers and folders) plus Hive."""
    moment = time.time() if now is None else now
    segments = failed_segments_by_pipeline(config)
    pipelines = [
        pipeline_stats(pipeline, now=moment, failed_segments=segments.get(name), hours=hours)
        for name, pipeline in config.pipelines.items()
    ]
    hive = hive or HiveStats(available=False, error="Hive was not queried")
    rows_by_type = {t.type: t.rows for t in hive.tables if t.error is None}
    for stats in pipelines:
        stats.hive_rows = rows_by_type.get(stats.type) if hive.available else None
    keys = ("files_today", "files_total", "rows_today", "rows_total", "bytes_today", "bytes_total")
    totals = {key: sum(getattr(p, key) for p in pipelines) for key in keys}
    totals["quarantined_total"] = sum(p.quarantined_total for p in pipelines)
    totals["failed_segments_pending"] = sum(p.failed_segments_pending for p in pipelines)
    return {
        "generated_at": _iso(moment),
        "dbname": config.dbname,
        "chart_hours": hours,
        "pipelines": [asdict(p) for p in pipelines],
        "totals": totals,
        "hive": asdict(hive),
    }
