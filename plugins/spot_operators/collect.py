"""Collecting one file, start to finish: dissect, keep the original in HDFS, route, publish, record.

The steps are ordered so that nothing is lost at any crash point: the ledger records each verified
step, the local original is touched only after HDFS holds a verified copy and Kafka acknowledged
every message, and a failure leaves the original where it was with the reason in the ledger.
Airflow-free: the operator passes in the HDFS client and the producer factory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spot_operators.config import IngestConfig, KafkaConfig, PipelineConfig
from spot_operators.detection import path_text
from spot_operators.envelope import IngestMessage
from spot_operators.hdfs_store import HdfsClient, store_verified
from spot_operators.layout import hdfs_type_root
from spot_operators.ledger import FileLedger, FileRecord, FileVersion, State
from spot_operators.publish import Producer, failed_segment_paths, publish_messages
from spot_operators.rows import HourPartition, QuarantinedLine, Row
from spot_operators.segments import RowTooLargeError, csv_line, inline_messages, should_inline
from spot_operators.staged_csv import CsvPiece, CsvPieceWriter, stage_pointer_messages

log = logging.getLogger(__name__)

#: nfcapd.YYYYMMDDhhmm[ss] and similar: the hour Spot filed originals under.
_NAME_TIMESTAMP = re.compile(
    r"(?<![0-9])(20[0-9]{2})([01][0-9])([0-3][0-9])([0-2][0-9])([0-5][0-9])(?:[0-5][0-9])?(?![0-9])"
)
#: A claim older than this (a crashed worker) may be taken over by another run.
LEASE_SECONDS = 3600.0


@dataclass
class CollectResult:
    """What happened to one file; returned to Airflow (XCom) and shown in the task log."""

    file: str
    status: str  # collected | skipped
    reason: str = ""
    digest: str = ""
    rows: int = 0
    quarantined: int = 0
    csv_bytes: int = 0
    route: str = ""  # inline | pointer | none
    messages: int = 0
    topic: str = ""
    originals: list[str] = field(default_factory=list)
    staged_csv: list[str] = field(default_factory=list)
    quarantine_file: str = ""
    partitions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def original_hour(file_name: str, first_row: HourPartition | None, mtime_ns: int) -> tuple[str, str]:
    """``(YYYYMMDD, HH)`` for the original's HDFS folder: from the name, else the first row, else mtime."""
    match = _NAME_TIMESTAMP.search(file_name)
    if match:
        year, month, day, hour, _ = match.groups()
        try:
            datetime(int(year), int(month), int(day), int(hour), tzinfo=UTC)
            return f"{year}{month}{day}", hour
        except ValueError:
            pass
    if first_row is not None:
        return f"{first_row.y:04d}{first_row.m:02d}{first_row.d:02d}", f"{first_row.h:02d}"
    t = datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC)
    return t.strftime("%Y%m%d"), t.strftime("%H")


@dataclass(frozen=True)
class StoredOriginal:
    """An original already verified in HDFS under ``binary/<day>/<hour>/`` (re-ingest from HDFS)."""

    hdfs_path: str
    day: str
    hour: str


@dataclass
class _Dissected:
    pieces: list[CsvPiece]  # the CSV, cut between records into files of bounded size
    csv_bytes: int
    rows: int
    quarantined: int
    first_partition: HourPartition | None
    inline_rows: list[Row] | None  # None once the CSV grew past the inline limit
    partitions: set[HourPartition]
    originals: list[Path]  # what to store in HDFS: the file, or the dns chunks


def _dissect(
    pipeline: PipelineConfig,
    path: Path,
    work: Path,
    limits: KafkaConfig,
    quarantine_path: Path,
    timeout: float,
) -> _Dissected:
    """Run the pipeline's dissector into ``work/csv/rows-NNNNN.csv`` (+ quarantine JSON lines)."""
    originals = [path]
    items: Iterator[Row | QuarantinedLine]
    if pipeline.type == "flow":
        from spot_operators.dissectors.flow import dissect_flow_file

        items = dissect_flow_file(path, timeout=timeout, extra_args=pipeline.process_args)
    elif pipeline.type == "dns":
        from spot_operators.dissectors.dns import dissect_dns_chunks, split_pcap

        chunks = split_pcap(path, work / "chunks", pipeline.pkt_num, timeout=timeout)
        originals = list(chunks)
        items = dissect_dns_chunks(chunks, timeout=timeout, origin=path)
    else:
        from spot_operators.dissectors.proxy import dissect_proxy_file

        items = dissect_proxy_file(path)

    pieces = CsvPieceWriter(work / "csv", limits.staged_csv_max_bytes)
    result = _Dissected(pieces.pieces, 0, 0, 0, None, [], set(), originals)
    with pieces, quarantine_path.open("w", encoding="utf-8") as bad:
        for item in items:
            if isinstance(item, QuarantinedLine):
                result.quarantined += 1
                bad.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
                continue
            result.csv_bytes += pieces.write(csv_line(item.fields) + "\n", item.partition)
            result.rows += 1
            result.partitions.add(item.partition)
            if result.first_partition is None:
                result.first_partition = item.partition
            if result.inline_rows is not None:
                if result.csv_bytes < limits.inline_limit_bytes:
                    result.inline_rows.append(item)
                else:
                    result.inline_rows = None
    return result


def _finish_original(pipeline: PipelineConfig, path: Path) -> str:
    """Apply ``post_ingest`` to the local original (only ever called after verification)."""
    if pipeline.post_ingest == "delete":
        path.unlink()
        return "deleted"
    if pipeline.post_ingest == "move":
        target = pipeline.done_folder / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target = target.with_name(f"{path.name}.{datetime.now(tz=UTC):%Y%m%dT%H%M%S%f}")
        shutil.move(path, target)
        return f"moved to {target}"
    return "kept"


def collect_file(
    path: Path,
    *,
    config: IngestConfig,
    pipeline: PipelineConfig,
    ledger: FileLedger,
    owner: str,
    hdfs_factory: Callable[[], HdfsClient],
    producer_factory: Callable[[], Producer],
    tool_timeout: float = 1800.0,
    stored_original: StoredOriginal | None = None,
) -> CollectResult:
    """Ingest one collector file exactly once (see the module docstring for the order of steps).

    ``stored_original`` is for re-ingesting an original that is already in HDFS (the reprocess DAG):
    it is not stored again, and its hour folder is the one it was filed under.
    """
    version = FileVersion.from_path(pipeline.name, path)
    claim = ledger.claim(version, owner, LEASE_SECONDS)
    if claim is None:
        record = ledger.get(version)
        state = record.state if record else "unknown"
        log.info("%s is %s in the ledger; nothing to do", path, state)
        return CollectResult(path_text(str(path)), "skipped", f"ledger state {state}", digest=version.digest)
    log.info("claimed %s (attempt %d, digest %s)", path, claim.attempt, version.digest[:16])
    try:
        earlier = None if stored_original else identical_done(ledger, pipeline.name, version)
        if earlier is not None:
            return _settle_duplicate(path, version, earlier, pipeline, ledger, owner)
        return _collect_claimed(
            path,
            version,
            config,
            pipeline,
            ledger,
            owner,
            hdfs_factory,
            producer_factory,
            tool_timeout,
            stored_original,
        )
    except BaseException as exc:
        ledger.fail(version, owner, f"{type(exc).__name__}: {exc}"[:4000])
        raise


IDENTICAL_WAIT_SECONDS = 600.0
"""How long a file waits for another version of the same bytes that is being collected right now."""


def identical_done(
    ledger: FileLedger,
    pipeline: str,
    version: FileVersion,
    wait: float = IDENTICAL_WAIT_SECONDS,
    poll: float = 2.0,
) -> FileRecord | None:
    """The done record of another file with the same bytes, waiting while one is still in flight.

    Two copies of one file collected at once (mapped tasks run in parallel) must not both publish: the
    later one waits until the other is done (then it is a duplicate) or failed, or until ``wait``
    passes (a crashed claim whose lease has not expired yet); then it collects the file itself.
    """
    deadline = time.monotonic() + wait
    while True:
        others = ledger.with_digest(pipeline, version.digest, other_than=version)
        done = next((r for r in others if r.state is State.DONE), None)
        if done is not None:
            return done
        busy = [r for r in others if r.state in (State.CLAIMED, State.STORED, State.PUBLISHED)]
        if not busy:
            return None
        if time.monotonic() >= deadline:
            log.warning(
                "%s: %s with the same bytes is still %s after %.0fs; collecting this copy too",
                version.path,
                busy[0].version.path,
                busy[0].state,
                wait,
            )
            return None
        log.info("%s: waiting for %s (same bytes, %s)", version.path, busy[0].version.path, busy[0].state)
        time.sleep(poll)


def _settle_duplicate(
    path: Path,
    version: FileVersion,
    earlier: FileRecord,
    pipeline: PipelineConfig,
    ledger: FileLedger,
    owner: str,
) -> CollectResult:
    """Record a new version of content already ingested as done, without publishing its rows again.

    Its original is in HDFS already (identical bytes); ``post_ingest`` still applies to the local copy.
    The record carries ``duplicate_of`` and no ``rows``, so counts and reconciliation see the rows once.
    """
    first = path_text(earlier.version.path)
    details = {"duplicate_of": first}
    ledger.advance(version, owner, State.STORED, details)
    ledger.advance(version, owner, State.PUBLISHED, details)
    outcome = _finish_original(pipeline, path)
    ledger.advance(version, owner, State.DONE, {**details, "local_original": outcome})
    reason = (
        f"identical content (sha256 {version.digest[:16]}) already ingested as {first}; original {outcome}"
    )
    log.warning("%s: %s", path, reason)
    return CollectResult(path_text(str(path)), "skipped", reason, digest=version.digest)


def _collect_claimed(
    path: Path,
    version: FileVersion,
    config: IngestConfig,
    pipeline: PipelineConfig,
    ledger: FileLedger,
    owner: str,
    hdfs_factory: Callable[[], HdfsClient],
    producer_factory: Callable[[], Producer],
    tool_timeout: float,
    stored_original: StoredOriginal | None = None,
) -> CollectResult:
    # Clients are made after the claim, so an unreachable HDFS or broker is recorded in the ledger.
    hdfs = hdfs_factory()
    digest = version.digest
    staging = pipeline.local_staging
    # Per file version: identical bytes under two names must not share a work folder.
    work = (
        staging
        / "work"
        / f"{digest[:32]}-{hashlib.sha1(str(path).encode(errors='surrogateescape')).hexdigest()[:12]}"
    )
    if work.exists():
        shutil.rmtree(work)  # leftovers of a crashed attempt: dissect again from the original
    work.mkdir(parents=True)
    quarantine_dir = staging / "quarantine"
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    quarantine_work = work / "quarantine.jsonl"

    dissected = _dissect(pipeline, path, work, config.kafka, quarantine_work, tool_timeout)
    result = CollectResult(
        path_text(str(path)),
        "collected",
        digest=digest,
        rows=dissected.rows,
        quarantined=dissected.quarantined,
        csv_bytes=dissected.csv_bytes,
        topic=pipeline.topic or f"spot-{pipeline.name}",
        partitions=sorted(p.folder(zero_padded=pipeline.type == "proxy") for p in dissected.partitions),
    )
    if dissected.quarantined:
        kept = quarantine_dir / f"{path.name}.{digest[:12]}.jsonl"
        shutil.copyfile(quarantine_work, kept)
        result.quarantine_file = str(kept)
        log.warning("%s: %d lines quarantined with their reasons in %s", path, dissected.quarantined, kept)
    log.info("%s: %d rows, %d CSV bytes", path, dissected.rows, dissected.csv_bytes)

    # 1. The original (dns: its chunks) in HDFS, verified.
    type_root = hdfs_type_root(config, pipeline.type)
    if stored_original is not None:
        day, hour = stored_original.day, stored_original.hour
        result.originals = [stored_original.hdfs_path]
    else:
        day, hour = original_hour(path.name, dissected.first_partition, version.mtime_ns)
        binary_dir = type_root / "binary" / day / hour
        stored = [
            store_verified(hdfs, original, str(binary_dir / path_text(original.name)))
            for original in dissected.originals
        ]
        result.originals = [copy.hdfs_path for copy in stored]
    ledger.advance(version, owner, State.STORED, {"originals": result.originals})

    # 2. Route by size and publish.
    template = IngestMessage(
        kind="INLINE",
        pipeline=pipeline.name,
        data_type=pipeline.type,
        file_name=path_text(path.name),
        file_digest=digest,
        segment_index=0,
        segment_count=1,
    )
    messages: list[IngestMessage] = []
    epoch_column = None if pipeline.type == "proxy" else 1
    if dissected.rows == 0:
        result.route = "none"
    elif dissected.inline_rows is not None and should_inline(
        dissected.csv_bytes, config.kafka.inline_limit_bytes
    ):
        try:
            messages = inline_messages(
                dissected.inline_rows,
                template=template,
                max_request_size=config.kafka.max_request_size,
                epoch_column=epoch_column,
            )
            result.route = "inline"
        except RowTooLargeError:
            log.info("%s has a row larger than one message; sending it as an HDFS pointer", path)
    if dissected.rows and not messages:
        staged_base = str(type_root / "stage" / day / hour / f"{path_text(path.name)}.{digest[:12]}")
        messages = stage_pointer_messages(hdfs, dissected.pieces, template, staged_base)
        if len(messages) > 1:
            log.info(
                "%s: %d CSV bytes staged as %d files of at most %d bytes",
                path,
                dissected.csv_bytes,
                len(messages),
                config.kafka.staged_csv_max_bytes,
            )
        result.route = "pointer"
        result.staged_csv = [m.pointer.hdfs_path for m in messages if m.pointer is not None]
    if messages:
        failed_dir = staging / "failed"
        report = publish_messages(producer_factory(), result.topic, messages, failed_dir=failed_dir)
        result.messages = report.messages
        # Segments kept by an earlier failed attempt are superseded by this acknowledged publish;
        # replaying them later would duplicate the file's rows.
        superseded = failed_segment_paths(failed_dir, messages[0])[0].parent
        if superseded.exists():
            shutil.rmtree(superseded)
            log.info("removed %s: its segments were delivered by this attempt", superseded)
    ledger.advance(
        version,
        owner,
        State.PUBLISHED,
        {"topic": result.topic, "messages": result.messages, "route": result.route, "rows": result.rows},
    )

    # 3. Only now touch the local original.
    outcome = _finish_original(pipeline, path)
    ledger.advance(version, owner, State.DONE, {"local_original": outcome, "quarantined": result.quarantined})
    shutil.rmtree(work, ignore_errors=True)
    log.info(
        "%s collected: %s, %d messages to %s; original %s",
        path,
        result.route,
        result.messages,
        result.topic,
        outcome,
    )
    return result
