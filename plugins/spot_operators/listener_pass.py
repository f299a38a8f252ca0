"""The listener's typing pass, run in Spark's Python workers: messages or staged texts -> Parquet files
of the good rows, one per hour, and a report per task (messages, load-log entries, quarantine rows).

``spot_listener`` runs :func:`listen_messages` and :func:`listen_texts` with ``mapInArrow`` and ships
this module in its zip (``spot_listener.SHIPPED_MODULES``). Typing itself is
:mod:`spot_operators.listener_columns` (whole units, columnar) with :mod:`spot_operators.listener_rows`
(row by row) as the fallback; this module adds provenance, the load-log counts, the quarantine report
and the per-hour Parquet files. Only pyarrow, fastavro and those modules.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spot_operators.listener_columns import ARROW_TYPES, text_body, typed_columns, typed_lines, typed_text
from spot_operators.listener_messages import MESSAGE_COLUMNS, MESSAGE_NAMES, decode_message, reading_schemas
from spot_operators.listener_rows import Quarantine, csv_records, inline_records, typed_fields

UNIT_EXTRA = (("lines", "ARRAY<STRING>"), ("text", "STRING"), ("error", "STRING"))
QUARANTINE_EXTRA = (("line_no", "INT"), ("raw", "STRING"), ("reason", "STRING"))
ENTRY_IDENTITY = ("pipeline", "file_name", "file_digest", "segment_index", "segment_count", "expected_rows")
"""Provenance in a load-log entry, before the hour (y, m, d, h) and the rows/quarantined counts."""
BAD_COLUMNS = (
    ("pipeline", "STRING"),
    ("file_name", "STRING"),
    ("file_digest", "STRING"),
    ("segment_index", "INT"),
    ("line_no", "INT"),
    ("raw", "STRING"),
    ("reason", "STRING"),
)
"""A quarantine row as the typing pass reports it (the driver maps it to the quarantine table)."""
PASS_COLUMNS = (("kind", "STRING"), ("folder", "STRING"), ("data", "BINARY"))
"""Output of a typing pass: ``file`` rows (an hour folder and its Parquet bytes), one ``report`` (JSON)."""
INLINE_GROUP_ROWS = 30_000
"""Lines of consecutive INLINE messages a task types as one body (Arrow's fixed cost per call is
then paid per group; a group that is not clean as a whole is typed message by message)."""


def spark_ddl(columns: Sequence[tuple[str, str]]) -> str:
    """Spark's DDL of ``(name, Hive type)`` columns: a ``mapInArrow`` output schema."""
    return ", ".join(f"`{name}` {hive_type}" for name, hive_type in columns)


def arrow_schema(columns: Sequence[tuple[str, str]]) -> pa.Schema:
    """The Arrow schema of ``(name, Hive type)`` columns, in the types the typing pass writes."""

    def arrow_type(hive_type: str) -> Any:
        if hive_type == "ARRAY<STRING>":
            return pa.list_(pa.string())
        if hive_type == "BINARY":
            return pa.binary()
        return ARROW_TYPES[hive_type]

    return pa.schema([(name, arrow_type(hive_type)) for name, hive_type in columns])


def unit_items(data_type: str, text: str | bytes | None, lines: Any, error: str | None) -> Iterator[Any]:
    """A unit (an error, a message's lines, or a CSV text, staged or a v2 message's) -> its typed rows.

    Yields one Arrow table (table columns then partition columns) for a unit the columnar path
    (:mod:`spot_operators.listener_columns`) vouches for; otherwise ``(line_no, raw, values or
    Quarantine)`` per record, the row path's, so quarantine reasons and line numbers are the row
    path's. ``lines`` is a list of strings, an Arrow string array or None; ``text`` a CSV
    text or its bytes (decoded by :func:`csv_records` for the row path only).
    """
    if error is not None:
        yield 0, "", Quarantine(error)
        return
    if text is not None:
        fast = typed_text(data_type, text)
    else:
        fast = typed_lines(data_type, lines) if lines is not None else None
    if fast is not None:
        yield fast
        return
    items: Iterator[tuple[int, str, Any]]
    if text is not None:
        items = csv_records(text)
    else:
        items = inline_records(lines.to_pylist() if isinstance(lines, pa.Array) else (lines or []))
    for line_no, raw, fields in items:
        yield line_no, raw, fields if isinstance(fields, Quarantine) else typed_fields(data_type, fields)


def type_units(
    batches: Iterator[Any], data_type: str, out_columns: Sequence[tuple[str, str]]
) -> Iterator[Any]:
    """Units -> typed rows and quarantine rows, with provenance, in the units' order (``out_columns``).

    The reference output of :func:`unit_items` (the unit tests compare the columnar and row paths
    with it); the listener itself runs :func:`listen_texts` and :func:`listen_messages`.
    """
    out_schema = arrow_schema(out_columns)
    width = len(out_columns) - len(MESSAGE_COLUMNS) - len(QUARANTINE_EXTRA)  # table + partition columns
    value_names = out_schema.names[:width]
    chunk = 8192

    def empty() -> dict[str, list[Any]]:
        return {name: [] for name in out_schema.names}

    def columnar(typed: Any, provenance: Sequence[Any]) -> Iterator[Any]:
        rows = typed.num_rows
        arrays = [typed.column(name).combine_chunks() for name in value_names]
        for (name, _), value in zip(MESSAGE_COLUMNS, provenance, strict=True):
            kind = out_schema.field(name).type
            arrays.append(pa.nulls(rows, kind) if value is None else pa.repeat(pa.scalar(value, kind), rows))
        arrays.extend(pa.nulls(rows, out_schema.field(name).type) for name, _ in QUARANTINE_EXTRA)
        whole = pa.Table.from_arrays(arrays, schema=out_schema)
        yield from whole.to_batches(max_chunksize=chunk)

    for batch in batches:
        out = empty()
        columns = {name: batch.column(name) for name in batch.schema.names}
        errors, texts = columns["error"].to_pylist(), columns["text"].to_pylist()
        identity = list(zip(*(columns[name].to_pylist() for name, _ in MESSAGE_COLUMNS), strict=True))
        for index in range(batch.num_rows):
            provenance = identity[index]
            lines = columns["lines"][index]
            for item in unit_items(
                data_type, texts[index], lines.values if lines.is_valid else None, errors[index]
            ):
                if isinstance(item, pa.Table):
                    if out["reason"]:
                        yield pa.RecordBatch.from_pydict(out, schema=out_schema)
                        out = empty()
                    yield from columnar(item, provenance)
                    continue
                line_no, raw, typed = item
                if isinstance(typed, Quarantine):
                    values: Sequence[Any] = [None] * width
                    extra = [line_no, raw, typed.reason]
                else:
                    values, extra = typed, [None, None, None]
                for name, value in zip(value_names, values, strict=True):
                    out[name].append(value)
                for (name, _), value in zip(MESSAGE_COLUMNS, provenance, strict=True):
                    out[name].append(value)
                for (name, _), value in zip(QUARANTINE_EXTRA, extra, strict=True):
                    out[name].append(value)
                if len(out["reason"]) >= chunk:
                    yield pa.RecordBatch.from_pydict(out, schema=out_schema)
                    out = empty()
        if out["reason"]:
            yield pa.RecordBatch.from_pydict(out, schema=out_schema)


class UnitSink:
    """Types the units of one task and writes their good rows as Parquet, one file per hour.

    The good rows are buffered as Arrow slices per hour partition and written with pyarrow: one file
    per hour, the table's columns without the partition columns, as Spark's ``partitionBy`` lays
    them out (:func:`hour_slices`). The task's report holds its messages, the load-log entries per
    unit and hour, and the quarantine rows (up to ``bad_limit``; beyond it only ``overflow`` is set
    and the driver types them again). With ``bad_only`` it yields the quarantine rows
    (``BAD_COLUMNS``) instead.
    """

    chunk = 8192
    flush_rows = 1_000_000  # buffered good rows that make the task write its files early

    def __init__(
        self, data_type: str, good_columns: Sequence[tuple[str, str]], bad_limit: int, bad_only: bool
    ):
        self.data_type = data_type
        self.good_schema = arrow_schema(good_columns)
        self.schema = arrow_schema(BAD_COLUMNS) if bad_only else self.good_schema
        self.partitions = list(self.good_schema.names[-4:])  # y, m, d, h
        self.bad_limit = bad_limit
        self.bad_only = bad_only
        self.pending: dict[str, list[Any]] = {name: [] for name in self.schema.names}
        self.by_hour: dict[tuple[Any, ...], list[Any]] = {}  # good rows not written yet, per hour
        self.good_rows = 0
        self.report: dict[str, Any] = {"messages": [], "entries": [], "bad": [], "overflow": False}
        self.bad_count = 0

    def _pending_batch(self) -> Iterator[Any]:
        if self.pending[self.schema.names[0]]:
            yield pa.RecordBatch.from_pydict(self.pending, schema=self.schema)
            self.pending = {name: [] for name in self.schema.names}

    def _buffer(self, table: Any) -> None:
        """Add good rows (a table or a record batch) to the per-hour buffer."""
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        for hour, rows in hour_slices(table, self.partitions):
            self.by_hour.setdefault(hour, []).append(rows)
            self.good_rows += rows.num_rows

    def _keep(self, table: Any) -> Iterator[Any]:
        """Buffer good rows; write the files when the buffer is full."""
        self._buffer(table)
        if self.good_rows >= self.flush_rows:
            yield from self.files()

    def files(self) -> Iterator[Any]:
        """Output rows ``("file", folder, parquet bytes)`` of the buffered good rows, one per hour."""
        for batch in list(self._pending_batch()):
            self._buffer(batch)
        by_hour, self.by_hour, self.good_rows = self.by_hour, {}, 0
        for hour in sorted(by_hour):
            rows = pa.concat_tables([t.cast(self.good_schema) for t in by_hour[hour]])
            folder, data = parquet_file(self.partitions, hour, rows)
            yield pa.RecordBatch.from_pydict(
                {"kind": ["file"], "folder": [folder], "data": [data]}, schema=arrow_schema(PASS_COLUMNS)
            )

    def finish(self, report: bool = True) -> Iterator[Any]:
        """The rest of the output: the last files and the report (or the last quarantine rows)."""
        if self.bad_only:
            yield from self._pending_batch()
            return
        yield from self.files()
        if report:
            data = json.dumps(self.report).encode()
            yield pa.RecordBatch.from_pydict(
                {"kind": ["report"], "folder": [None], "data": [data]}, schema=arrow_schema(PASS_COLUMNS)
            )

    def _entries(self, ident: dict[str, Any], counts: dict[tuple[Any, ...], list[int]]) -> None:
        """The load-log entries of one unit: its rows and quarantined lines per hour."""
        key = [ident["topic"], ident["kafka_partition"], ident["kafka_offset"]]
        for hour, (rows, quarantined) in counts.items():
            entry = {name: ident[name] for name in ENTRY_IDENTITY}
            entry.update(zip("ymdh", hour, strict=True))
            entry.update(rows=rows, quarantined=quarantined)
            self.report["entries"].append([key, entry])

    def _typed(self, idents: Sequence[dict[str, Any]], sizes: Sequence[int], typed: Any) -> Iterator[Any]:
        """Count and keep ``typed``: the typed rows of the units ``idents``, ``sizes`` rows each, in order.

        One group-by over (unit, hour) gives every unit's entries; the rows are split by hour once.
        """

        units = unit_numbers(sizes)
        keys = typed.select(self.partitions).append_column("unit", units)
        counts: list[dict[tuple[Any, ...], list[int]]] = [{} for _ in idents]
        grouped = keys.group_by(["unit", *self.partitions], use_threads=False).aggregate([("unit", "count")])
        for group in grouped.to_pylist():
            hour = tuple(str(group[n]) for n in self.partitions)
            counts[group["unit"]][hour] = [group["unit_count"], 0]
        for ident, unit_counts in zip(idents, counts, strict=True):
            self._entries(ident, unit_counts)
        if not self.bad_only:
            yield from self._keep(typed)

    def messages(self, records: Sequence[dict[str, Any]]) -> Iterator[Any]:
        """Type several INLINE messages (each with lines or a CSV text ending with a line feed, no
        error) together, as one body.

        Arrow's per-call cost then falls on the group, not on each message. When the group is not
        clean as a whole, each message is typed on its own (:meth:`unit`), so its quarantine
        reasons and line numbers are those of the row path.
        """

        if not records:
            return
        typed = None
        sizes = [len(r["lines"]) if r["text"] is None else r["text"].count(b"\n") for r in records]
        if len(records) > 1:
            # v1 lines each ended by "\n" in one join, as lines_body does; a v2 text already is.
            texts = (b"\n".join([*r["lines"], b""]) if r["text"] is None else r["text"] for r in records)
            body = text_body(b"".join(texts))
            typed = None if body is None else typed_columns(self.data_type, body, sum(sizes))
        if typed is None:
            for record in records:
                yield from self.unit(record, record["text"], record["lines"], None)
            return
        yield from self._typed(records, sizes, typed)

    def unit(
        self, ident: dict[str, Any], text: str | bytes | None, lines: Any, error: str | None
    ) -> Iterator[Any]:
        """Type one unit of the message ``ident`` (its ``MESSAGE_COLUMNS``); yield any full output."""
        counts: dict[tuple[Any, ...], list[int]] = {}
        no_hour = (None, None, None, None)
        key = [ident["topic"], ident["kafka_partition"], ident["kafka_offset"]]
        for item in unit_items(self.data_type, text, lines, error):
            if isinstance(item, pa.Table):
                yield from self._typed([ident], [item.num_rows], item)
                continue
            line_no, raw, typed = item
            if isinstance(typed, Quarantine):
                counts.setdefault(no_hour, [0, 0])[1] += 1
                bad = (
                    ident["pipeline"],
                    ident["file_name"],
                    ident["file_digest"],
                    ident["segment_index"],
                    line_no,
                    raw,
                    typed.reason,
                )
                if self.bad_only:
                    for name, value in zip(self.schema.names, bad, strict=True):
                        self.pending[name].append(value)
                else:
                    self.bad_count += 1
                    if self.bad_count > self.bad_limit:
                        self.report["overflow"], self.report["bad"] = True, []
                    elif not self.report["overflow"]:
                        self.report["bad"].append([key, bad])
            else:
                counts.setdefault(tuple(str(v) for v in typed[-4:]), [0, 0])[0] += 1
                if not self.bad_only:
                    for name, value in zip(self.schema.names, typed, strict=True):
                        self.pending[name].append(value)
            if len(self.pending[self.schema.names[0]]) >= self.chunk:
                batches = list(self._pending_batch())
                if self.bad_only:
                    yield from batches
                else:
                    for batch in batches:
                        yield from self._keep(batch)
        if counts:
            self._entries(ident, counts)


def unit_numbers(sizes: Sequence[int]) -> Any:
    """Each row's unit number (int32) for consecutive units of ``sizes`` rows: ``[2, 1]`` -> ``0, 0, 1``.

    Built as one buffer of repeated 4-byte numbers (C-speed ``bytes`` repetition): a list of Python
    ints per row took 6 ms per 120,000 rows, and Arrow's run-end arrays import pandas.
    """
    data = b"".join(struct.pack("=i", unit) * size for unit, size in enumerate(sizes))
    return pa.Array.from_buffers(pa.int32(), len(data) // 4, [None, pa.py_buffer(data)])


def hour_slices(table: Any, partitions: Sequence[str]) -> list[tuple[tuple[Any, ...], Any]]:
    """``(partition values, rows)`` per distinct hour of ``table``, in ascending hour order.

    One Arrow group-by finds the hours and their sizes (no per-row Python); the rows are sorted
    only when there is more than one hour, and each hour's rows are then a zero-copy slice.
    """

    def runs(rows: Any) -> list[dict[str, Any]]:  # distinct keys in order of appearance, with sizes
        return (
            rows.group_by(list(partitions), use_threads=False)
            .aggregate([(partitions[0], "count")])
            .to_pylist()
        )

    hours = runs(table)
    if len(hours) > 1:
        table = table.take(pc.sort_indices(table, sort_keys=[(name, "ascending") for name in partitions]))
        hours = runs(table)
    slices, start = [], 0
    for hour in hours:
        size = hour[f"{partitions[0]}_count"]
        slices.append((tuple(hour[name] for name in partitions), table.slice(start, size)))
        start += size
    return slices


def parquet_file(partitions: Sequence[str], hour: tuple[Any, ...], rows: Any) -> tuple[str, bytes]:
    """``(folder, Parquet bytes)`` of one hour's rows, as Spark's ``partitionBy`` writes them:
    ``y=2023/m=1/d=25/h=18``, the partition columns left out."""
    buffer = io.BytesIO()
    pq.write_table(rows.drop_columns(list(partitions)), buffer)
    return "/".join(f"{n}={v}" for n, v in zip(partitions, hour, strict=True)), buffer.getvalue()


def parquet_files(table: Any, partitions: Sequence[str]) -> list[tuple[str, bytes]]:
    """:func:`parquet_file` of every hour of ``table``, in ascending hour order."""
    return [parquet_file(partitions, hour, rows) for hour, rows in hour_slices(table, partitions)]


def listen_messages(
    batches: Iterator[Any],
    data_type: str,
    message_format: str,
    schema_jsons: Mapping[int, str],
    pipeline: str,
    good_columns: Sequence[tuple[str, str]],
    skip: frozenset[tuple[str, int, int]],
    bad_limit: int,
    bad_only: bool = False,
) -> Iterator[Any]:
    """Kafka (value, topic, partition, offset) -> Parquet files of the INLINE messages' good rows
    and the task's report (``PASS_COLUMNS``, ``mapInArrow``).

    Decodes each message (:func:`decode_message`, with the schemas ``schema_jsons`` by version) and
    types its rows in the same pass; messages whose ``(topic, partition, offset)`` is in ``skip``
    (duplicates) are left out. POINTER messages only go to the report.
    """
    schemas = reading_schemas(schema_jsons)
    sink = UnitSink(data_type, good_columns, bad_limit, bad_only)
    group: list[dict[str, Any]] = []  # INLINE messages typed together, in message order
    group_rows = 0
    for batch in batches:
        columns = batch.to_pydict()
        for value, topic, partition, offset in zip(
            columns["value"], columns["topic"], columns["partition"], columns["offset"], strict=True
        ):
            if (topic, partition, offset) in skip:
                continue
            record = decode_message(
                value, topic, partition, offset, schemas, data_type, message_format, pipeline
            )
            sink.report["messages"].append({n: record[n] for n in (*MESSAGE_NAMES, "kind", "pointer_path")})
            if record["kind"] == "POINTER":
                continue
            text = record["text"]
            if record["error"] is None and (record["lines"] or (text and text.endswith(b"\n"))):
                group.append(record)
                group_rows += record["expected_rows"]
                if group_rows >= INLINE_GROUP_ROWS:
                    yield from sink.messages(group)
                    group, group_rows = [], 0
                continue
            yield from sink.messages(group)
            group, group_rows = [], 0
            yield from sink.unit(record, text, record["lines"], record["error"])
    yield from sink.messages(group)
    yield from sink.finish()


def listen_texts(
    batches: Iterator[Any],
    data_type: str,
    good_columns: Sequence[tuple[str, str]],
    units_by_uri: dict[str, list[dict[str, Any]]],
    bad_limit: int,
    bad_only: bool = False,
) -> Iterator[Any]:
    """Staged CSV texts (``uri``, ``text``) -> Parquet files and the report, like
    :func:`listen_messages`: each text typed once per POINTER message naming it (``units_by_uri``:
    the messages' ``MESSAGE_COLUMNS`` by the file's URI). Each text is taken as bytes (Spark does
    not check that a file is UTF-8): one that is not all UTF-8 loses only its records with the bad
    bytes (:func:`spot_operators.listener_rows.staged_text`), not the batch."""
    sink = UnitSink(data_type, good_columns, bad_limit, bad_only)
    for batch in batches:
        uris = batch.column("uri").to_pylist()
        # The same buffers seen as binary (no copy; a cast to binary in Spark would copy each text
        # once more in the JVM's heap, which a big staged CSV needs about ten times its size of).
        contents = batch.column("text").view(pa.binary()).to_pylist()
        for uri, data in zip(uris, contents, strict=True):
            # The bytes go to the typing as they are: the columnar path parses them without decoding
            # them to a string and back (about a tenth of its time); only the row path decodes them.
            for ident in units_by_uri[uri]:
                yield from sink.unit(ident, data, None, None)
    yield from sink.finish()


def refused_texts_report(
    data_type: str, good_columns: Sequence[tuple[str, str]], refused: Sequence[tuple[dict[str, Any], str]]
) -> dict[str, Any]:
    """The report of POINTER messages whose staged CSV is refused (``(message, error)``): each is one
    quarantine row, typed as a unit with that error (no Spark job for it)."""
    sink = UnitSink(data_type, good_columns, len(refused), False)
    for ident, error in refused:
        list(sink.unit(ident, None, None, error))  # an error unit has no good rows: nothing is yielded
    return sink.report
