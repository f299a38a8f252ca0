"""The Avro envelope of Kafka messages: schemas from include/schemas/, schemaless binary datums.

Schemaless datums (no container header) keep messages small and match what Spot's Distributed
Collector sent; the schema version travels in a Kafka header so readers pick the right schema.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import fastavro

SCHEMA_VERSION = 1
SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "include" / "schemas"
MESSAGE_SCHEMA_FILE = f"spot_ingest_message.v{SCHEMA_VERSION}.avsc"
SPOT_LIST_SCHEMA_FILE = "spot_list.avsc"

Kind = Literal["INLINE", "POINTER"]


@cache
def load_schema(file_name: str) -> Any:
    """Parse an ``.avsc`` of include/schemas once per process."""
    return fastavro.parse_schema(json.loads((SCHEMAS_DIR / file_name).read_text()))


@dataclass(frozen=True)
class Pointer:
    """Where a big file's CSV waits in HDFS, and what to expect there."""

    hdfs_path: str
    bytes: int
    rows: int
    sha256: str


@dataclass(frozen=True)
class IngestMessage:
    """One Kafka message: a segment of a file's rows (INLINE) or a pointer to its staged CSV."""

    kind: Kind
    pipeline: str
    data_type: str
    file_name: str
    file_digest: str
    segment_index: int
    segment_count: int
    first_row_epoch: int | None = None
    rows: tuple[str, ...] = field(default_factory=tuple)
    pointer: Pointer | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": self.kind,
            "pipeline": self.pipeline,
            "data_type": self.data_type,
            "file_name": self.file_name,
            "file_digest": self.file_digest,
            "segment_index": self.segment_index,
            "segment_count": self.segment_count,
            "first_row_epoch": self.first_row_epoch,
            "rows": list(self.rows),
            "pointer": None if self.pointer is None else vars(self.pointer),
        }

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers: enough to route or skip a message without decoding it."""
        return [
            ("spot.pipeline", self.pipeline.encode()),
            ("spot.type", self.data_type.encode()),
            ("spot.schema_version", str(SCHEMA_VERSION).encode()),
            ("spot.kind", self.kind.encode()),
            ("spot.segment", f"{self.segment_index + 1}/{self.segment_count}".encode()),
        ]


def encode_message(message: IngestMessage) -> bytes:
    """Schemaless Avro datum of ``message``."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, load_schema(MESSAGE_SCHEMA_FILE), message.to_record())
    return buffer.getvalue()


def decode_message(payload: bytes) -> IngestMessage:
    """Inverse of :func:`encode_message`; a payload that is not one raises ValueError."""
    try:
        record = fastavro.schemaless_reader(io.BytesIO(payload), load_schema(MESSAGE_SCHEMA_FILE), None)
    except Exception as exc:  # fastavro raises several types on garbage
        raise ValueError(f"not a Spot ingest message (schema v{SCHEMA_VERSION}): {exc}") from exc
    assert isinstance(record, dict)
    pointer = record.pop("pointer")
    record.pop("schema_version")
    return IngestMessage(
        **{**record, "rows": tuple(record["rows"])}, pointer=None if pointer is None else Pointer(**pointer)
    )


def encode_spot_list(rows: list[str]) -> bytes:
    """A message as Spot's Distributed Collector wrote it (``SPOT.INGEST.list``)."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, load_schema(SPOT_LIST_SCHEMA_FILE), {"list": rows})
    return buffer.getvalue()


def decode_spot_list(payload: bytes) -> list[str]:
    record = fastavro.schemaless_reader(io.BytesIO(payload), load_schema(SPOT_LIST_SCHEMA_FILE), None)
    assert isinstance(record, dict)
    return list(record["list"] or [])
