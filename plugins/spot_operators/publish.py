"""Publishing a file's messages to Kafka so that none is lost: every delivery report is checked.

Spot committed before processing and lost files on a crash. Here a file counts as published only
when the broker acknowledged every segment (acks=all, idempotent producer). Whatever was not
acknowledged is written under ``<local_staging>/failed/`` with its metadata, for replay, and the task
fails loudly; nothing is deleted.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from spot_operators.envelope import IngestMessage, encode_message

log = logging.getLogger(__name__)


class Producer(Protocol):
    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...


class PublishError(RuntimeError):
    """Some segments were not acknowledged; they are kept under ``failed_dir`` for replay."""


@dataclass(frozen=True)
class PublishReport:
    topic: str
    messages: int
    bytes: int
    offsets: tuple[tuple[int, int], ...]  # (partition, offset) per message, in order


def failed_segment_paths(failed_dir: Path, message: IngestMessage) -> tuple[Path, Path]:
    """Where an undelivered segment and its metadata go: ``failed/<file>.<digest16>/segment-NNNNN.*``.

    The file name is part of the folder so two files with identical bytes never share one.
    """
    folder = failed_dir / f"{message.file_name}.{message.file_digest[:16]}"
    index = message.segment_index
    return folder / f"segment-{index:05d}.avro", folder / f"segment-{index:05d}.json"


def keep_failed_segment(
    failed_dir: Path, topic: str, message: IngestMessage, payload: bytes, error: str
) -> Path:
    """Write an undelivered segment durably (fsync, then rename) so a replay finds it whole."""
    data_path, meta_path = failed_segment_paths(failed_dir, message)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "topic": topic,
        "key": message.file_digest,
        "headers": {k: v.decode() for k, v in message.headers()},
        "pipeline": message.pipeline,
        "file_name": message.file_name,
        "segment_index": message.segment_index,
        "segment_count": message.segment_count,
        "error": error,
    }
    for path, content in ((data_path, payload), (meta_path, json.dumps(meta, indent=2).encode())):
        temporary = path.with_suffix(path.suffix + ".tmp")
        with temporary.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    return data_path


def publish_messages(
    producer: Producer,
    topic: str,
    messages: Sequence[IngestMessage],
    *,
    failed_dir: Path,
    flush_timeout: float = 120.0,
) -> PublishReport:
    """Send ``messages`` (key = file digest, so one partition keeps their order) and prove delivery."""
    payloads = [encode_message(m) for m in messages]
    delivered: dict[int, tuple[int, int]] = {}
    errors: dict[int, str] = {}

    def report(index: int) -> Any:
        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                errors[index] = str(err)
            else:
                delivered[index] = (msg.partition(), msg.offset())

        return on_delivery

    for index, (message, payload) in enumerate(zip(messages, payloads, strict=True)):
        try:
            producer.produce(
                topic,
                value=payload,
                key=message.file_digest.encode(),
                headers=message.headers(),
                on_delivery=report(index),
            )
        except Exception as exc:  # BufferError, KafkaException: the message never left
            errors[index] = f"{type(exc).__name__}: {exc}"
        producer.poll(0)
    remaining = producer.flush(flush_timeout)
    undelivered = [i for i in range(len(messages)) if i not in delivered]
    if undelivered:
        for i in undelivered:
            reason = (
                errors.get(i) or f"no delivery report within {flush_timeout:g}s ({remaining} still queued)"
            )
            keep_failed_segment(failed_dir, topic, messages[i], payloads[i], reason)
        first = errors.get(undelivered[0], "no delivery report")
        kept = failed_segment_paths(failed_dir, messages[0])[0].parent
        raise PublishError(
            f"{len(undelivered)} of {len(messages)} segments of {messages[0].file_name} were not "
            f"acknowledged by Kafka topic {topic} (first error: {first}); kept for replay under {kept}"
        )
    log.info(
        "published %d segments of %s to %s", len(messages), messages[0].file_name if messages else "-", topic
    )
    return PublishReport(
        topic=topic,
        messages=len(messages),
        bytes=sum(len(p) for p in payloads),
        offsets=tuple(delivered[i] for i in range(len(messages))),
    )
