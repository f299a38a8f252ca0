"""Replaying undelivered Kafka segments kept under ``<local_staging>/failed/`` (see :mod:`publish`).

Each folder ``failed/<file>.<digest16>/`` holds the segments of one file that Kafka did not
acknowledge, as encoded Avro (``segment-NNNNN.avro``) with their metadata (``.json``: topic, key,
headers). A replay re-sends every segment of a folder with the idempotent producer, checks every
delivery report, and only then removes the folder: first renamed to ``.delivered-...`` (one atomic
step right after the acknowledgement, so a crash cannot leave it looking pending), then deleted.

A folder whose file was later published in full by collect (the collect ledger holds the same digest
and file name as ``published`` or ``done``) is *superseded*: collect removes such folders itself, but
one may survive a crash between the publish and the removal. Sending it again would duplicate the
file's rows, so it is removed without sending.

Airflow-free: the DAG passes in the producer factory.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spot_operators.config import IngestConfig, PipelineConfig
from spot_operators.envelope import IngestMessage, decode_message
from spot_operators.ledger import FileLedger, State
from spot_operators.publish import Producer, PublishError, publish_messages

log = logging.getLogger(__name__)

DELIVERED_PREFIX = ".delivered-"


class SegmentError(ValueError):
    """A kept segment cannot be read back (names the file and why); it is left where it is."""


@dataclass(frozen=True)
class KeptFile:
    """The kept segments of one file: where, for which topic, and the messages themselves."""

    folder: Path
    topic: str
    pipeline: str
    file_name: str
    digest: str
    messages: tuple[IngestMessage, ...]

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("segment-*.avro"))


@dataclass
class ReplayReport:
    """Counts of one replay pass (returned to Airflow and shown in the log)."""

    sent_files: int = 0
    sent_segments: int = 0
    sent_bytes: int = 0
    superseded: int = 0
    pending: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent_files": self.sent_files,
            "sent_segments": self.sent_segments,
            "sent_bytes": self.sent_bytes,
            "superseded": self.superseded,
            "pending": dict(self.pending),
            "pending_total": sum(self.pending.values()),
            "errors": list(self.errors),
        }


def failed_dir(pipeline: PipelineConfig) -> Path:
    """``<local_staging>/failed``."""
    return pipeline.local_staging / "failed"


def kept_folders(folder: Path) -> list[Path]:
    """Folders under ``folder`` that hold kept segments (hidden and delivered ones excluded)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and any(p.glob("segment-*.avro"))
    )


def _segment_count(folder: Path) -> int:
    return sum(1 for _ in folder.glob("segment-*.avro"))


def pending_failed_segments(config: IngestConfig) -> dict[str, int]:
    """Segments waiting for replay, per pipeline (every configured pipeline present, zeros included).

    Cheap (directory listings only), for the replay DAG's log and for pages that show the backlog.
    Pipelines sharing a staging folder are told apart by each segment's metadata.
    """
    counts = {name: 0 for name in config.pipelines}
    seen: set[Path] = set()
    for name, pipeline in config.pipelines.items():
        base = failed_dir(pipeline).resolve()
        if base in seen:
            continue
        seen.add(base)
        for folder in kept_folders(base):
            for meta in folder.glob("segment-*.json"):
                owner = name
                try:
                    owner = str(json.loads(meta.read_text(encoding="utf-8")).get("pipeline") or name)
                except (OSError, ValueError):
                    pass
                if meta.with_suffix(".avro").exists():
                    counts[owner if owner in counts else name] += 1
    return counts


def read_kept_file(folder: Path) -> KeptFile:
    """Every kept segment of ``folder`` with its metadata; raises :class:`SegmentError` naming the file."""
    messages: list[IngestMessage] = []
    topic = pipeline = ""
    for data in sorted(folder.glob("segment-*.avro")):
        meta_path = data.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SegmentError(f"{data}: its metadata {meta_path.name} is missing") from None
        except (OSError, ValueError) as exc:
            raise SegmentError(f"{meta_path}: unreadable metadata: {exc}") from None
        try:
            message = decode_message(data.read_bytes())
        except ValueError as exc:
            raise SegmentError(f"{data}: {exc}") from None
        if meta.get("key") != message.file_digest:
            raise SegmentError(f"{data}: metadata key {meta.get('key')!r} differs from the message's digest")
        if topic and meta.get("topic") != topic:
            raise SegmentError(f"{data}: topic {meta.get('topic')!r} differs from the folder's {topic!r}")
        topic, pipeline = str(meta.get("topic") or ""), str(meta.get("pipeline") or message.pipeline)
        messages.append(message)
    if not messages:
        raise SegmentError(f"{folder}: no segment-NNNNN.avro in it")
    if not topic:
        raise SegmentError(f"{folder}: its metadata names no topic")
    first = messages[0]
    return KeptFile(folder, topic, pipeline, first.file_name, first.file_digest, tuple(messages))


def is_superseded(kept: KeptFile, ledger: FileLedger | None) -> bool:
    """True when the collect ledger shows the same file (digest and name) published in full later."""
    if ledger is None:
        return False
    for record in ledger.records(pipeline=kept.pipeline):
        if record.version.digest != kept.digest or record.reached not in (State.PUBLISHED, State.DONE):
            continue
        if (
            Path(record.version.path).name == kept.file_name
            or _text_name(record.version.path) == kept.file_name
        ):
            return True
    return False


def _text_name(path: str) -> str:
    from spot_operators.detection import path_text

    return path_text(os.path.basename(path))


def remove_folder(folder: Path) -> None:
    """Rename, then delete: after the rename the folder no longer counts as pending."""
    hidden = folder.with_name(DELIVERED_PREFIX + folder.name)
    if hidden.exists():
        shutil.rmtree(hidden)
    folder.rename(hidden)
    shutil.rmtree(hidden)


def sweep_delivered(folder: Path) -> int:
    """Remove ``.delivered-*`` leftovers of a crash between the rename and the delete."""
    removed = 0
    if folder.is_dir():
        for leftover in folder.glob(DELIVERED_PREFIX + "*"):
            shutil.rmtree(leftover, ignore_errors=True)
            removed += 1
    return removed


def send_kept_file(kept: KeptFile, producer: Producer, flush_timeout: float = 120.0) -> int:
    """Send the kept segments as they are (same bytes, key, headers), prove delivery, remove the folder.

    Raises :class:`PublishError` when a segment is not acknowledged (it stays kept). Returns the bytes sent.
    """
    report = publish_messages(
        producer, kept.topic, list(kept.messages), failed_dir=kept.folder.parent, flush_timeout=flush_timeout
    )
    remove_folder(kept.folder)
    return report.bytes


def replay_pipeline(
    pipeline: PipelineConfig,
    producer_factory: Callable[[], Producer],
    report: ReplayReport,
    flush_timeout: float = 120.0,
) -> None:
    """Replay every kept file of one pipeline into ``report`` (errors are collected, not raised)."""
    base = failed_dir(pipeline)
    sweep_delivered(base)
    ledger_file = pipeline.local_staging / "ledger.sqlite3"
    ledger = FileLedger(ledger_file) if ledger_file.exists() else None
    producer: Producer | None = None
    for folder in kept_folders(base):
        try:
            kept = read_kept_file(folder)
        except SegmentError as exc:
            report.errors.append(str(exc))
            log.error("cannot replay %s: %s", folder, exc)
            continue
        if kept.pipeline != pipeline.name:
            continue  # another pipeline sharing this staging folder replays it
        if is_superseded(kept, ledger):
            remove_folder(folder)
            report.superseded += 1
            log.info("removed %s without sending: %s was published in full later", folder, kept.file_name)
            continue
        producer = producer or producer_factory()
        try:
            sent = send_kept_file(kept, producer, flush_timeout)
        except PublishError as exc:
            report.errors.append(str(exc))
            log.error("%s", exc)
            continue
        report.sent_files += 1
        report.sent_segments += len(kept.messages)
        report.sent_bytes += sent
        log.info("replayed %d segment(s) of %s to %s", len(kept.messages), kept.file_name, kept.topic)
