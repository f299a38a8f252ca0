"""Re-ingesting the HDFS originals of one hour (``spot_reprocess_<type>``), without duplicating rows.

The originals under ``<hdfs_app_path>/<type>/binary/YYYYMMDD/HH/`` are downloaded, dissected with the
same dissectors and published like collect does (:func:`spot_operators.collect.collect_file`, with the
original already in HDFS). Two rules keep Hive free of duplicates:

* an original whose rows are already on their way (the collect ledger of one of the type's pipelines
  shows it ``published``/``done``, by HDFS path or by digest) or already loaded (its digest is in the
  load log) is skipped unless ``force`` is set: the listener drops a repeated file only inside one
  micro-batch, so re-sending what was loaded would add its rows again;
* each original is one entry of the pipeline's *reprocess* ledger (``reprocess_ledger.sqlite3``, the
  collect ledger's model), keyed by its HDFS path (which holds the hour) and sha256: once ``done`` it is
  never published again for that hour, whatever reruns or backfills happen.

Airflow-free: the DAG passes in the clients.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spot_operators.collect import StoredOriginal, collect_file
from spot_operators.config import IngestConfig, PipelineConfig
from spot_operators.hdfs_store import HdfsClient
from spot_operators.layout import hdfs_type_root
from spot_operators.ledger import FileLedger, FileVersion, State, file_digest
from spot_operators.publish import Producer

log = logging.getLogger(__name__)

REPROCESS_LEDGER = "reprocess_ledger.sqlite3"


class ReprocessError(ValueError):
    """An original cannot be attributed to a pipeline (names the file and the candidates)."""


def hour_folder(config: IngestConfig, data_type: str, start: datetime) -> tuple[str, str, str]:
    """``(folder, YYYYMMDD, HH)`` of the data interval starting at ``start`` (UTC)."""
    t = start.astimezone(UTC)
    day, hour = t.strftime("%Y%m%d"), t.strftime("%H")
    return str(hdfs_type_root(config, data_type) / "binary" / day / hour), day, hour


@dataclass(frozen=True)
class CollectFacts:
    """What the type's collect ledgers know: HDFS originals and digests already published."""

    published_paths: dict[str, str]  # hdfs path -> pipeline
    published_digests: dict[str, str]  # file digest -> pipeline
    stored_paths: dict[str, str]  # hdfs path -> pipeline (any state)


def collect_facts(config: IngestConfig, data_type: str) -> CollectFacts:
    """Read every collect ledger of the type once."""
    published_paths: dict[str, str] = {}
    published_digests: dict[str, str] = {}
    stored_paths: dict[str, str] = {}
    for name, pipeline in config.pipelines_of_type(data_type).items():
        path = pipeline.local_staging / "ledger.sqlite3"
        if not path.exists():
            continue
        for record in FileLedger(path).records(pipeline=name):
            originals = [str(o) for o in record.details.get("originals") or []]
            for original in originals:
                stored_paths.setdefault(original, name)
            if record.reached in (State.PUBLISHED, State.DONE):
                published_digests[record.version.digest] = name
                for original in originals:
                    published_paths[original] = name
    return CollectFacts(published_paths, published_digests, stored_paths)


def owner_pipeline(
    config: IngestConfig, data_type: str, hdfs_path: str, facts: CollectFacts
) -> PipelineConfig:
    """The pipeline an original belongs to: the one whose ledger stored it, else the one whose
    ``supported_files`` match its name, else the type's only pipeline."""
    candidates = config.pipelines_of_type(data_type)
    known = facts.stored_paths.get(hdfs_path)
    if known in candidates:
        return candidates[known]
    name = posixpath.basename(hdfs_path)
    matching = [p for p in candidates.values() if p.matches(name) and p.message_format == "ingest"]
    if len(matching) >= 1:
        return matching[0]
    usable = [p for p in candidates.values() if p.message_format == "ingest"]
    if len(usable) == 1:
        return usable[0]
    raise ReprocessError(
        f"{hdfs_path}: no collect ledger stored it and no pipeline's supported_files match {name!r}; "
        f"candidates: {', '.join(candidates) or 'none'}"
    )


@dataclass
class ReprocessReport:
    """Counts of one hour's reprocess (task return value and log)."""

    hour: str
    folder: str
    originals: int = 0
    published: int = 0
    skipped_done: int = 0
    skipped_collected: int = 0
    skipped_loaded: int = 0
    rows: int = 0
    bytes: int = 0
    messages: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reprocess_hour(
    config: IngestConfig,
    data_type: str,
    start: datetime,
    *,
    owner: str,
    hdfs_factory: Callable[[], HdfsClient],
    producer_factory: Callable[[], Producer],
    loaded_digests: Callable[[], set[str]],
    force: bool = False,
) -> ReprocessReport:
    """Re-ingest the originals of the hour starting at ``start`` (see the module docstring)."""
    folder, day, hour = hour_folder(config, data_type, start)
    report = ReprocessReport(f"{day}/{hour}", folder)
    hdfs = hdfs_factory()
    status = hdfs.status(folder, strict=False)
    if status is None:
        log.info("no originals for %s/%s: %s does not exist", day, hour, folder)
        return report
    names = [n for n in sorted(hdfs.list(folder)) if not n.startswith((".", "_"))]  # type: ignore[attr-defined]
    facts = collect_facts(config, data_type)
    loaded: set[str] | None = None
    for name in names:
        hdfs_path = f"{folder}/{name}"
        info = hdfs.status(hdfs_path, strict=False) or {}
        if info.get("type") != "FILE":
            continue
        report.originals += 1
        pipeline = owner_pipeline(config, data_type, hdfs_path, facts)
        entry: dict[str, Any] = {
            "original": hdfs_path,
            "pipeline": pipeline.name,
            "bytes": int(info["length"]),
        }
        report.files.append(entry)
        if not force and hdfs_path in facts.published_paths:
            entry["status"] = "skipped: published by collect"
            report.skipped_collected += 1
            continue
        staging = pipeline.local_staging
        ledger = FileLedger(_ledger_path(staging))
        local = staging / "reprocess" / day / hour / name
        previous = ledger.state_of_path(str(local.absolute()), pipeline.name)
        mtime_ns = int(info.get("modificationTime", 0)) * 1_000_000
        if (
            previous is not None
            and previous.state is State.DONE
            and previous.version.size == int(info["length"])
            and previous.version.mtime_ns == mtime_ns
        ):
            entry["status"] = "skipped: already reprocessed"
            report.skipped_done += 1
            continue
        local.parent.mkdir(parents=True, exist_ok=True)
        _download(hdfs, hdfs_path, local, mtime_ns)
        digest = file_digest(local)
        entry["sha256"] = digest
        if not force:
            reason = ""
            if digest in facts.published_digests:
                reason = "skipped: same bytes published by collect"
                report.skipped_collected += 1
            else:
                loaded = loaded if loaded is not None else loaded_digests()
                if digest in loaded:
                    reason = "skipped: already loaded (load log)"
                    report.skipped_loaded += 1
            if reason:
                entry["status"] = reason
                local.unlink(missing_ok=True)
                continue
        if ledger.is_done(FileVersion.from_path(pipeline.name, local)):
            entry["status"] = "skipped: already reprocessed"
            report.skipped_done += 1
            local.unlink(missing_ok=True)
            continue
        result = collect_file(
            local,
            config=config,
            pipeline=pipeline.model_copy(update={"post_ingest": "delete"}),
            ledger=ledger,
            owner=owner,
            hdfs_factory=lambda: hdfs,
            producer_factory=producer_factory,
            stored_original=StoredOriginal(hdfs_path, day, hour),
        )
        entry.update(status=result.status, rows=result.rows, messages=result.messages, route=result.route)
        if result.status == "collected":
            report.published += 1
            report.rows += result.rows
            report.bytes += result.csv_bytes
            report.messages += result.messages
        else:
            report.skipped_done += 1
    log.info(
        "hour %s: %d original(s), %d re-published (%d rows, %d messages), %d skipped as already "
        "reprocessed, %d as published by collect, %d as already loaded",
        report.hour,
        report.originals,
        report.published,
        report.rows,
        report.messages,
        report.skipped_done,
        report.skipped_collected,
        report.skipped_loaded,
    )
    return report


def _ledger_path(staging: Path) -> Path:
    staging.mkdir(parents=True, exist_ok=True)
    return staging / REPROCESS_LEDGER


def _download(hdfs: HdfsClient, hdfs_path: str, local: Path, mtime_ns: int) -> None:
    """Copy an original down (temporary name, then rename) with HDFS's mtime, so the ledger identity
    of the copy is stable across runs."""
    temporary = local.with_name(f".{local.name}.part")
    with hdfs.read(hdfs_path) as reader, temporary.open("wb") as out:  # type: ignore[attr-defined]
        while chunk := reader.read(1 << 20):
            out.write(chunk)
    os.utime(temporary, ns=(mtime_ns, mtime_ns))
    temporary.replace(local)
