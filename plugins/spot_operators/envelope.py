"""The Avro envelope of Kafka messages: schemas from include/schemas/, schemaless binary datums.

Schemaless datums (no container header) keep messages small and match what Spot's Distributed
Collector sent; the schema version travels in a Kafka header and in the datum's first field (an Avro
``int``), so readers pick the right schema. Version 2 (written here) carries an INLINE segment's rows
as one CSV text; version 1 (an array of lines) is still read, so messages already in a topic load.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import fastavro

SCHEMA_VERSION = 2
"""The envelope version this code writes."""
SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "include" / "schemas"
MESSAGE_SCHEMA_FILES = {version: f"spot_ingest_message.v{version}.avsc" for version in (1, 2)}
"""Every envelope version this code reads, by version."""
MESSAGE_SCHEMA_FILE = MESSAGE_SCHEMA_FILES[SCHEMA_VERSION]
SPOT_LIST_SCHEMA_FILE = "spot_list.avsc"
SPOT_LIST_VERSION = 0
"""The key of Apache Spot's ``list.avsc`` among the schemas a reader takes by version (it has none)."""

Kind = Literal["INLINE", "POINTER"]


@cache
def load_schema(file_name: str) -> Any:
    """Parse an ``.avsc`` of include/schemas once per process."""
    return fastavro.parse_schema(json.loads((SCHEMAS_DIR / file_name).read_text()))


def message_schema_jsons(message_format: str) -> dict[int, str]:
    """The schemas (JSON text, by version) of the messages a pipeline's topic carries: every envelope
    version for ``ingest``, Spot's ``list.avsc`` (as :data:`SPOT_LIST_VERSION`) for ``spot_list``."""
    if message_format == "spot_list":
        files = {SPOT_LIST_VERSION: SPOT_LIST_SCHEMA_FILE}
    else:
        files = MESSAGE_SCHEMA_FILES
    return {version: (SCHEMAS_DIR / name).read_text(encoding="utf-8") for version, name in files.items()}


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
        """The datum of the current envelope version (:data:`SCHEMA_VERSION`)."""
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
            "row_count": len(self.rows),
            "csv": csv_text(self.rows).encode("utf-8"),
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


def csv_text(rows: Iterable[str]) -> str:
    """CSV records (each without terminator) as one CSV text, each ended by a line feed: what a v2
    INLINE message carries (as UTF-8) and what a staged CSV holds."""
    return "".join(row + "\n" for row in rows)


def csv_text_records(text: str) -> tuple[str, ...]:
    """Inverse of :func:`csv_text`: the records, without terminators, of a CSV text.

    A record ends at a line feed outside quotes. RFC 4180 doubles a quote inside a quoted field, so
    a record is complete exactly when it holds an even number of quotes. Raises ValueError for a
    text that does not end a record with its last line feed.
    """
    if not text:
        return ()
    if not text.endswith("\n"):
        raise ValueError("CSV text does not end with a line feed")
    records: list[str] = []
    pending: list[str] = []
    quotes = 0
    for line in text[:-1].split("\n"):
        pending.append(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            records.append("\n".join(pending))
            pending, quotes = [], 0
    if pending:
        raise ValueError("CSV text ends inside a quoted field")
    return tuple(records)


def leading_int(payload: bytes) -> int | None:
    """The Avro ``int`` a datum starts with (the envelope's ``schema_version``), or None if it has none."""
    value = shift = 0
    for byte in payload[:5]:
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1)
        shift += 7
    return None


def decode_message(payload: bytes) -> IngestMessage:
    """Inverse of :func:`encode_message`, for every version of :data:`MESSAGE_SCHEMA_FILES`; a payload
    that is not one raises ValueError."""
    version = leading_int(payload)
    if version not in MESSAGE_SCHEMA_FILES:
        known = ", ".join(map(str, MESSAGE_SCHEMA_FILES))
        raise ValueError(f"not a Spot ingest message: schema version {version!r} is not one of {known}")
    try:
        record = fastavro.schemaless_reader(
            io.BytesIO(payload), load_schema(MESSAGE_SCHEMA_FILES[version]), None
        )
    except Exception as exc:  # fastavro raises several types on garbage
        raise ValueError(f"not a Spot ingest message (schema v{version}): {exc}") from exc
    assert isinstance(record, dict)
    pointer = record.pop("pointer")
    record.pop("schema_version")
    if version == 1:
        rows = tuple(record.pop("rows"))
    else:
        try:
            rows = csv_text_records(record.pop("csv").decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError is one
            raise ValueError(f"not a Spot ingest message (schema v{version}): its CSV text: {exc}") from exc
        row_count = record.pop("row_count")
        if len(rows) != row_count:
            raise ValueError(
                f"not a Spot ingest message (schema v{version}): "
                f"{len(rows)} CSV records, row_count {row_count}"
            )
    return IngestMessage(**record, rows=rows, pointer=None if pointer is None else Pointer(**pointer))


def encode_spot_list(rows: list[str]) -> bytes:
    """A message as Spot's Distributed Collector wrote it (``SPOT.INGEST.list``)."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, load_schema(SPOT_LIST_SCHEMA_FILE), {"list": rows})
    return buffer.getvalue()


def decode_spot_list(payload: bytes) -> list[str]:
    record = fastavro.schemaless_reader(io.BytesIO(payload), load_schema(SPOT_LIST_SCHEMA_FILE), None)
    assert isinstance(record, dict)
    return list(record["list"] or [])
