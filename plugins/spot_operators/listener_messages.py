"""Kafka values -> the listener's message records: provenance, kind, lines or pointer, or the error.

Runs in Spark's Python workers (the listener ships it, see ``spot_listener.SHIPPED_MODULES``) and in
the driver (duplicates). Only fastavro, the standard library and :mod:`spot_operators.envelope`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

import fastavro

from spot_operators.envelope import SPOT_LIST_VERSION, leading_int

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


def reading_schemas(schema_jsons: Mapping[int, str]) -> dict[int, Any]:
    """The message schemas (JSON, by envelope version) as the listener reads them, parsed by fastavro.

    Lines of an array (``rows`` of the v1 envelope, ``list`` of Spot's ``list.avsc``) are read as
    ``bytes`` (:func:`bytes_lines_schema`): Avro writes a string exactly as it writes bytes, so this
    reads the same data without decoding every line. The columnar path's CSV parse checks a whole
    group's UTF-8 at once (fastavro took 0.033 s instead of 0.054 s for 41 flow messages), and a line
    that is not UTF-8 is quarantined alone (:func:`spot_operators.listener_rows.inline_records`), not
    its whole message. The v2 envelope's CSV text is ``bytes`` already.
    """
    return {
        version: fastavro.parse_schema(bytes_lines_schema(schema_json))
        for version, schema_json in schema_jsons.items()
    }


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
    schemas: Mapping[int, Any],
    data_type: str,
    message_format: str,
    pipeline: str,
) -> dict[str, Any]:
    """One Kafka message -> its provenance (``MESSAGE_COLUMNS``) plus kind, pointer_path, lines, text, error.

    An INLINE message has ``lines`` (v1 envelope, Spot's ``list.avsc``: a list of ``bytes``) or
    ``text`` (v2 envelope: its CSV text, ``bytes``). A value that does not decode, has an unknown
    schema version or another data type becomes ``kind="ERROR"`` with the reason in ``error``; it never
    raises. ``schemas`` are :func:`reading_schemas`' (``SPOT_LIST_VERSION`` for ``spot_list``).
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
        "text": None,
        "error": None,
    }
    try:
        if value is None:
            raise ValueError("message has no value")
        if message_format == "spot_list":
            schema = schemas[SPOT_LIST_VERSION]
        else:
            # The version is the datum's first field. One this listener does not know is read with the
            # newest schema: garbage then fails as undecodable, a newer writer's datum as unknown.
            leading = leading_int(value)
            schema = schemas[leading] if leading is not None and leading in schemas else schemas[max(schemas)]
        datum = fastavro.schemaless_reader(io.BytesIO(value), schema, None)
        if not isinstance(datum, dict):
            raise ValueError("not an Avro record")
        if message_format == "spot_list":
            lines = list(datum.get("list") or [])
            record.update(kind="INLINE", lines=lines, expected_rows=len(lines))
        else:
            version = datum.get("schema_version")
            if version not in schemas:
                raise RejectedMessage(f"unknown schema version {version!r}")
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
            elif version == 1:
                record["lines"] = list(datum["rows"])
                record["expected_rows"] = len(record["lines"])
            else:
                record["text"] = datum["csv"]
                record["expected_rows"] = datum["row_count"]
    except RejectedMessage as exc:
        record.update(kind="ERROR", lines=None, text=None, pointer_path=None, error=str(exc))
    except Exception as exc:  # fastavro raises many types on garbage: all become quarantine
        record.update(kind="ERROR", lines=None, text=None, pointer_path=None)
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
