"""Running a backfill with real clients (passed in, no Airflow here): count, publish or stage.

The pure decisions (which files, which rows, which keys) are in :mod:`spot_operators.backfill`; this
module reads the files, talks to the backfill ledger, HDFS and Kafka, and keeps the counts the task
logs show. Order per file: claim in the ledger -> send (Kafka) or stage (Hive) -> ``done`` only after
Kafka acknowledged every message or Hive reported the load, so a failure leaves the file claimable and
a success is never repeated.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spot_operators.backfill import (
    BACKFILL_LEDGER,
    SourceItem,
    Target,
    TimeWindow,
    backfill_version,
    hive_stage_folder,
    kafka_stage_base,
    run_key,
    select_rows,
)
from spot_operators.config import IngestConfig, PipelineConfig
from spot_operators.envelope import IngestMessage, csv_text
from spot_operators.hdfs_store import HdfsClient, store_verified
from spot_operators.ledger import FileLedger, FileVersion, State
from spot_operators.publish import Producer, failed_segment_paths, publish_messages
from spot_operators.replay import KeptFile, read_kept_file, remove_folder, send_kept_file
from spot_operators.rows import Row
from spot_operators.segments import RowTooLargeError, inline_messages, should_inline
from spot_operators.staged_csv import stage_pointer_messages, write_csv_pieces

log = logging.getLogger(__name__)

#: The only writer is spot_backfill (max_active_runs=1): a crashed run's claim is taken over at once.
OWNER = "spot_backfill"
LEASE_SECONDS = 6 * 3600.0


@dataclass
class BackfillReport:
    """What a backfill did or, in a dry run, would do."""

    pipeline: str
    target: str
    window: str
    dry_run: bool
    files: int = 0
    files_done: int = 0
    skipped_already_done: int = 0
    rows: int = 0
    rows_filtered_out: int = 0
    rows_untimed: int = 0
    bytes: int = 0
    messages: int = 0
    segments: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    hive_folder: str = ""
    versions: list[list[Any]] = field(default_factory=list)  # ledger keys to mark done after a Hive load
    kept_folders: list[str] = field(default_factory=list)  # failed-segment folders to remove afterwards

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        verb = "would send" if self.dry_run else "sent"
        return (
            f"backfill {self.pipeline} -> {self.target} [{self.window}]: {self.files} file(s), "
            f"{verb} {self.rows} row(s) / {self.segments} kept segment(s), {self.bytes} bytes, "
            f"{self.skipped_already_done} skipped as already done, {self.rows_filtered_out} rows outside "
            f"the window, {self.rows_untimed} rows without a usable time"
        )


def ledger_of(pipeline: PipelineConfig, create: bool = True) -> FileLedger | None:
    """The pipeline's backfill ledger; ``None`` when it does not exist and ``create`` is False."""
    path = pipeline.local_staging / BACKFILL_LEDGER
    if not create and not path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLedger(path)


def read_item(item: SourceItem, hdfs: HdfsClient | None) -> bytes:
    """The bytes of a CSV item (local or HDFS)."""
    if item.location == "local":
        return Path(item.path).read_bytes()
    if hdfs is None:
        raise ValueError(f"{item.path} is in HDFS but no HDFS client was given")
    with hdfs.read(item.path) as reader:  # type: ignore[attr-defined]
        data: bytes = reader.read()
    return data


def _kept_digest(kept: KeptFile) -> str:
    sha = hashlib.sha256()
    for data in sorted(kept.folder.glob("segment-*.avro")):
        sha.update(data.read_bytes())
    return sha.hexdigest()


def _decode(data: bytes, item: SourceItem) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{item.path}: not UTF-8 CSV (byte {exc.start}): {exc.reason}") from None


def _segment_text(kept: KeptFile, hdfs: HdfsClient | None) -> str:
    """The CSV rows kept segments carry (inline rows, or the staged CSV a pointer names)."""
    parts: list[str] = []
    for message in kept.messages:
        if message.kind == "INLINE":
            parts.append(csv_text(message.rows))
        elif message.pointer is not None:
            if hdfs is None:
                raise ValueError(f"{kept.folder}: a pointer segment needs an HDFS client")
            with hdfs.read(message.pointer.hdfs_path) as reader:  # type: ignore[attr-defined]
                parts.append(reader.read().decode("utf-8"))
    return "".join(parts)


def run_backfill(
    config: IngestConfig,
    pipeline: PipelineConfig,
    items: list[SourceItem],
    *,
    target: Target,
    window: TimeWindow,
    dry_run: bool,
    hdfs_factory: Callable[[], HdfsClient] | None,
    producer_factory: Callable[[], Producer] | None,
) -> BackfillReport:
    """Kafka target: publish every not-yet-done file. Hive target: stage the rows into one folder and
    return it (the DAG loads it, then calls :func:`mark_hive_done`). Dry run: counts only, no writes."""
    report = BackfillReport(pipeline.name, target, window.label(), dry_run)
    if window.active and any(i.kind == "segments" for i in items) and target == "kafka":
        names = ", ".join(i.path for i in items if i.kind == "segments")
        raise ValueError(
            f"since/until cannot apply to failed segments re-sent as they are ({names}); "
            "leave since/until empty or select staged CSV"
        )
    ledger = ledger_of(pipeline, create=not dry_run)
    hdfs = hdfs_factory() if hdfs_factory and any(i.location == "hdfs" for i in items) else None
    producer: Producer | None = None
    staged: list[tuple[str, str]] = []  # (name, csv text) for the Hive target
    for item in items:
        report.files += 1
        kept: KeptFile | None = None
        if item.kind == "segments":
            kept = read_kept_file(Path(item.path))
            if kept.pipeline != pipeline.name:
                raise ValueError(
                    f"{item.path} holds segments of pipeline {kept.pipeline!r}, not {pipeline.name!r}"
                )
            source_digest = _kept_digest(kept)
        else:
            data = read_item(item, hdfs)
            source_digest = hashlib.sha256(data).hexdigest()
        version = backfill_version(pipeline.name, target, window, source_digest, item.size)
        if ledger is not None and ledger.is_done(version):
            report.skipped_already_done += 1
            log.info("%s: already backfilled to %s for %s; skipped", item.path, target, window.label())
            continue
        entry: dict[str, Any] = {"source": item.path, "kind": item.kind, "sha256": source_digest}
        if kept is not None and target == "kafka":
            entry.update(segments=len(kept.messages), bytes=kept.bytes)
            report.segments += len(kept.messages)
            report.bytes += kept.bytes
            report.items.append(entry)
            if dry_run:
                continue
            assert ledger is not None and producer_factory is not None
            if ledger.claim(version, OWNER, LEASE_SECONDS) is None:
                raise RuntimeError(f"{item.path} is being backfilled by another run")
            producer = producer or producer_factory()
            try:
                send_kept_file(kept, producer)
            except BaseException as exc:
                ledger.fail(version, OWNER, f"{type(exc).__name__}: {exc}"[:4000])
                raise
            _done(ledger, version, entry)
            report.files_done += 1
            report.messages += len(kept.messages)
            continue
        if kept is not None:
            text = _segment_text(kept, hdfs_factory() if hdfs_factory else None)
            report.kept_folders.append(item.path)
        else:
            text = _decode(data, item)
        selection = select_rows(pipeline.type, text, window)
        broken = selection.line_break_record() if target == "hive" else None
        if broken is not None:
            raise ValueError(
                f"{item.path}: record {broken} holds a line break inside a quoted field; Hive reads "
                "staged CSV one record per line and would split it, so nothing was staged for Hive: "
                "backfill this source with target=kafka (the listener reads such records)"
            )
        report.rows_filtered_out += selection.filtered_out
        report.rows_untimed += len(selection.untimed)
        if selection.untimed:
            log.warning(
                "%s: %d record(s) without a usable time left out (records %s)",
                item.path,
                len(selection.untimed),
                selection.untimed[:10],
            )
        entry.update(rows=selection.rows, bytes=selection.bytes, filtered_out=selection.filtered_out)
        report.rows += selection.rows
        report.bytes += selection.bytes
        report.items.append(entry)
        log.info(
            "%s: %d of %d rows selected (%d bytes)",
            item.path,
            selection.rows,
            selection.rows_in,
            selection.bytes,
        )
        if dry_run:
            continue
        assert ledger is not None
        if ledger.claim(version, OWNER, LEASE_SECONDS) is None:
            raise RuntimeError(f"{item.path} is being backfilled by another run")
        try:
            if target == "hive":
                if selection.rows:
                    staged.append((f"{item.name}.{source_digest[:12]}.csv", selection.text))
                ledger.advance(version, OWNER, State.STORED, entry)
                report.versions.append(_key(version))
                continue
            assert producer_factory is not None
            if selection.rows:
                producer = producer or producer_factory()
                assert hdfs_factory is not None
                report.messages += _publish_rows(config, pipeline, item, selection, producer, hdfs_factory)
        except BaseException as exc:
            ledger.fail(version, OWNER, f"{type(exc).__name__}: {exc}"[:4000])
            raise
        _done(ledger, version, entry)
        report.files_done += 1
    if target == "hive" and staged and not dry_run:
        assert hdfs_factory is not None
        report.hive_folder = _stage_for_hive(config, pipeline, report.versions, staged, hdfs_factory())
    log.info("%s", report.line())
    return report


def _key(version: FileVersion) -> list[Any]:
    return [version.pipeline, version.path, version.size, version.mtime_ns, version.digest]


def _done(ledger: FileLedger, version: FileVersion, entry: dict[str, Any]) -> None:
    record = ledger.get(version)
    state = record.state if record else None
    if state == State.CLAIMED:
        ledger.advance(version, OWNER, State.STORED, entry)
        state = State.STORED
    if state == State.STORED:
        ledger.advance(version, OWNER, State.PUBLISHED, {})
    ledger.advance(version, OWNER, State.DONE, {})


def _publish_rows(
    config: IngestConfig,
    pipeline: PipelineConfig,
    item: SourceItem,
    selection: Any,
    producer: Producer,
    hdfs_factory: Callable[[], HdfsClient],
) -> int:
    """Like collect: inline Avro under the inline limit, else an HDFS pointer; every delivery checked.

    The file digest is the sha256 of the rows sent, so a repeat carries the same key downstream.
    """
    digest = selection.digest()
    template = IngestMessage(
        kind="INLINE",
        pipeline=pipeline.name,
        data_type=pipeline.type,
        file_name=f"backfill-{item.name}",
        file_digest=digest,
        segment_index=0,
        segment_count=1,
    )
    messages: list[IngestMessage] = []
    if should_inline(selection.bytes, config.kafka.inline_limit_bytes):
        rows = [
            Row(tuple(_fields(line)), part, n)
            for n, (line, part) in enumerate(zip(selection.lines, selection.partitions, strict=True), 1)
        ]
        try:
            messages = inline_messages(
                rows,
                template=template,
                max_request_size=config.kafka.max_request_size,
                epoch_column=None if pipeline.type == "proxy" else 1,
            )
        except RowTooLargeError:
            messages = []
    if not messages:
        with tempfile.TemporaryDirectory(prefix="spot-backfill-") as tmp:
            records = zip((line + "\n" for line in selection.lines), selection.partitions, strict=True)
            pieces = write_csv_pieces(Path(tmp), records, config.kafka.staged_csv_max_bytes)
            staged_base = kafka_stage_base(config, pipeline.type, item.name, digest)
            messages = stage_pointer_messages(hdfs_factory(), pieces, template, staged_base)
    failed = pipeline.local_staging / "backfill" / "failed"
    report = publish_messages(
        producer, pipeline.topic or f"spot-{pipeline.name}", messages, failed_dir=failed
    )
    superseded = failed_segment_paths(failed, messages[0])[0].parent
    if superseded.exists():
        remove_folder(superseded)
    log.info("%s: %d message(s), %d bytes to %s", item.path, report.messages, report.bytes, report.topic)
    return report.messages


def _fields(line: str) -> list[str]:
    import csv
    import io

    return next(csv.reader(io.StringIO(line)))


def _stage_for_hive(
    config: IngestConfig,
    pipeline: PipelineConfig,
    versions: list[list[Any]],
    staged: list[tuple[str, str]],
    hdfs: HdfsClient,
) -> str:
    """Write the selected rows into a folder unique to this set of files (a retry reuses it)."""
    folder = hive_stage_folder(config, pipeline.type, run_key(FileVersion(*v) for v in versions))
    with tempfile.TemporaryDirectory(prefix="spot-backfill-") as tmp:
        for name, text in staged:
            local = Path(tmp) / name
            local.write_text(text, encoding="utf-8")
            store_verified(hdfs, local, f"{folder}/{name}")
    log.info("staged %d CSV file(s) for Hive in %s", len(staged), folder)
    return folder


def mark_hive_done(pipeline: PipelineConfig, versions: list[list[Any]], kept_folders: list[str]) -> int:
    """After the Hive load succeeded: mark the files done and remove replayed segment folders."""
    ledger = ledger_of(pipeline)
    assert ledger is not None
    for key in versions:
        version = FileVersion(*key)
        record = ledger.get(version)
        if record is None or record.state == State.DONE:
            continue
        if record.state != State.STORED or record.claimed_by != OWNER:
            ledger.claim(version, OWNER, LEASE_SECONDS)
            ledger.advance(version, OWNER, State.STORED, {})
        ledger.advance(version, OWNER, State.PUBLISHED, {})
        ledger.advance(version, OWNER, State.DONE, {})
    for folder in kept_folders:
        path = Path(folder)
        if path.exists():
            remove_folder(path)  # loaded into Hive: replaying them to Kafka too would duplicate rows
    return len(versions)
