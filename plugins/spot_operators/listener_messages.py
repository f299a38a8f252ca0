"""Kafka values -> the listener's message records: provenance, kind, lines or pointer, or the error.

Runs in Spark's Python workers (the listener ships it, see ``spot_listener.SHIPPED_MODULES``) and in
the driver (duplicates). Only fastavro and the standard library.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import fastavro

MESSAGE_COLUMNS = (
    ("topic", "STRING"),
    ("kafka_partition", "INT"),
    ("kafka_offset", "BIGINT"),
    ("pipeline", "STRING"),
    ("file_name", "STRING"),
    ("file_digest", "STRING"),
    ("segment_index", "INT"),
    ("segment_count", "INT"),
    ("expected_rows", "BIGINT"),
)
"""Provenance of every unit and row; ``expected_rows`` is what the publisher says the segment holds."""
MESSAGE_NAMES = tuple(name for name, _ in MESSAGE_COLUMNS)


def reading_schema(schema_json: str) -> Any:
    """The message schema (JSON) as the listener reads it (:func:`bytes_lines_schema`), parsed by fastavro.

    The lines are ``rows`` of the project's envelope and ``list`` of Spot's ``list.avsc``. Avro writes a
    string exactly as it writes bytes, so this reads the same data without decoding every line: the
    columnar path's CSV parse checks a whole group's UTF-8 at once (fastavro took 0.033 s instead of
    0.054 s for 41 flow messages), and a line that is not UTF-8 is quarantined alone
    (:func:`spot_operators.listener_rows.inline_records`), not its whole message.
    """
    return fastavro.parse_schema(bytes_lines_schema(schema_json))


def bytes_lines_schema(schema_json: str) -> dict[str, Any]:
    """The message schema (JSON) with its lines (arrays of strings) declared as arrays of ``bytes``."""

    def as_bytes(avro_type: Any) -> Any:
        if isinstance(avro_type, list):  # a union, e.g. [array, null]
            return [as_bytes(member) for member in avro_type]
        if isinstance(avro_type, dict) and avro_type.get("type") == "array":
            return {**avro_type, "items": "bytes"} if avro_type["items"] == "string" else avro_type
        return avro_type

    schema = json.loads(schema_json)
    for field in schema["fields"]:
        if field["name"] in ("rows", "list"):
            field["type"] = as_bytes(field["type"])
    return schema


class RejectedMessage(ValueError):
    """A message that decodes but cannot be loaded here (its reason goes to quarantine as is)."""


def decode_message(
    value: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    schema: Any,
    data_type: str,
    message_format: str,
    pipeline: str,
) -> dict[str, Any]:
    """One Kafka message -> its provenance (``MESSAGE_COLUMNS``) plus kind, pointer_path, lines, error.

    A value that does not decode, has an unknown schema version or another data type becomes
    ``kind="ERROR"`` with the reason in ``error``; it never raises. ``schema`` is parsed by fastavro;
    with :func:`reading_schema`'s, the lines are ``bytes``.
    """
    where = f"kafka:{topic}:{partition}:{offset}"
    record: dict[str, Any] = {
        "topic": topic,
        "kafka_partition": partition,
        "kafka_offset": offset,
        "pipeline": pipeline,
        "file_name": where,
        "file_digest": where,
        "segment_index": 0,
        "segment_count": 1,
        "expected_rows": 0,
        "kind": None,
        "pointer_path": None,
        "lines": None,
        "error": None,
    }
    try:
        if value is None:
            raise ValueError("message has no value")
        datum = fastavro.schemaless_reader(io.BytesIO(value), schema, None)
        if not isinstance(datum, dict):
            raise ValueError("not an Avro record")
        if message_format == "spot_list":
            lines = list(datum.get("list") or [])
            record.update(kind="INLINE", lines=lines, expected_rows=len(lines))
        else:
            if datum.get("schema_version") != 1:
                raise RejectedMessage(f"unknown schema version {datum.get('schema_version')!r}")
            record.update(
                pipeline=datum["pipeline"],
                file_name=datum["file_name"],
                file_digest=datum["file_digest"],
                segment_index=datum["segment_index"],
                segment_count=datum["segment_count"],
                kind=datum["kind"],
            )
            if datum["data_type"] != data_type:
                raise RejectedMessage(
                    f"message of data type {datum['data_type']!r} on a {data_type!r} listener"
                )
            if datum["kind"] == "POINTER":
                if not datum.get("pointer"):
                    raise RejectedMessage("POINTER message without pointer")
                record["pointer_path"] = datum["pointer"]["hdfs_path"]
                record["expected_rows"] = datum["pointer"]["rows"]
            else:
                record["lines"] = list(datum["rows"])
                record["expected_rows"] = len(record["lines"])
    except RejectedMessage as exc:
        record.update(kind="ERROR", lines=None, pointer_path=None, error=str(exc))
    except Exception as exc:  # fastavro raises many types on garbage: all become quarantine
        record.update(kind="ERROR", lines=None, pointer_path=None)
        record["error"] = f"undecodable message: {type(exc).__name__}: {str(exc)[:300]}"
    return record


def message_key(message: dict[str, Any]) -> tuple[str, int, int]:
    return (message["topic"], message["kafka_partition"], message["kafka_offset"])


def duplicates(messages: Iterable[dict[str, Any]]) -> frozenset[tuple[str, int, int]]:
    """``(topic, partition, offset)`` of every message but the first of its ``(file_digest,
    segment_index)``, first meaning the lowest ``(topic, partition, offset)``."""
    first: dict[tuple[str, int], tuple[str, int, int]] = {}
    every = set()
    for message in messages:
        key = message_key(message)
        segment = (message["file_digest"], message["segment_index"])
        every.add(key)
        if segment not in first or key < first[segment]:
            first[segment] = key
    return frozenset(every - set(first.values()))
