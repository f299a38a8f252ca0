"""The reconcile step of ``spot_load_<type>``: gather the load log, the publisher's counts and Hive's.

The comparison itself is :func:`spot_operators.reconcile.reconcile` (pure); this module does the I/O:
the load log over WebHDFS (only batch files that are new or rewritten, the others from the local
:mod:`spot_operators.loadlog_cache`), the collect ledgers of the type's pipelines, ``COUNT(*)`` per
hour through HiveServer2, and the Asset events that triggered the run (the collect DAG's ``announce``
puts each file's digest and published rows in them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spot_operators.config import IngestConfig
from spot_operators.layout import hdfs_type_root
from spot_operators.ledger import ledger_path
from spot_operators.load import hive_count_sql
from spot_operators.loadlog_cache import CachedFile, LoadLogCache, load_log_cache_path
from spot_operators.reconcile import (
    Hour,
    LoadLogEntry,
    PublishedFile,
    Reconciliation,
    load_log_entries,
    reconcile,
)

log = logging.getLogger(__name__)

#: A cold read of many load log files logs its progress every this many files.
_PROGRESS_EVERY = 500


class ReconcilePending(RuntimeError):
    """Some files are not fully loaded yet (a retry may see them); nothing is wrong so far."""


class ReconcileMismatch(RuntimeError):
    """Rows were lost or duplicated: a person must look (the report says where)."""


def read_load_log(client: Any, folder: str, cache: LoadLogCache | None = None) -> list[LoadLogEntry]:
    """Every entry under ``<folder>/<listener>/batch-*.jsonl`` (an absent folder is an empty log).

    One LISTSTATUS per folder gives each file's ``modificationTime`` and ``length``; with a ``cache``,
    only files that are new or whose status changed (a replayed batch rewrites its file) are read, the
    others come from the cache, and the cache is then rewritten without the files that disappeared.
    A bad line raises :class:`LoadLogError` naming the file and the line (what was read before it is
    kept in the cache, so a retry does not read it again).
    """
    started = time.monotonic()
    if client.status(folder, strict=False) is None:
        return []
    cached = cache.load() if cache is not None else {}
    listed: list[tuple[str, int, int]] = []
    folders = 0
    for listener, status in sorted(client.list(folder, status=True), key=lambda item: item[0]):
        if status.get("type") != "DIRECTORY":
            continue
        folders += 1
        for name, file_status in sorted(client.list(f"{folder}/{listener}", status=True), key=lambda i: i[0]):
            if name.endswith(".jsonl") and file_status.get("type", "FILE") == "FILE":
                path = f"{folder}/{listener}/{name}"
                listed.append((path, int(file_status["modificationTime"]), int(file_status["length"])))
    to_read = [p for p, mtime, length in listed if not (p in cached and cached[p].matches(mtime, length))]
    log.info(
        "load log %s: %d file(s) listed in %d listener folder(s), %d to read, %d from the cache (%s)",
        folder,
        len(listed),
        folders,
        len(to_read),
        len(listed) - len(to_read),
        cache.path if cache is not None else "no cache",
    )
    files: dict[str, CachedFile] = {}
    read = 0
    try:
        for path, mtime, length in listed:
            hit = cached.get(path)
            if hit is not None and hit.matches(mtime, length):
                files[path] = hit
                continue
            with client.read(path, encoding="utf-8") as reader:
                entries = load_log_entries(reader.read(), path)
            # The status listed before the read: if the file changed since, the next run re-reads it.
            files[path] = CachedFile(mtime, length, tuple(entries))
            read += 1
            if read % _PROGRESS_EVERY == 0:
                log.info("load log %s: read %d of %d file(s)", folder, read, len(to_read))
    except Exception:
        if cache is not None and read:
            cache.save({**cached, **files})
        raise
    if cache is not None and (read or set(cached) != set(files)):
        cache.save(files)
    log.info(
        "load log %s: %d file(s) listed, %d read, %d served from the cache, %d dropped from it, %.1fs",
        folder,
        len(listed),
        read,
        len(listed) - read,
        len(set(cached) - set(files)),
        time.monotonic() - started,
    )
    return [entry for cached_file in files.values() for entry in cached_file.entries]


def load_log_of_type(config: IngestConfig, data_type: str, client: Any) -> list[LoadLogEntry]:
    """The whole load log of ``data_type`` (``<hdfs_app_path>/<type>/loadlog``), through its local cache."""
    cache_path = load_log_cache_path(config, data_type)
    return read_load_log(
        client,
        str(hdfs_type_root(config, data_type) / "loadlog"),
        LoadLogCache(cache_path) if cache_path is not None else None,
    )


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
    entries = load_log_of_type(config, data_type, hdfs_client)
    touched = sorted({e.hour for e in entries if e.file_digest in digests and e.hour is not None and e.rows})
    counts = hive_counts(hive_hook, config.dbname, data_type, touched) if touched else {}
    report = reconcile(digests, entries, published, counts)
    log.info("reconcile %s: %s\n%s", data_type, report.summary(), report.text())
    return report
