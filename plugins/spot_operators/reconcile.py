"""Reconcile a load: rows published per file, rows the listeners wrote, and rows Hive counts per hour.

Spot's tables carry no source-file column, so the listener keeps a load log beside them (one JSON line
per pipeline, file, segment and hour of each micro-batch, under ``<hdfs_app_path>/<type>/loadlog/``,
overwritten when a batch is replayed). Two questions decide whether a load is right:

* per file: did every segment arrive, and are the rows written plus the rows quarantined equal to the
  rows the collect step published? Fewer segments than announced is *pending* (the listener has not
  seen them yet), anything else that differs is a *mismatch* (a loss, or a file loaded twice);
* per hour partition the files touched: does Hive's ``COUNT(*)`` equal the sum of the load log over
  every listener? A difference means rows were lost, duplicated, or written by someone else.

Pure functions: the load DAG's task reads the load log over WebHDFS and counts through HiveServer2.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Hour = tuple[str, str, str, str]
"""An hour partition as the strings of y, m, d, h (``("2023", "1", "25", "18")``; proxy zero-padded)."""

_ENTRY_KEYS = ("listener", "batch_id", "pipeline", "file_name", "file_digest", "segment_index", "rows")


class LoadLogError(ValueError):
    """A load log line that cannot be read; names the file and the line."""


@dataclass(frozen=True)
class LoadLogEntry:
    """Rows of one file segment that one listener batch wrote into one hour (or quarantined)."""

    listener: str
    batch_id: int
    pipeline: str
    file_name: str
    file_digest: str
    segment_index: int
    segment_count: int
    expected_rows: int
    hour: Hour | None
    rows: int
    quarantined: int


def load_log_entries(text: str, source: str) -> list[LoadLogEntry]:
    """Parse one load log file (JSON lines written by include/jobs/spot_listener.py)."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            missing = [k for k in _ENTRY_KEYS if k not in item]
            if missing:
                raise ValueError(f"missing keys {missing}")
            parts = [item.get(k) for k in ("y", "m", "d", "h")]
            hour = (
                None
                if any(p is None for p in parts)
                else (str(parts[0]), str(parts[1]), str(parts[2]), str(parts[3]))
            )
            entries.append(
                LoadLogEntry(
                    listener=str(item["listener"]),
                    batch_id=int(item["batch_id"]),
                    pipeline=str(item["pipeline"]),
                    file_name=str(item["file_name"]),
                    file_digest=str(item["file_digest"]),
                    segment_index=int(item["segment_index"]),
                    segment_count=int(item.get("segment_count") or 1),
                    expected_rows=int(item.get("expected_rows") or 0),
                    hour=hour,
                    rows=int(item["rows"]),
                    quarantined=int(item.get("quarantined") or 0),
                )
            )
        except (ValueError, TypeError) as exc:
            raise LoadLogError(f"{source} line {number}: {exc}") from exc
    return entries


@dataclass(frozen=True)
class PublishedFile:
    """What the collect step says it published for one file (asset event extra or ledger)."""

    digest: str
    file_name: str
    rows: int


@dataclass
class FileReport:
    """One file's reconciliation."""

    digest: str
    file_name: str
    pipeline: str
    status: str  # complete | pending | mismatch
    segments_seen: int
    segment_count: int
    published_rows: int | None
    loaded_rows: int
    quarantined: int
    detail: str = ""


@dataclass
class HourReport:
    """One hour partition: Hive's count against the load log's sum."""

    hour: Hour
    hive_rows: int
    logged_rows: int

    @property
    def ok(self) -> bool:
        return self.hive_rows == self.logged_rows


@dataclass
class Reconciliation:
    """The whole report; :attr:`failed` and :attr:`pending` decide the task's outcome."""

    files: list[FileReport] = field(default_factory=list)
    hours: list[HourReport] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        problems = [
            f"{f.file_name} ({f.digest[:16]}): {f.detail}" for f in self.files if f.status == "mismatch"
        ]
        problems += [
            f"hour {'/'.join(h.hour)}: Hive has {h.hive_rows} rows, the load log {h.logged_rows}"
            for h in self.hours
            if not h.ok
        ]
        return problems

    @property
    def pending(self) -> list[str]:
        return [f"{f.file_name} ({f.digest[:16]}): {f.detail}" for f in self.files if f.status == "pending"]

    def summary(self) -> dict[str, Any]:
        """Counts for the task's return value (XCom) and the log."""
        return {
            "files": len(self.files),
            "complete": sum(f.status == "complete" for f in self.files),
            "pending": len(self.pending),
            "failed": len(self.failed),
            "rows": sum(f.loaded_rows for f in self.files),
            "quarantined": sum(f.quarantined for f in self.files),
            "hours": len(self.hours),
        }

    def text(self) -> str:
        """A table a person can read in the task log."""
        lines = [f"{'file':40} {'status':9} {'segments':>9} {'published':>10} {'loaded':>10} {'quarant.':>9}"]
        for f in self.files:
            published = "-" if f.published_rows is None else str(f.published_rows)
            lines.append(
                f"{f.file_name[:40]:40} {f.status:9} {f.segments_seen:>4}/{f.segment_count:<4} "
                f"{published:>10} {f.loaded_rows:>10} {f.quarantined:>9}"
            )
        for h in self.hours:
            mark = "ok" if h.ok else "MISMATCH"
            lines.append(
                f"hour {'/'.join(h.hour):20} hive {h.hive_rows:>10} load log {h.logged_rows:>10} {mark}"
            )
        return "\n".join(lines)


def reconcile(
    digests: Iterable[str],
    entries: Iterable[LoadLogEntry],
    published: Mapping[str, PublishedFile],
    hive_counts: Mapping[Hour, int],
) -> Reconciliation:
    """Reconcile the files ``digests`` (this run's) against every load log entry of the table.

    :param entries: the whole load log of the table (all listeners, all batches), so that a file loaded
        twice, and rows of other files in the same hours, are accounted for.
    :param published: rows published per digest; a file missing here is checked against the rows
        its segments announced (``expected_rows``).
    :param hive_counts: ``COUNT(*)`` per hour partition, for at least the hours these files touched;
        an hour missing here counts as 0 rows in Hive.
    """
    entries = list(entries)
    by_digest: dict[str, list[LoadLogEntry]] = defaultdict(list)
    logged_per_hour: dict[Hour, int] = defaultdict(int)
    for entry in entries:
        by_digest[entry.file_digest].append(entry)
        if entry.hour is not None:
            logged_per_hour[entry.hour] += entry.rows
    report = Reconciliation()
    hours: set[Hour] = set()
    for digest in sorted(set(digests)):
        report.files.append(_file_report(digest, by_digest.get(digest, []), published.get(digest)))
        hours.update(e.hour for e in by_digest.get(digest, []) if e.hour is not None and e.rows)
    for hour in sorted(hours):
        report.hours.append(HourReport(hour, int(hive_counts.get(hour, 0)), logged_per_hour[hour]))
    return report


def _file_report(digest: str, entries: list[LoadLogEntry], published: PublishedFile | None) -> FileReport:
    name = published.file_name if published else (entries[0].file_name if entries else digest[:16])
    pipeline = entries[0].pipeline if entries else ""
    loads: dict[int, set[tuple[str, int]]] = defaultdict(set)
    expected: dict[int, int] = {}
    segment_count = max((e.segment_count for e in entries), default=0)
    rows = quarantined = 0
    for entry in entries:
        loads[entry.segment_index].add((entry.listener, entry.batch_id))
        expected[entry.segment_index] = entry.expected_rows
        rows += entry.rows
        quarantined += entry.quarantined
    announced = published.rows if published else sum(expected.values())
    report = FileReport(
        digest=digest,
        file_name=name,
        pipeline=pipeline,
        status="complete",
        segments_seen=len(loads),
        segment_count=segment_count,
        published_rows=published.rows if published else None,
        loaded_rows=rows,
        quarantined=quarantined,
    )
    twice = sorted(i for i, batches in loads.items() if len(batches) > 1)
    if twice:
        report.status = "mismatch"
        report.detail = f"segment(s) {twice} loaded by more than one batch: {sorted(loads[twice[0]])}"
    elif not entries or len(loads) < segment_count:
        report.status = "pending"
        report.detail = f"{len(loads)} of {segment_count or '?'} segment(s) loaded so far"
    elif rows + quarantined != announced:
        report.status = "mismatch"
        report.detail = f"{rows} rows loaded + {quarantined} quarantined != {announced} published" + (
            "" if published else " (rows announced by its messages)"
        )
    return report
