"""Spot listener: Kafka ingest messages -> typed rows in the Hive table's Parquet folders, exactly once.

Submitted with spark-submit (Kafka connector jars from ``spot_operators.spark_jars``)::

    spark-submit --jars "$(ls $SPOT_SPARK_JARS_DIR/*.jar | paste -sd,)" include/jobs/spot_listener.py \\
        --data-type flow --topics spot-flow_internals --bootstrap 127.0.0.1:9092 \\
        --table-location /user/spot/flow/hive --quarantine-location /user/spot/quarantine/hive \\
        --checkpoint /user/spot/flow/checkpoints/listener --mode availableNow --result /tmp/r.json

What one micro-batch (``foreachBatch(df, batch_id)``) does, in one Spark job per pass (two when the
batch holds POINTER messages), with no shuffle and no cached frame. This file is the driver's side; the
passes' tasks run :mod:`spot_operators.listener_pass` (decoding in
:mod:`spot_operators.listener_messages`), which it ships to the executors (``SHIPPED_MODULES``):

1. pass over the Kafka values (``mapInArrow``, :func:`listen_messages`; for a batch of at most
   ``--driver-batch-messages`` messages by Spark's offset log, the same function in the driver over the
   values collected without Python workers: a POINTER batch's two or three messages, a quiet
   continuous trigger; :mod:`spot_operators.streaming_offsets`): decode each with fastavro
   (``--message-format ingest``: the project's envelope, ``include/schemas/spot_ingest_message.v2.avsc``
   and its predecessor v1;
   ``spot_list``: Apache Spot's Distributed Collector ``list.avsc``; a value that does not decode, has an
   unknown schema version or another data type becomes one quarantine row, it never fails the batch),
   type its INLINE lines in the same task, and return per task the Parquet bytes of its good rows (one
   file per hour, written with pyarrow) and a small report: the messages, the load-log entries (rows
   and quarantined per unit and hour) and the quarantine rows;
2. drop duplicate messages of the batch: one per ``(file_digest, segment_index)``, the lowest
   ``(topic, partition, offset)`` (a producer retry or a re-published file inside one batch). They are
   known from the reports; when there are any (rare) the staged files are dropped and the pass runs
   again without them before anything is published;
3. second pass for POINTER messages (:func:`listen_texts`): each staged CSV read from HDFS as one text
   (``spark.read.text(wholetext=True)``: RFC 4180 fields may span lines, and line numbers stay exact),
   found by its URI in the task's map of messages (no join); a pointer whose file is refused (missing,
   a folder, outside the staging root) becomes a quarantine row, reported by the driver
   (:func:`refused_texts_report`);
4. typing (:func:`unit_items`): every CSV line with :mod:`spot_operators.listener_rows` (column count,
   Hive types and ranges, UTC hour partition from ``unix_tstamp``, or ``p_date``/``p_time`` for proxy);
   a unit whose lines are all clean is typed column-wise by :mod:`spot_operators.listener_columns` to the
   same values, and consecutive clean INLINE messages are typed together (``INLINE_GROUP_ROWS``);
5. the driver collects the passes' Parquet files (``toArrow``: compressed, about a tenth of the CSV),
   writes them into staging a few at a time, then publishes them under
   ``--table-location`` in ``y=/m=/d=/h=`` folders
   (Spot's layout, the folders spot-ml reads; the layout of Spark's ``partitionBy``), bad rows (Spark,
   from the reports, or typed again when a task had more than ``BAD_LIMIT``) under
   ``--quarantine-location`` in the columns and ``data_type=/y=/m=/d=/h=`` folders (hour quarantined,
   UTC) of the ``<db>.quarantine`` table, both through the idempotent publish below. The load log and
   the counts come from the reports: no pass of their own.

Exactly-once effect. Spark writes the batch's offset range to ``<checkpoint>/offsets/<id>`` before it
runs the batch and ``<checkpoint>/commits/<id>`` after ``foreachBatch`` returns; after a crash in between
it runs the batch again with the same ``batch_id`` and the same offsets, so the sink only has to make a
batch's effect idempotent per ``batch_id``. The batch is first written to
``<location>/_staging/<tag>/batch=<id>`` (deleted first: a replay replaces a half-written staging
folder; ``_``-prefixed folders are hidden from Hive and Spark), then published by
:func:`spot_operators.listener_publish.publish_batch`: a manifest of the target folders (with those of
any crashed attempt), the deletion of whatever an earlier attempt moved there, and atomic renames to
``part-<tag>-b<id>-<n>.parquet``, so every row ends up in place once. Between a crash and the replay,
readers can see part of that batch (at-least-once visibility, exactly-once result). ``<tag>`` comes from
the checkpoint path: two listeners (two pipelines of one type, each with its own checkpoint) sharing a
table location never delete each other's files.

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
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"
sys.path.append(str(PLUGINS_DIR))  # spot_operators, if not on PYTHONPATH

from spot_operators.listener_messages import MESSAGE_NAMES, duplicates, message_key  # noqa: E402
from spot_operators.listener_pass import (  # noqa: E402
    BAD_COLUMNS,
    PASS_COLUMNS,
    arrow_schema,
    listen_messages,
    listen_texts,
    refused_texts_report,
    spark_ddl,
)
from spot_operators.listener_publish import (  # noqa: E402
    AFTER_STAGING,
    PUBLISH_POINTS,
    glob_escaped,
    publish_batch,
    staging_folder,
)
from spot_operators.streaming_offsets import messages_between  # noqa: E402

log = logging.getLogger("spot.jobs.spot_listener")
SHIPPED_MODULES = (
    "__init__.py",
    "tables.py",
    "envelope.py",
    "listener_rows.py",
    "listener_columns.py",
    "listener_messages.py",
    "listener_pass.py",
)
"""What executors import (the typing pass, what it types with, and their own imports): shipped as a
zip with addPyFile. A unit test checks that they import no ``spot_operators`` module left out."""

QUARANTINE_PARTITIONS = ("data_type", "y", "m", "d", "h")
BAD_LIMIT = 20_000
"""Quarantine rows one task reports to the driver; above it the driver recomputes them with Spark."""
ARROW_MESSAGES_PER_BATCH = 4
"""Kafka messages per Arrow batch sent to a typing task (see :func:`run`)."""
HDFS_THREADS = 32
"""HDFS calls the driver makes at once (staged files, clearing and moving folders): each is a
NameNode round trip, and a file's close waits for its block, so they overlap well."""
DRIVER_BATCH_MESSAGES = 8
"""Default of ``--driver-batch-messages``. A message is at most Kafka's request size (1 MiB by
default), so the driver holds and types at most a few MiB, which takes it about as long as a Spark job
takes to start its Python workers on them."""
STAGED_HEAP_FACTOR = 13
"""Heap a task takes to read a staged CSV whole, per byte of the file (measured: 1g reads 75 MB, not 100)."""


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
    parser.add_argument(
        "--staging-root",
        default="",
        help="HDFS folder that holds every staged CSV a POINTER message may name, e.g. /user/spot/flow/stage "
        "(a path outside it is quarantined, not read; default: any path on the table's file system)",
    )
    parser.add_argument("--mode", choices=("availableNow", "continuous"), default="availableNow")
    parser.add_argument("--batch-seconds", type=int, default=30, help="continuous mode trigger interval")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=0, help="0: no limit")
    parser.add_argument(
        "--driver-batch-messages",
        type=int,
        default=DRIVER_BATCH_MESSAGES,
        help="a batch of at most this many Kafka messages is typed in the driver, without a Spark job "
        "(0: always in Spark's tasks)",
    )
    parser.add_argument("--message-format", choices=("ingest", "spot_list"), default="ingest")
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
    parser.add_argument("--test-pause-at", choices=PUBLISH_POINTS, default="", help=argparse.SUPPRESS)
    parser.add_argument("--test-pause-marker", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------------
# Driver side.


def task_heap_bytes(spark: Any) -> int:
    """Heap one task may use: the driver's heap over its cores in local mode (tasks run in the driver),
    else the executor memory over the executor's cores."""
    sc = spark.sparkContext
    if sc.master.startswith("local"):
        heap = int(sc._jvm.java.lang.Runtime.getRuntime().maxMemory())
        cores = sc.defaultParallelism
    else:
        heap = int(sc._jsc.sc().executorMemory()) * 1024 * 1024
        cores = int(sc.getConf().get("spark.executor.cores", "1"))
    return heap // max(cores, 1)


def heavy_staged_files(sizes: dict[str, int], task_heap: int) -> list[str]:
    """Warnings for staged CSVs too big to read whole in one task's heap (``STAGED_HEAP_FACTOR``).

    Collect stages pieces of ``kafka.staged_csv_max_bytes``; a bigger file comes from a raised limit or
    an older publisher, and its batch may fail with ``OutOfMemoryError`` until memory is raised. The
    warning names the file, so the driver log says which one and what to do before the failure.
    """
    return [
        f"staged CSV {path} is {size / 2**20:.0f} MiB: reading it whole takes about "
        f"{size * STAGED_HEAP_FACTOR / 2**20:.0f} MiB of heap, "
        f"and a task has about {task_heap / 2**20:.0f} MiB; "
        "if this batch fails with OutOfMemoryError, raise spark-streaming.driver_memory (local master) or "
        "spark_executor_memory (README: Troubleshooting)"
        for path, size in sorted(sizes.items())
        if size * STAGED_HEAP_FACTOR > task_heap
    ]


class Hdfs:
    """The few Hadoop FileSystem calls the idempotent publish needs, through the JVM gateway."""

    def __init__(self, spark: Any, location: str) -> None:
        # Looked up once: each attribute of a py4j JVM view is a round trip in which the JVM searches
        # its class path for a class of that name ("org", "org.apache", ...), which costs more than
        # the NameNode call the path is for.
        self.path_class = spark._jvm.org.apache.hadoop.fs.Path
        self.io_utils = spark._jvm.org.apache.commons.io.IOUtils
        conf = spark._jsc.hadoopConfiguration()
        self.fs = self.path(location).getFileSystem(conf)

    def path(self, text: str) -> Any:
        return self.path_class(text)

    def qualified(self, text: str) -> str:
        return str(self.fs.makeQualified(self.path(text)).toString())

    def uri(self, text: str) -> str:
        """The qualified path as a URI (``%20`` for a space): how Spark's ``_metadata.file_path`` names it."""
        return str(self.fs.makeQualified(self.path(text)).toUri().toString())

    def exists(self, text: str) -> bool:
        return bool(self.fs.exists(self.path(text)))

    def kind(self, text: str) -> tuple[str, int]:
        """``file``, ``folder`` or ``missing``, and the file's length: one NameNode call."""
        statuses = self.fs.globStatus(self.path(glob_escaped(text)))
        if not statuses:
            return "missing", 0
        return ("file", int(statuses[0].getLen())) if statuses[0].isFile() else ("folder", 0)

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
            data = self.io_utils.toString(stream, "UTF-8")
        finally:
            stream.close()
        return str(data)

    def write_bytes(self, text: str, data: bytes) -> None:
        stream = self.fs.create(self.path(text), True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

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
        from spot_operators.envelope import message_schema_jsons
        from spot_operators.listener_rows import table

        self.spark = spark
        self.args = args
        self.table = table(args.data_type)
        self.schema_jsons = message_schema_jsons(args.message_format)
        self.hdfs = Hdfs(spark, args.table_location)
        # HDFS calls run a few at a time (each is a NameNode round trip, a close waits for its block).
        # One pool for the listener's life: each Python thread keeps its own gateway connection.
        self.pool = ThreadPoolExecutor(max_workers=HDFS_THREADS, thread_name_prefix="spot-hdfs")
        self.writes: list[Future[None]] = []  # staged files of the batch still being written
        self.table_location = self.hdfs.qualified(args.table_location)
        self.staging_root = self.hdfs.qualified(args.staging_root) if args.staging_root else ""
        self.task_heap = task_heap_bytes(spark)
        self.quarantine_location = self.hdfs.qualified(args.quarantine_location)
        checkpoint = self.hdfs.qualified(args.checkpoint)
        self.tag = hashlib.sha256(checkpoint.encode()).hexdigest()[:10]
        self.offset_log = f"{checkpoint}/offsets"  # Spark's, see _few_messages
        self.offset_entry: tuple[int, str] | None = None  # the last batch's id and offset-log entry
        self.counts: dict[str, Any] = {
            "batches": 0,
            "batches_typed_in_driver": 0,
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
        self.batch_rows: dict[int, int] = {}  # rows typed per batch id, for the progress report
        self.phases: dict[str, float] = {}  # seconds per phase of the current batch
        self.mark = time.monotonic()

    def _phase(self, name: str) -> None:
        """Add the time since the last mark to phase ``name`` of the batch (logged with its counts)."""
        now = time.monotonic()
        self.phases[name] = self.phases.get(name, 0.0) + now - self.mark
        self.mark = now

    def _few_messages(self, batch_id: int) -> bool:
        """Whether batch ``batch_id`` holds at most ``--driver-batch-messages`` messages, by Spark's
        offset log (this batch's entry and the previous one); False when that is unknown (the first
        batch of a checkpoint, a new partition, an entry this listener cannot read)."""
        limit = self.args.driver_batch_messages
        if limit <= 0 or batch_id == 0:
            return False
        try:
            if self.offset_entry and self.offset_entry[0] == batch_id - 1:
                start = self.offset_entry[1]  # read by the last batch
            else:
                start = self.hdfs.read_text(f"{self.offset_log}/{batch_id - 1}")
            end = self.hdfs.read_text(f"{self.offset_log}/{batch_id}")
        except Exception as exc:  # Py4JJavaError: a purged or missing entry
            log.info("batch %d: offset log not readable (%s), typing it in Spark's tasks", batch_id, exc)
            return False
        self.offset_entry = (batch_id, end)
        count = messages_between(start, end)
        return count is not None and count <= limit

    def _pause(self, point: str, batch_id: int) -> None:
        if self.args.test_pause_at == point and batch_id == 0 and self.args.test_pause_marker:
            Path(self.args.test_pause_marker).write_text(point)
            log.warning("test hook: pausing at %s of batch %d", point, batch_id)
            time.sleep(3600)

    def __call__(self, df: Any, batch_id: int) -> None:
        started = time.monotonic()
        args = self.args
        good_columns = (*self.table.columns, *self.table.partitions)
        staging = staging_folder(self.table_location, self.tag, batch_id)
        self._settle_writes(check=False)  # none, unless an earlier attempt failed while writing
        self.hdfs.delete(staging, recursive=True)  # what a crashed attempt of this batch left

        # 1. One pass over the Kafka messages: decode, type INLINE lines, Parquet of their good rows
        #    (per task and hour), and a report per task: messages, load-log entries, quarantine rows.
        kafka = df.select("value", "topic", "partition", "offset")
        decode_args = (args.data_type, args.message_format, self.schema_jsons, args.pipeline, good_columns)
        self.phases, self.mark = {}, time.monotonic()
        phase = self._phase
        # A batch of a few messages (POINTER messages, a quiet continuous trigger) is typed here, in
        # the driver: the same pass, without a Spark job that starts Python workers for it.
        in_driver = self._few_messages(batch_id)
        phase("setup")
        kafka_rows = kafka.toArrow().to_batches() if in_driver else None

        def messages_frame(skip: frozenset[Any], bad_only: bool = False) -> Any:
            """The messages pass (``PASS_COLUMNS``; ``BAD_COLUMNS`` with ``bad_only``) as a DataFrame."""
            if kafka_rows is not None:
                return self.spark.createDataFrame(messages_typed_here(skip, bad_only))
            ddl = spark_ddl(BAD_COLUMNS if bad_only else PASS_COLUMNS)
            return kafka.mapInArrow(
                lambda it: listen_messages(it, *decode_args, skip, BAD_LIMIT, bad_only), ddl
            )

        def messages_typed_here(skip: frozenset[Any], bad_only: bool = False) -> Any:
            output = listen_messages(kafka_rows, *decode_args, skip, BAD_LIMIT, bad_only)
            return pa.Table.from_batches(
                output, schema=arrow_schema(BAD_COLUMNS if bad_only else PASS_COLUMNS)
            )

        def messages_output(skip: frozenset[Any]) -> Any:
            """The messages pass's output as an Arrow table, typed here or by Spark's tasks."""
            if kafka_rows is not None:
                return messages_typed_here(skip)
            return messages_frame(skip).toArrow()

        staged, reports = self._collect(messages_output(frozenset()), staging)
        found = [m for r in reports for m in r["messages"]]
        # 2. One message per (file_digest, segment_index): the lowest (topic, partition, offset). Duplicates
        #    are rare (a producer retry, a file re-published inside the batch): then the staged files are
        #    dropped and the pass is redone without them, before anything is published.
        skip = duplicates(found)
        if skip:
            self._settle_writes()
            self.hdfs.delete(staging, recursive=True)
            staged, _ = self._collect(messages_output(skip), staging)
        entries = [e for r in reports for k, e in r["entries"] if tuple(k) not in skip]
        bad = [row for r in reports for k, row in r["bad"] if tuple(k) not in skip]
        overflow = any(r["overflow"] for r in reports)

        # 3. POINTER messages: each staged CSV as one text, typed in a second pass.
        pointers = sorted(
            (m for m in found if m["kind"] == "POINTER" and message_key(m) not in skip), key=message_key
        )
        texts, units_by_uri, refused = self._pointer_texts(pointers)
        data_type = args.data_type  # not self: it holds the JVM

        def texts_frame(bad_only: bool = False) -> Any:
            ddl = spark_ddl(BAD_COLUMNS if bad_only else PASS_COLUMNS)
            return texts.mapInArrow(
                lambda it: listen_texts(it, data_type, good_columns, units_by_uri, BAD_LIMIT, bad_only), ddl
            )

        refused_bad = []
        if refused:
            report = refused_texts_report(data_type, good_columns, refused)
            entries.extend(e for _, e in report["entries"])
            refused_bad = [row for _, row in report["bad"]]
            bad.extend(refused_bad)
        phase("pointer-plan")
        if texts is not None:
            more, text_reports = self._collect(
                texts_frame().toArrow(), staging, first=sum(map(len, staged.values())), label="pointer-"
            )
            for folder, files in more.items():
                staged.setdefault(folder, []).extend(files)
            for r in text_reports:
                entries.extend(e for _, e in r["entries"])
                bad.extend(row for _, row in r["bad"])
                overflow = overflow or r["overflow"]

        # Every typed row is in exactly one load-log entry: the counts need no pass of their own.
        rows = sum(int(e["rows"]) for e in entries)
        quarantined = sum(int(e["quarantined"]) for e in entries)
        phase("reports")
        if rows:
            self._publish(self.table_location, batch_id, staging, staged)
        phase("publish")
        quarantine_hours: list[dict[str, str]] = []
        if quarantined:
            if overflow:  # too many to report: type them again, keeping only the quarantine rows
                raw = messages_frame(skip, bad_only=True)
                if texts is not None:
                    raw = raw.unionByName(texts_frame(bad_only=True))
                if refused_bad:
                    raw = raw.unionByName(self._bad_frame(refused_bad))
            else:
                raw = self._bad_frame(bad)
            folders = self._publish_quarantine(raw, batch_id)
            for folder in folders:
                parts = dict(part.split("=", 1) for part in folder.split("/"))
                quarantine_hours.append({n: parts[n] for n in ("y", "m", "d", "h")})
        phase("quarantine")
        self._record_batch(batch_id, entries, quarantine_hours)
        phase("record")
        self.batch_rows[batch_id] = rows
        for key, value in (
            ("batches", 1),
            ("batches_typed_in_driver", int(in_driver)),
            ("messages", len(found)),
            ("duplicates", len(skip)),
            ("rows", rows),
            ("quarantined", quarantined),
        ):
            self.counts[key] += value
        log.info(
            "batch %d: %d messages (%d duplicates dropped)%s, %d rows, %d quarantined, %.1fs (%s)",
            batch_id,
            len(found),
            len(skip),
            ", typed in the driver" if in_driver else "",
            rows,
            quarantined,
            time.monotonic() - started,
            ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.phases.items() if seconds >= 0.01),
        )

    def _collect(
        self, collected: Any, staging: str, first: int = 0, label: str = ""
    ) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
        """Take a typing pass's output (an Arrow table of ``PASS_COLUMNS``) and start writing its
        Parquet files under ``staging/t/<hour folder>/``.

        A Spark pass is one job (``toArrow``): its tasks run side by side, and their output is small
        (compressed Parquet, about a tenth of the CSV it came from, plus a report per task), so the
        driver takes it whole, as Arrow batches (``collect`` pickles each row in the JVM and unpickles
        it here: 0.05-0.09 s more per 250,000-row batch). ``toLocalIterator`` would hold less but runs
        one partition per job, one core busy at a time. The HDFS writes run a few at a time in the
        background (an HDFS close waits for its block report) while the batch goes on: the next
        pass, the manifest and the clearing of the target folders; :meth:`_publish` waits for them
        before its first move.
        Returns the staged files per target folder (numbered from ``first``) and the tasks'
        reports; ``label`` prefixes the pass's phase names in the batch's log line.
        """
        reports: list[dict[str, Any]] = []
        staged: dict[str, list[str]] = {}
        number = first
        self._phase(f"{label}typing")
        columns = (collected.column(name).to_pylist() for name in ("kind", "folder", "data"))
        for kind, folder, data in zip(*columns, strict=True):
            if kind == "report":
                reports.append(json.loads(data))
            else:
                target = f"{staging}/t/{folder}/part-{number:05d}.parquet"
                number += 1
                staged.setdefault(folder, []).append(target)
                self.writes.append(self.pool.submit(self.hdfs.write_bytes, target, data))
        self._phase(f"{label}staging")
        return staged, reports

    def _settle_writes(self, check: bool = True) -> None:
        """Wait for every staged file being written; with ``check``, raise the first write's error."""
        writes, self.writes = self.writes, []
        errors = [future.exception() for future in writes]
        failed = [error for error in errors if error is not None]
        if check and failed:
            raise failed[0]

    def _pointer_texts(
        self, pointers: list[dict[str, Any]]
    ) -> tuple[Any, dict[str, list[dict[str, Any]]], list[tuple[dict[str, Any], str]]]:
        """The staged CSVs of the POINTER messages as ``(uri, text)`` rows (None if there are none),
        the messages of each URI, and the messages whose file is refused (with the reason).

        All the texts come from one ``spark.read.text`` (one listing and one plan, not one per file),
        each tagged with its file's URI; the typing task finds a text's messages by that URI, so there
        is no join (and no job to broadcast one).
        """
        from pyspark.sql import functions as F

        statuses = self.pool.map(lambda p: self._staged_kind(p["pointer_path"]), pointers)
        reasons = {
            "missing": "does not exist",
            "folder": "is a folder, not a file",  # Spark would read every file in it
            "foreign": "is not on the table's file system",
            "outside": f"is outside the staging folder {self.staging_root}",
        }
        sizes: dict[str, int] = {}  # the staged files to read, by path
        units_by_uri: dict[str, list[dict[str, Any]]] = {}
        refused: list[tuple[dict[str, Any], str]] = []
        for pointer, (kind, size) in zip(pointers, statuses, strict=True):
            path = pointer["pointer_path"]
            ident = {name: pointer[name] for name in MESSAGE_NAMES}
            if kind == "file":
                sizes[path] = size
                units_by_uri.setdefault(self.hdfs.uri(path), []).append(ident)
            else:
                refused.append((ident, f"staged CSV {path} {reasons[kind]}"))
        for warning in heavy_staged_files(sizes, self.task_heap):
            log.warning("%s", warning)
        paths = sorted(sizes)
        if not paths:
            return None, units_by_uri, refused
        # Spark reads each path as a glob pattern: escaped, a name with [, { or * is read as itself.
        texts = self.spark.read.text([glob_escaped(p) for p in paths], wholetext=True).select(
            F.col("_metadata.file_path").alias("uri"), F.col("value").alias("text")
        )
        return texts, units_by_uri, refused

    def _staged_kind(self, path: str) -> tuple[str, int]:
        """What a POINTER's path names: ``file`` (read it), or why not: ``foreign`` (another file
        system, or no path at all), ``outside`` (not under ``--staging-root``), ``missing``, ``folder``;
        and a file's length.

        A Kafka message must not make the listener read any file its Spark user can read, nor fail
        the batch (Hadoop refuses a path of another file system with an exception).
        """
        from py4j.protocol import Py4JError
        from pyspark.errors import IllegalArgumentException

        try:  # path logic only, no NameNode call: an error here is the path's, not the cluster's
            qualified = self.hdfs.qualified(path)
        except (IllegalArgumentException, Py4JError):  # "Wrong FS" arrives as pyspark's own error
            return "foreign", 0
        if self.staging_root and not qualified.startswith(self.staging_root.rstrip("/") + "/"):
            return "outside", 0
        return self.hdfs.kind(path)

    def _bad_frame(self, bad: list[tuple[Any, ...]]) -> Any:
        """The reported quarantine rows (``BAD_COLUMNS``) as a DataFrame."""
        schema = arrow_schema(BAD_COLUMNS)
        table = pa.Table.from_pylist(
            [dict(zip(schema.names, row, strict=True)) for row in bad], schema=schema
        )
        return self.spark.createDataFrame(table)

    def _publish_quarantine(self, raw: Any, batch_id: int) -> list[str]:
        """Write quarantine rows in the ``<db>.quarantine`` layout, publish them; the hour folders."""
        from pyspark.sql import functions as F

        # The columns and partitions of the <db>.quarantine table (hive_ddl.QUARANTINE).
        now = F.current_timestamp()
        bad = raw.select(
            F.col("pipeline").cast("string").alias("pipeline"),
            F.col("file_name").cast("string").alias("source_file"),
            F.col("file_digest").cast("string").alias("file_digest"),
            F.col("segment_index").cast("int").alias("segment"),
            F.col("line_no").cast("bigint").alias("line_no"),
            F.col("raw").cast("string").alias("raw"),
            F.col("reason").cast("string").alias("reason"),
            now.alias("quarantined_at"),
            F.lit(self.args.data_type).alias("data_type"),
            F.year(now).cast("smallint").alias("y"),
            F.month(now).cast("tinyint").alias("m"),
            F.dayofmonth(now).cast("tinyint").alias("d"),
            F.hour(now).cast("tinyint").alias("h"),
        )
        staging = staging_folder(self.quarantine_location, self.tag, batch_id)
        self.hdfs.delete(staging, recursive=True)
        bad.coalesce(1).write.mode("overwrite").partitionBy(*QUARANTINE_PARTITIONS).parquet(f"{staging}/q")
        return self._publish(self.quarantine_location, batch_id, staging)

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
                quarantine_hours,
                quarantine=True,
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

    def _register(
        self,
        table: str,
        location: str,
        hours: list[dict[str, str]],
        quarantine: bool = False,
    ) -> None:
        """``ALTER TABLE ... ADD IF NOT EXISTS PARTITION`` for the hours a batch wrote (idempotent).

        The statements are :func:`spot_operators.hql.register_hours_sql`'s, for this listener's table
        spec (or the quarantine table's, whose ``data_type`` partition comes before the hour) under the
        name ``--register-table`` (``--register-quarantine-table``) gives it.
        """
        from dataclasses import replace

        from spot_operators.hive_ddl import QUARANTINE
        from spot_operators.hql import register_hours_sql

        database, name = _split_table(table)
        spec = replace(QUARANTINE if quarantine else self.table, name=name)
        leading = {"data_type": self.args.data_type} if quarantine else None
        statements = register_hours_sql(database, spec, hours, location, leading=leading)
        for statement in statements:
            self.spark.sql(statement)
        log.info("registered %d partition(s) of %s", len(hours), table)

    def _publish(
        self, location: str, batch_id: int, staging: str, staged: dict[str, list[str]] | None = None
    ) -> list[str]:
        """Move the files staged under ``staging`` to their deterministic names
        (:func:`spot_operators.listener_publish.publish_batch`), after the staged writes are closed."""

        def at(point: str) -> None:
            if point == AFTER_STAGING:
                self._phase("publish-wait")  # the staged files closed, the manifest durable, folders cleared
            self._pause(point, batch_id)

        return publish_batch(
            self.hdfs, self.pool, location, self.tag, batch_id, staging, staged, self._settle_writes, at
        )


def _split_table(table: str) -> tuple[str, str]:
    database, dot, name = table.partition(".")
    if not (
        dot
        and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database)
        and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
    ):
        raise ValueError(f"--register-table must be db.table, got {table!r}")
    return database, name


def _ship_code(spark: Any) -> None:
    """Give executors the typing pass and what it imports (``SHIPPED_MODULES``, a zip, addPyFile)."""
    import spot_operators

    package = Path(spot_operators.__file__).resolve().parent
    folder = tempfile.mkdtemp(prefix="spot-listener-")
    archive = os.path.join(folder, "spot_listener_code.zip")
    with zipfile.ZipFile(archive, "w") as zipped:
        for module in SHIPPED_MODULES:
            zipped.write(package / module, f"spot_operators/{module}")
    spark.sparkContext.addPyFile(archive)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from spot_operators.job_support import kafka_stream, spark_session, streaming_timings
    from spot_operators.kafka_options import LISTENER_KAFKA_OPTIONS_ENV, options_from_env, redacted

    spark = spark_session(args.app_name or f"spot-listener-{args.data_type}")
    # Kafka values reach the Python workers in Arrow batches of this many messages (Spark's default
    # is 10,000: a task's whole share, so Python would wait for the task's last fetch before typing
    # its first message). Small batches let fetching and typing overlap; a message is up to ~1 MB.
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_MESSAGES_PER_BATCH))
    listener: Listener | None = None
    try:
        _ship_code(spark)
        listener = Listener(spark, args)
        # TLS/SASL settings of the Kafka connection, translated by the operator (kafka_options.py).
        kafka_options = options_from_env(os.environ.get(LISTENER_KAFKA_OPTIONS_ENV))
        log.info("Kafka %s, options %s", args.bootstrap, redacted(kafka_options) or "none (PLAINTEXT)")
        source = kafka_stream(spark, args.bootstrap, args.topics, args.max_offsets_per_trigger, kafka_options)
        writer = (
            source.writeStream.foreachBatch(listener)
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
        # Spark's own timing of the batches (the last 100): what `make bench` compares like with like.
        timing = streaming_timings(query.recentProgress)
        for batch in timing["progress"]:
            batch["rows"] = listener.batch_rows.get(batch["batch"], 0)
        timing["trigger_ms"] = timing["duration_ms"].get("triggerExecution", 0)
        timing["add_batch_ms"] = timing["duration_ms"].get("addBatch", 0)
        return {**listener.counts, **timing}
    finally:
        if listener is not None:
            listener.pool.shutdown(wait=True)
        spark.stop()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        counts = run(args)
    except Exception:
        log.exception("listener failed (%s -> %s)", args.topics, args.table_location)
        return 1
    log.info("listener done: %s", counts)
    if args.result:
        from spot_operators.job_support import write_json_atomically

        write_json_atomically(args.result, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
