"""Spot listener: Kafka ingest messages -> typed rows in the Hive table's Parquet folders, exactly once.

Submitted with spark-submit (Kafka connector jars from ``spot_operators.spark_jars``)::

    spark-submit --jars "$(ls $SPOT_SPARK_JARS_DIR/*.jar | paste -sd,)" include/jobs/spot_listener.py \\
        --data-type flow --topics spot-flow_internals --bootstrap 127.0.0.1:9092 \\
        --table-location /user/spot/flow/hive --quarantine-location /user/spot/quarantine/hive \\
        --checkpoint /user/spot/flow/checkpoints/listener --mode availableNow --result /tmp/r.json

What one micro-batch (``foreachBatch(df, batch_id)``) does:

1. decode every Kafka value with fastavro inside ``mapInArrow`` (``--message-format ingest_v1``: the
   project's envelope, ``include/schemas/spot_ingest_message.v1.avsc``; ``spot_list``: Apache Spot's
   Distributed Collector ``list.avsc``). A value that does not decode, has an unknown schema version
   or another data type becomes one quarantine row; it never fails the batch;
2. drop duplicate messages of the batch: one per ``(file_digest, segment_index)``, the lowest
   ``(topic, partition, offset)`` (a producer retry or a re-published file inside one batch);
3. expand INLINE rows, and POINTER messages by reading each staged CSV from HDFS as one text
   (``spark.read.text(wholetext=True)``: RFC 4180 fields may span lines, and line numbers stay exact);
   a pointer whose file is missing becomes a quarantine row;
4. type every CSV line with :mod:`spot_operators.listener_rows` (column count, Hive types and ranges,
   UTC hour partition from ``unix_tstamp``, or ``p_date``/``p_time`` for proxy); a unit whose lines
   are all clean is typed column-wise by :mod:`spot_operators.listener_columns` to the same values;
5. write good rows as Parquet under ``--table-location`` in ``y=/m=/d=/h=`` folders (Spot's layout, the
   folders spot-ml reads), bad rows under ``--quarantine-location`` in the columns and
   ``data_type=/y=/m=/d=/h=`` folders (hour quarantined, UTC) of the ``<db>.quarantine`` table, both
   through the idempotent publish below.

Exactly-once effect. Spark writes the batch's offset range to ``<checkpoint>/offsets/<id>`` before it
runs the batch and ``<checkpoint>/commits/<id>`` after ``foreachBatch`` returns; after a crash in between
it runs the batch again with the same ``batch_id`` and the same offsets, so the sink only has to make a
batch's effect idempotent per ``batch_id``:

* the batch is first written to ``<location>/_staging/<tag>/batch=<id>`` with mode overwrite (a replay
  replaces a half-written staging folder; ``_``-prefixed folders are hidden from Hive and Spark);
* the target folders are recorded in ``<location>/_staging/<tag>/manifests/b<id>.txt`` (the union with
  any manifest a crashed attempt left), then in each of them every existing ``part-<tag>-b<id>-*``
  file is deleted and the staged files are renamed (HDFS rename is atomic per file) to the deterministic
  names ``part-<tag>-b<id>-<n>.parquet``. A replay therefore removes whatever a crashed attempt had
  already moved, even into folders the replay would not write, before moving its own files: every row
  ends up there once. Between a crash and the replay, readers can see part of that batch (at-least-
  once visibility, exactly-once result);
* ``<tag>`` is derived from the checkpoint path, so two listeners (two pipelines of one type, each with
  its own checkpoint) sharing a table location never delete each other's files; manifests of earlier
  batches are deleted when a batch starts (Spark commits batch N-1 before it starts batch N).

Not covered: the same file re-published in a *later* batch (a second collect of identical bytes) is
loaded again; the collect ledger is what prevents that. A staged CSV that changes or disappears between
a crash and its replay changes the replayed rows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("spot.jobs.spot_listener")

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"
SHIPPED_MODULES = ("__init__.py", "tables.py", "listener_rows.py", "listener_columns.py")
"""What executors import (listener_columns depends on listener_rows, that on tables only): shipped
as a zip with addPyFile."""

ARROW_TYPES = {
    "STRING": "string",
    "BIGINT": "int64",
    "INT": "int32",
    "SMALLINT": "int16",
    "TINYINT": "int8",
    "FLOAT": "float32",
}
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
DECODED_EXTRA = (("kind", "STRING"), ("pointer_path", "STRING"), ("lines", "ARRAY<STRING>"))
UNIT_EXTRA = (("lines", "ARRAY<STRING>"), ("text", "STRING"), ("error", "STRING"))
QUARANTINE_EXTRA = (("line_no", "INT"), ("raw", "STRING"), ("reason", "STRING"))
QUARANTINE_PARTITIONS = ("data_type", "y", "m", "d", "h")
PAUSE_POINTS = ("after-staging", "after-move")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-type", required=True, choices=("flow", "dns", "proxy"))
    parser.add_argument("--topics", required=True, help="comma-separated Kafka topics")
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,...]")
    parser.add_argument(
        "--table-location", required=True, help="HDFS folder of the table, e.g. /user/spot/flow/hive"
    )
    parser.add_argument("--quarantine-location", required=True, help="HDFS folder for quarantined rows")
    parser.add_argument("--checkpoint", required=True, help="HDFS folder of the streaming checkpoint")
    parser.add_argument("--mode", choices=("availableNow", "continuous"), default="availableNow")
    parser.add_argument("--batch-seconds", type=int, default=30, help="continuous mode trigger interval")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=0, help="0: no limit")
    parser.add_argument("--message-format", choices=("ingest_v1", "spot_list"), default="ingest_v1")
    parser.add_argument("--pipeline", default="", help="pipeline name recorded for spot_list messages")
    parser.add_argument("--result", default="", help="local JSON file for the counts (availableNow)")
    parser.add_argument(
        "--load-log",
        default="",
        help="HDFS folder of the per-batch load log (rows per file, segment and hour) for reconciling",
    )
    parser.add_argument(
        "--register-table",
        default="",
        help="db.table: add the hour partitions each batch wrote to the metastore (continuous mode)",
    )
    parser.add_argument("--register-quarantine-table", default="", help="db.table of the quarantine table")
    parser.add_argument("--app-name", default="")
    # Test hook for the kill-and-restart test: write a marker file and sleep at this point of batch 0.
    parser.add_argument("--test-pause-at", choices=PAUSE_POINTS, default="", help=argparse.SUPPRESS)
    parser.add_argument("--test-pause-marker", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _ddl(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"`{name}` {hive_type}" for name, hive_type in columns)


def _arrow_schema(columns: Sequence[tuple[str, str]]) -> Any:
    import pyarrow as pa

    def arrow_type(hive_type: str) -> Any:
        if hive_type == "ARRAY<STRING>":
            return pa.list_(pa.string())
        return getattr(pa, ARROW_TYPES[hive_type])()

    return pa.schema([(name, arrow_type(hive_type)) for name, hive_type in columns])


class RejectedMessage(ValueError):
    """A message that decodes but cannot be loaded here (its reason goes to quarantine as is)."""


# ---------------------------------------------------------------------------------------------------
# Executor side: functions shipped by value (cloudpickle); they import only pyarrow, fastavro and
# spot_operators.listener_rows/tables (from the zip).


def decode_messages(
    batches: Iterator[Any], data_type: str, message_format: str, schema_json: str, pipeline: str
) -> Iterator[Any]:
    """Kafka (value, topic, partition, offset) -> one decoded message per row (mapInArrow)."""
    import io

    import fastavro
    import pyarrow as pa

    schema = fastavro.parse_schema(json.loads(schema_json))
    out_schema = _arrow_schema((*MESSAGE_COLUMNS, *DECODED_EXTRA, ("error", "STRING")))
    for batch in batches:
        out: dict[str, list[Any]] = {name: [] for name in out_schema.names}
        columns = batch.to_pydict()
        for value, topic, partition, offset in zip(
            columns["value"], columns["topic"], columns["partition"], columns["offset"], strict=True
        ):
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
            for name in out_schema.names:
                out[name].append(record[name])
        yield pa.RecordBatch.from_pydict(out, schema=out_schema)


def type_units(
    batches: Iterator[Any], data_type: str, out_columns: Sequence[tuple[str, str]]
) -> Iterator[Any]:
    """Units (a message's lines, a staged CSV's text, or an error) -> typed rows and quarantine rows.

    A clean unit is typed column-wise (:mod:`spot_operators.listener_columns`); any unit that path
    cannot vouch for is typed row by row, whole, so quarantine reasons and line numbers are the row
    path's. Output rows keep the units' order.
    """
    import pyarrow as pa

    from spot_operators.listener_columns import typed_lines, typed_text
    from spot_operators.listener_rows import Quarantine, csv_records, split_line, typed_fields

    out_schema = _arrow_schema(out_columns)
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
            items: Iterator[tuple[int, str, Any]]
            if errors[index] is not None:
                items = iter([(0, "", Quarantine(errors[index]))])
            else:
                text = texts[index]
                if text is not None:
                    fast = typed_text(data_type, text)
                else:
                    lines = columns["lines"][index]
                    fast = typed_lines(data_type, lines.values) if lines.is_valid else None
                if fast is not None:
                    if out["reason"]:
                        yield pa.RecordBatch.from_pydict(out, schema=out_schema)
                        out = empty()
                    yield from columnar(fast, provenance)
                    continue
                if text is not None:
                    items = csv_records(text)
                else:
                    unit_lines = columns["lines"][index].as_py() or []
                    items = ((n, line, split_line(line)) for n, line in enumerate(unit_lines, 1))
            for line_no, raw, fields in items:
                typed = fields if isinstance(fields, Quarantine) else typed_fields(data_type, fields)
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


# ---------------------------------------------------------------------------------------------------
# Driver side.


class Hdfs:
    """The few Hadoop FileSystem calls the idempotent publish needs, through the JVM gateway."""

    def __init__(self, spark: Any, location: str) -> None:
        self.jvm = spark._jvm
        conf = spark._jsc.hadoopConfiguration()
        self.fs = self.path(location).getFileSystem(conf)

    def path(self, text: str) -> Any:
        return self.jvm.org.apache.hadoop.fs.Path(text)

    def qualified(self, text: str) -> str:
        return str(self.fs.makeQualified(self.path(text)).toString())

    def exists(self, text: str) -> bool:
        return bool(self.fs.exists(self.path(text)))

    def files(self, folder: str) -> list[str]:
        """Qualified paths of all files under ``folder``, recursively (empty if it does not exist)."""
        if not self.exists(folder):
            return []
        found, iterator = [], self.fs.listFiles(self.path(folder), True)
        while iterator.hasNext():
            found.append(str(iterator.next().getPath().toString()))
        return found

    def children(self, folder: str) -> list[str]:
        if not self.exists(folder):
            return []
        return [str(s.getPath().toString()) for s in self.fs.listStatus(self.path(folder))]

    def glob(self, pattern: str) -> list[str]:
        statuses = self.fs.globStatus(self.path(pattern))
        return [] if statuses is None else [str(s.getPath().toString()) for s in statuses]

    def read_text(self, text: str) -> str:
        stream = self.fs.open(self.path(text))
        try:
            data = self.jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
        return str(data)

    def write_text(self, text: str, content: str) -> None:
        stream = self.fs.create(self.path(text), True)
        try:
            stream.write(bytearray(content.encode("utf-8")))
            stream.hsync()
        finally:
            stream.close()

    def delete(self, text: str, recursive: bool = False) -> None:
        self.fs.delete(self.path(text), recursive)

    def rename(self, source: str, target: str) -> None:
        if not self.fs.rename(self.path(source), self.path(target)):
            raise OSError(f"HDFS rename {source} -> {target} failed")

    def mkdirs(self, text: str) -> None:
        self.fs.mkdirs(self.path(text))


class Listener:
    """The ``foreachBatch`` function and its counters."""

    def __init__(self, spark: Any, args: argparse.Namespace) -> None:
        from spot_operators.envelope import MESSAGE_SCHEMA_FILE, SCHEMAS_DIR, SPOT_LIST_SCHEMA_FILE
        from spot_operators.listener_rows import table

        self.spark = spark
        self.args = args
        self.table = table(args.data_type)
        schema_file = SPOT_LIST_SCHEMA_FILE if args.message_format == "spot_list" else MESSAGE_SCHEMA_FILE
        self.schema_json = (SCHEMAS_DIR / schema_file).read_text(encoding="utf-8")
        self.hdfs = Hdfs(spark, args.table_location)
        self.table_location = self.hdfs.qualified(args.table_location)
        self.quarantine_location = self.hdfs.qualified(args.quarantine_location)
        self.tag = hashlib.sha256(self.hdfs.qualified(args.checkpoint).encode()).hexdigest()[:10]
        self.out_columns = (*self.table.columns, *self.table.partitions, *MESSAGE_COLUMNS, *QUARANTINE_EXTRA)
        self.counts: dict[str, Any] = {
            "batches": 0,
            "messages": 0,
            "duplicates": 0,
            "rows": 0,
            "quarantined": 0,
            "batch_ids": [],
            "hours": [],
            "quarantine_hours": [],
            "files": {},
        }
        self.load_log = self.hdfs.qualified(args.load_log) if args.load_log else ""

    def _pause(self, point: str, batch_id: int) -> None:
        if self.args.test_pause_at == point and batch_id == 0 and self.args.test_pause_marker:
            Path(self.args.test_pause_marker).write_text(point)
            log.warning("test hook: pausing at %s of batch %d", point, batch_id)
            time.sleep(3600)

    def __call__(self, df: Any, batch_id: int) -> None:
        from pyspark import StorageLevel
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        started = time.monotonic()
        args = self.args
        decode_args = (args.data_type, args.message_format, self.schema_json, args.pipeline)
        decoded_ddl = _ddl((*MESSAGE_COLUMNS, *DECODED_EXTRA, ("error", "STRING")))
        decoded = df.select("value", "topic", "partition", "offset").mapInArrow(
            lambda it: decode_messages(it, *decode_args), decoded_ddl
        )
        order = Window.partitionBy("file_digest", "segment_index").orderBy(
            "topic", "kafka_partition", "kafka_offset"
        )
        ranked = decoded.withColumn("_rank", F.row_number().over(order))
        ranked.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            # One pass over the cached messages for both counts.
            counted = ranked.agg(
                F.count(F.lit(1)).alias("messages"),
                F.sum(F.when(F.col("_rank") == 1, 1).otherwise(0)).alias("unique"),
            ).first()
            messages = int(counted["messages"]) if counted else 0
            duplicates = messages - int(counted["unique"] or 0) if counted else 0
            unique = ranked.filter("_rank = 1").drop("_rank")
            pointers = unique.filter("kind = 'POINTER'").select(
                *(n for n, _ in MESSAGE_COLUMNS), "pointer_path"
            )
            unit_columns = [F.col(n) for n, _ in MESSAGE_COLUMNS]
            units = unique.filter("kind <> 'POINTER'").select(
                *unit_columns, "lines", F.lit(None).cast("string").alias("text"), "error"
            )
            for pointer in pointers.collect():
                identity = [F.lit(pointer[n]).cast(t).alias(n) for n, t in MESSAGE_COLUMNS]
                path = pointer["pointer_path"]
                if self.hdfs.exists(path):
                    part = self.spark.read.text(path, wholetext=True).select(
                        *identity,
                        F.lit(None).cast("array<string>").alias("lines"),
                        F.col("value").alias("text"),
                        F.lit(None).cast("string").alias("error"),
                    )
                else:
                    part = self.spark.range(1).select(
                        *identity,
                        F.lit(None).cast("array<string>").alias("lines"),
                        F.lit(None).cast("string").alias("text"),
                        F.lit(f"staged CSV {path} does not exist").alias("error"),
                    )
                units = units.unionByName(part)
            data_type, out_columns = args.data_type, self.out_columns  # not self: it holds the JVM
            typed = units.mapInArrow(lambda it: type_units(it, data_type, out_columns), _ddl(out_columns))
            typed.persist(StorageLevel.MEMORY_AND_DISK)
            try:
                good = typed.filter("reason IS NULL").select(
                    *(n for n, _ in self.table.columns), *(n for n, _ in self.table.partitions)
                )
                # The columns and partitions of the <db>.quarantine table (hive_ddl.QUARANTINE).
                now = F.current_timestamp()
                bad = typed.filter("reason IS NOT NULL").select(
                    F.col("pipeline").cast("string").alias("pipeline"),
                    F.col("file_name").cast("string").alias("source_file"),
                    F.col("file_digest").cast("string").alias("file_digest"),
                    F.col("segment_index").cast("int").alias("segment"),
                    F.col("line_no").cast("bigint").alias("line_no"),
                    F.col("raw").cast("string").alias("raw"),
                    F.col("reason").cast("string").alias("reason"),
                    now.alias("quarantined_at"),
                    F.lit(args.data_type).alias("data_type"),
                    F.year(now).cast("smallint").alias("y"),
                    F.month(now).cast("tinyint").alias("m"),
                    F.dayofmonth(now).cast("tinyint").alias("d"),
                    F.hour(now).cast("tinyint").alias("h"),
                )
                hour = [F.col(n).cast("string").alias(n) for n, _ in self.table.partitions]
                entries = [
                    r.asDict()
                    for r in typed.groupBy(
                        "pipeline",
                        "file_name",
                        "file_digest",
                        "segment_index",
                        "segment_count",
                        "expected_rows",
                        *hour,
                    )
                    .agg(
                        F.sum(F.when(F.col("reason").isNull(), 1).otherwise(0)).alias("rows"),
                        F.sum(F.when(F.col("reason").isNotNull(), 1).otherwise(0)).alias("quarantined"),
                    )
                    .collect()
                ]
                # Every typed row is in exactly one load-log entry: the counts need no pass of their own.
                rows = sum(int(e["rows"]) for e in entries)
                quarantined = sum(int(e["quarantined"]) for e in entries)
                quarantine_hours = (
                    [
                        {n: str(r[n]) for n in ("y", "m", "d", "h")}
                        for r in bad.select("y", "m", "d", "h").distinct().collect()
                    ]
                    if quarantined
                    else []
                )
                partition_names = [n for n, _ in self.table.partitions]
                if rows:
                    self._publish(
                        good.repartition(*partition_names), self.table_location, batch_id, partition_names
                    )
                if quarantined:
                    self._publish(
                        bad.coalesce(1), self.quarantine_location, batch_id, list(QUARANTINE_PARTITIONS)
                    )
            finally:
                typed.unpersist()
        finally:
            ranked.unpersist()
        self._record_batch(batch_id, entries, quarantine_hours)
        for key, value in (
            ("batches", 1),
            ("messages", messages),
            ("duplicates", duplicates),
            ("rows", rows),
            ("quarantined", quarantined),
        ):
            self.counts[key] += value
        log.info(
            "batch %d: %d messages (%d duplicates dropped), %d rows, %d quarantined, %.1fs",
            batch_id,
            messages,
            duplicates,
            rows,
            quarantined,
            time.monotonic() - started,
        )

    def _record_batch(
        self, batch_id: int, entries: list[dict[str, Any]], quarantine_hours: list[dict[str, str]]
    ) -> None:
        """After the rows are in place: write the batch's load log, register its hours, update the result.

        The load log (one JSON line per pipeline, file, segment and hour) has a deterministic name per
        listener and batch, so a replayed batch overwrites it: the load DAG sums it to reconcile Hive's
        counts with what was published.
        """
        names = [n for n, _ in self.table.partitions]
        hours = sorted(
            {tuple(e[n] for n in names) for e in entries if e["rows"] and e[names[0]] is not None},
        )
        if self.load_log:
            lines = [
                json.dumps({**e, "batch_id": batch_id, "listener": self.tag}, sort_keys=True) for e in entries
            ]
            self.hdfs.write_text(
                f"{self.load_log}/{self.tag}/batch-{batch_id:010d}.jsonl", "\n".join(sorted(lines)) + "\n"
            )
        if self.args.register_table and hours:
            self._register(
                self.args.register_table,
                self.table_location,
                [dict(zip(names, h, strict=True)) for h in hours],
            )
        if self.args.register_quarantine_table and quarantine_hours:
            self._register(
                self.args.register_quarantine_table,
                self.quarantine_location,
                [{"data_type": self.args.data_type, **h} for h in quarantine_hours],
            )
        known = {tuple(h) for h in self.counts["hours"]}
        self.counts["hours"] = sorted(known | {tuple(h) for h in hours})
        seen_q = {tuple(sorted(h.items())) for h in self.counts["quarantine_hours"]}
        for h in quarantine_hours:
            if tuple(sorted(h.items())) not in seen_q:
                self.counts["quarantine_hours"].append(h)
        self.counts["batch_ids"].append(batch_id)
        for e in entries:
            total = self.counts["files"].setdefault(
                e["file_digest"],
                {"pipeline": e["pipeline"], "file_name": e["file_name"], "rows": 0, "quarantined": 0},
            )
            total["rows"] += int(e["rows"])
            total["quarantined"] += int(e["quarantined"])

    def _register(self, table: str, location: str, partitions: list[dict[str, str]]) -> None:
        """``ALTER TABLE ... ADD IF NOT EXISTS PARTITION`` for the hours a batch wrote (idempotent)."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*", table):
            raise ValueError(f"--register-table must be db.table, got {table!r}")
        clauses = []
        for partition in partitions:
            if not all(re.fullmatch(r"[A-Za-z0-9_]+", str(v)) for v in partition.values()):
                raise ValueError(f"unexpected partition value in {partition!r}")
            spec = ", ".join(f"`{k}`='{v}'" for k, v in partition.items())
            folder = "/".join(f"{k}={v}" for k, v in partition.items())
            clauses.append(f"PARTITION ({spec}) LOCATION '{location}/{folder}'")
        for start in range(0, len(clauses), 100):
            self.spark.sql(f"ALTER TABLE {table} ADD IF NOT EXISTS {' '.join(clauses[start : start + 100])}")
        log.info("registered %d partition(s) of %s", len(clauses), table)

    def _publish(self, frame: Any, location: str, batch_id: int, partitions: list[str]) -> None:
        """Write ``frame`` to staging, then move its files to deterministic names (see module doc)."""
        root = f"{location}/_staging/{self.tag}"
        staging = f"{root}/batch={batch_id}"
        writer = frame.write.mode("overwrite")
        if partitions:
            writer = writer.partitionBy(*partitions)
        writer.parquet(staging)
        self._pause("after-staging", batch_id)

        staging_q = self.hdfs.qualified(staging)
        staged: dict[str, list[str]] = {}
        for file in sorted(self.hdfs.files(staging_q)):
            name = file.rsplit("/", 1)[1]
            if not name.endswith(".parquet") or name.startswith(("_", ".")):
                continue
            relative = file[len(staging_q) + 1 : -len(name)].rstrip("/") or "."
            staged.setdefault(relative, []).append(file)

        # Manifest: target folders of this batch, with those of any crashed attempt of it.
        manifests = f"{root}/manifests"
        manifest = f"{manifests}/b{batch_id}.txt"
        folders = set(staged)
        if self.hdfs.exists(manifest):
            folders |= {line for line in self.hdfs.read_text(manifest).splitlines() if line.strip()}
        for old in self.hdfs.children(manifests):
            if old.rsplit("/", 1)[1] != f"b{batch_id}.txt":
                self.hdfs.delete(old)
        self.hdfs.write_text(manifest, "\n".join(sorted(folders)) + "\n")

        prefix = f"part-{self.tag}-b{batch_id}-"
        for folder in sorted(folders):
            target = location if folder == "." else f"{location}/{folder}"
            for existing in self.hdfs.glob(f"{target}/{prefix}*"):
                self.hdfs.delete(existing)
        moved = 0
        for folder in sorted(staged):
            target = location if folder == "." else f"{location}/{folder}"
            self.hdfs.mkdirs(target)
            for n, file in enumerate(staged[folder]):
                self.hdfs.rename(file, f"{target}/{prefix}{n:05d}.parquet")
                moved += 1
                if moved == 1:
                    self._pause("after-move", batch_id)
        self.hdfs.delete(staging_q, recursive=True)


def _ship_code(spark: Any) -> None:
    """Give executors spot_operators.listener_columns, listener_rows and tables (a zip, addPyFile)."""
    import spot_operators

    package = Path(spot_operators.__file__).resolve().parent
    folder = tempfile.mkdtemp(prefix="spot-listener-")
    archive = os.path.join(folder, "spot_listener_code.zip")
    with zipfile.ZipFile(archive, "w") as zipped:
        for module in SHIPPED_MODULES:
            zipped.write(package / module, f"spot_operators/{module}")
    spark.sparkContext.addPyFile(archive)


def write_json_atomically(path: str, payload: dict[str, Any]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".result-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, sort_keys=True)
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.appName(args.app_name or f"spot-listener-{args.data_type}")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    try:
        _ship_code(spark)
        listener = Listener(spark, args)
        reader = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", args.bootstrap)
            .option("subscribe", args.topics)
            .option("startingOffsets", "earliest")
            .option("failOnDataLoss", "true")
        )
        if args.max_offsets_per_trigger > 0:
            reader = reader.option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger))
        writer = (
            reader.load()
            .writeStream.foreachBatch(listener)
            .option("checkpointLocation", args.checkpoint)
            .queryName(f"spot_listener_{args.data_type}")
        )
        if args.mode == "availableNow":
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{args.batch_seconds} seconds")
        query = writer.start()
        log.info("listener %s started (%s): %s -> %s", query.id, args.mode, args.topics, args.table_location)
        query.awaitTermination()
        error = query.exception()
        if error is not None:
            raise RuntimeError(f"listener query {query.id} failed: {error}")
        return dict(listener.counts)
    finally:
        spark.stop()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        import spot_operators  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(PLUGINS_DIR))
    try:
        counts = run(args)
    except Exception:
        log.exception("listener failed (%s -> %s)", args.topics, args.table_location)
        return 1
    log.info("listener done: %s", counts)
    if args.result:
        write_json_atomically(args.result, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
