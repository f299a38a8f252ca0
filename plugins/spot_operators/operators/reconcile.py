"""The reconcile step of ``spot_load_<type>``: gather the load log, the publisher's counts and Hive's.

The comparison itself is :func:`spot_operators.reconcile.reconcile` (pure); this module does the I/O:
the load log over WebHDFS, the collect ledgers of the type's pipelines, ``COUNT(*)`` per hour through
HiveServer2, and the Asset events that triggered the run (the collect DAG's ``announce`` puts each
file's digest and published rows in them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spot_operators.config import IngestConfig
from spot_operators.layout import hdfs_type_root
from spot_operators.ledger import ledger_path
from spot_operators.load import hive_count_sql
from spot_operators.reconcile import (
    Hour,
    LoadLogEntry,
    PublishedFile,
    Reconciliation,
    load_log_entries,
    reconcile,
)

log = logging.getLogger(__name__)


class ReconcilePending(RuntimeError):
    """Some files are not fully loaded yet (a retry may see them); nothing is wrong so far."""


class ReconcileMismatch(RuntimeError):
    """Rows were lost or duplicated: a person must look (the report says where)."""


def read_load_log(client: Any, folder: str) -> list[LoadLogEntry]:
    """Every entry under ``<folder>/<listener>/batch-*.jsonl`` (an absent folder is an empty log)."""
    if client.status(folder, strict=False) is None:
        return []
    entries: list[LoadLogEntry] = []
    for listener in sorted(client.list(folder)):
        for name in sorted(client.list(f"{folder}/{listener}")):
            if not name.endswith(".jsonl"):
                continue
            path = f"{folder}/{listener}/{name}"
            with client.read(path, encoding="utf-8") as reader:
                entries.extend(load_log_entries(reader.read(), path))
    return entries


def published_from_events(events: Iterable[dict[str, Any]]) -> dict[str, PublishedFile]:
    """Digest -> rows from the extras of the collect DAG's Asset events."""
    published: dict[str, PublishedFile] = {}
    for extra in events:
        for item in (extra or {}).get("published") or []:
            published[item["digest"]] = PublishedFile(item["digest"], item["file"], int(item["rows"]))
    return published


def published_from_ledgers(config: IngestConfig, data_type: str) -> dict[str, PublishedFile]:
    """Digest -> rows of every file the type's collect ledgers recorded as published or done."""
    from spot_operators.ledger import FileLedger

    published: dict[str, PublishedFile] = {}
    for pipeline in config.pipelines_of_type(data_type).values():
        path = ledger_path(pipeline.local_staging)
        if not path.exists():
            continue
        for record in FileLedger(path).records(pipeline=pipeline.name):
            rows = record.details.get("rows")
            if record.state.value in ("published", "done") and rows is not None:
                digest = record.version.digest
                published[digest] = PublishedFile(digest, Path(record.version.path).name, int(rows))
    return published


def hive_counts(hook: Any, database: str, data_type: str, hours: list[Hour]) -> dict[Hour, int]:
    """``COUNT(*)`` per hour partition through HiveServer2."""
    counts: dict[Hour, int] = {}
    for statement in hive_count_sql(database, data_type, hours):
        for y, m, d, h, n in hook.get_records(statement):
            counts[(str(y), str(m), str(d), str(h))] = int(n)
    return counts


def reconcile_load(
    config: IngestConfig,
    data_type: str,
    listener_results: Iterable[dict[str, Any] | None],
    event_extras: Iterable[dict[str, Any]],
    hdfs_client: Any,
    hive_hook: Any,
) -> Reconciliation:
    """Reconcile the files of this run (listener batches and announced files) and log the report."""
    results = [r for r in listener_results if r]
    extras = list(event_extras)
    digests = {d for r in results for d in (r.get("files") or {})}
    announced = published_from_events(extras)
    digests |= set(announced)
    published = {**published_from_ledgers(config, data_type), **announced}
    entries = read_load_log(hdfs_client, str(hdfs_type_root(config, data_type) / "loadlog"))
    touched = sorted({e.hour for e in entries if e.file_digest in digests and e.hour is not None and e.rows})
    counts = hive_counts(hive_hook, config.dbname, data_type, touched) if touched else {}
    report = reconcile(digests, entries, published, counts)
    log.info("reconcile %s: %s\n%s", data_type, report.summary(), report.text())
    return report
