"""Listener throughput on ~1,000,000 flow rows, beside a plain Kafka -> Parquet job (``make bench``).

In one run, against the local stack (Kafka, HDFS, Spark in local[2]):

1. generates flow rows from the dissector's output of the reference capture (3018 flows), copied
   with shifted times (one 5-minute file per copy) and varied source addresses;
2. publishes them as the collect step does: INLINE Avro segments (``segments.inline_messages`` and
   ``publish.publish_messages``, one file digest per copy) to a fresh topic; stages bigger CSV files
   in HDFS as collect does (pieces of at most ``kafka.staged_csv_max_bytes``) and publishes their
   POINTER messages to a second topic;
3. runs, ``--repeat`` times, each path beside its practical limit
   (``include/jobs/bench_plain_kafka_to_parquet.py``, the same topic read as the listener reads it and
   written as Parquet with no parsing: for INLINE the raw values, for POINTER the staged CSVs the
   messages name, read as whole texts), then the listener (``include/jobs/spot_listener.py --mode
   availableNow``) on that topic, each with a fresh checkpoint;
4. runs ``include/jobs/bench_avro_decode.py`` (from_avro versus fastavro) on the inline topic;
5. measures micro-batch latency: one file published, then a listener availableNow run (median of N);
6. prints rows/s, the ratio listener / limit, and deletes its topics and HDFS folders.

Not a test: it prints figures and never fails on speed. Usage: ``python scripts/bench_listener.py
[--rows N] [--repeat N] [--latency-runs N] [--skip-avro]`` (with ``scripts/env.sh`` sourced).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from spot_operators.envelope import IngestMessage  # noqa: E402
from spot_operators.rows import HourPartition, Row  # noqa: E402
from spot_operators.segments import csv_line, inline_messages  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "flow" / "nfcapd.202301251836"
JOBS = ROOT / "include" / "jobs"
LISTENER = JOBS / "spot_listener.py"
PLAIN = JOBS / "bench_plain_kafka_to_parquet.py"
AVRO = JOBS / "bench_avro_decode.py"
FILE_SECONDS = 300  # one copy of the sample = one 5-minute nfcapd file
SPARK_TIMEOUT = 3600
# from_avro's expression (AvroDataToCatalyst) is not in the pyspark 4.3.0 wheel; spark-avro's last
# release, 4.1.1, holds just it (the rest of Avro moved into spark-sql in 4.1) and loads on Spark 4.3.
SPARK_AVRO = "org.apache.spark:spark-avro_2.13:4.1.1"
LIMITS = {
    "inline": "limit inline: raw values -> Parquet",
    "pointer": "limit pointer: texts -> Parquet",
}
"""The practical limit of each path: its topic read as the listener reads it, the data written as
Parquet with no parsing (INLINE: the raw Kafka values; POINTER: the staged CSVs the messages name,
read as whole texts)."""
TARGET = {True: "   (target >= 0.6)", False: "   (for reference)"}
BATCH_LINE = re.compile(r"batch (\d+): (\d+) messages .*?, (\d+) rows, (\d+) quarantined, ([0-9.]+)s")


def bootstrap_servers() -> str:
    return f"{os.environ.get('SPOT_BIND_HOST', '127.0.0.1')}:{os.environ.get('SPOT_KAFKA_PORT', '9092')}"


# --------------------------------------------------------------------------------------------------
# Data


def base_rows() -> list[Row]:
    """The dissector's rows of the reference capture (what collect would publish)."""
    from spot_operators.dissectors.flow import dissect_flow_file

    return [r for r in dissect_flow_file(SAMPLE) if isinstance(r, Row)]


def shifted(row: Row, copy: int, times: dict[int, tuple[str, ...]]) -> Row:
    """``row`` of copy ``copy``: received ``copy`` files later, source address varied (IPv4)."""
    fields = list(row.fields)
    epoch = int(fields[1]) + copy * FILE_SECONDS
    time_fields = times.get(epoch)
    if time_fields is None:
        t = datetime.fromtimestamp(epoch, tz=UTC)
        time_fields = times[epoch] = (
            t.strftime("%Y-%m-%d %H:%M:%S"),
            str(epoch),
            *(str(v) for v in (t.year, t.month, t.day, t.hour, t.minute, t.second)),
        )
    fields[0:8] = time_fields
    sip = fields[9]
    if ":" not in sip:
        head, _, last = sip.rpartition(".")
        fields[9] = f"{head}.{(int(last) + copy) % 256}"
    return Row(tuple(fields), HourPartition.of_epoch(epoch), row.line_no)


def copies_of(rows: list[Row], total: int) -> list[list[Row]]:
    """``total`` rows as files of ``len(rows)`` rows each (the last one shorter)."""
    times: dict[int, tuple[str, ...]] = {}
    files, done, copy = [], 0, 0
    while done < total:
        take = rows[: total - done]
        files.append([shifted(r, copy, times) for r in take])
        done += len(take)
        copy += 1
    return files


# --------------------------------------------------------------------------------------------------
# Kafka and HDFS


def create_topic(name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap_servers()})
    for future in admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)]
    ).values():
        future.result(timeout=60)


def delete_topics(names: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap_servers()})
    for name, future in admin.delete_topics(names, operation_timeout=30).items():
        try:
            future.result(timeout=60)
        except Exception as exc:  # cleanup goes on; say what is left behind
            print(f"  could not delete topic {name}: {exc}")


def template(name: str, digest: str) -> IngestMessage:
    return IngestMessage("INLINE", "bench", "flow", name, digest, 0, 1)


def publish_inline(producer: Any, topic: str, files: list[list[Row]], failed: Path) -> tuple[int, int]:
    """Each file's INLINE segments, as collect publishes them; returns (messages, bytes)."""
    from spot_operators.config import load_ingest_config
    from spot_operators.publish import publish_messages

    max_request_size = load_ingest_config().kafka.max_request_size
    messages = total_bytes = 0
    for rows in files:
        digest = uuid.uuid4().hex * 2
        name = f"nfcapd.{datetime.fromtimestamp(int(rows[0].fields[1]), tz=UTC):%Y%m%d%H%M}"
        segments = inline_messages(rows, template=template(name, digest), max_request_size=max_request_size)
        report = publish_messages(producer, topic, segments, failed_dir=failed)
        messages += report.messages
        total_bytes += report.bytes
    return messages, total_bytes


def stage_pointers(
    hdfs: Any, producer: Any, topic: str, files: list[list[Row]], folder: str, failed: Path, max_bytes: int
) -> tuple[int, int]:
    """Stage each file's CSV in HDFS as collect does: pieces of at most ``max_bytes``
    (``staged_csv.write_csv_pieces``), stored verified and one POINTER message each
    (``staged_csv.stage_pointer_messages``); returns (messages, bytes)."""
    from spot_operators.publish import publish_messages
    from spot_operators.staged_csv import stage_pointer_messages, write_csv_pieces

    staged_bytes = messages = 0
    for n, rows in enumerate(files):
        with tempfile.TemporaryDirectory(prefix="bench-pieces-") as tmp:
            records = ((csv_line(r.fields) + "\n", r.partition) for r in rows)
            pieces = write_csv_pieces(Path(tmp), records, max_bytes)
            name = f"bench-{n:04d}"
            segments = stage_pointer_messages(
                hdfs, pieces, template(name, f"{n:064d}"), f"{folder}/stage/{name}"
            )
        publish_messages(producer, topic, segments, failed_dir=failed)
        messages += len(segments)
        staged_bytes += sum(piece.bytes for piece in pieces)
    return messages, staged_bytes


# --------------------------------------------------------------------------------------------------
# Spark jobs


@dataclass
class Submitted:
    """One spark-submit: wall seconds, its log, the result JSON it wrote."""

    wall: float
    log: str
    result: dict[str, Any] = field(default_factory=dict)


def spark_avro_jar(work: Path) -> str | None:
    """The spark-avro jar (from_avro) resolved with Maven into ``work``, or None if it cannot be.

    The pyspark wheel's spark-sql holds the Avro data source but not ``AvroDataToCatalyst``, the
    expression behind ``from_avro``: that class still ships in the separate spark-avro artifact.
    """
    folder = work / "avro-jar"
    try:
        subprocess.run(
            ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={SPARK_AVRO}", f"-DoutputDirectory={folder}"],
            check=True,
            capture_output=True,
            timeout=600,
            cwd=work,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"  cannot resolve {SPARK_AVRO} with Maven ({type(exc).__name__}); from_avro skipped")
        return None
    jars = sorted(folder.glob("*.jar"))
    return str(jars[0]) if jars else None


def spark_submit(
    app: Path, args: list[str], name: str, work: Path, driver_memory: str, extra_jars: tuple[str, ...] = ()
) -> Submitted:
    """spark-submit ``app`` in local[2] with the connector jars, as the DAGs do; fails loudly."""
    from spot_operators.spark_jars import connector_jars

    command = [
        "spark-submit",
        "--master",
        "local[2]",
        "--conf",
        "spark.driver.host=127.0.0.1",
        "--conf",
        "spark.driver.bindAddress=127.0.0.1",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.sql.shuffle.partitions=2",
        "--driver-memory",
        driver_memory,
        "--jars",
        ",".join([*connector_jars(), *extra_jars]),
        "--name",
        name,
        str(app),
        *args,
    ]
    log_path = work / f"{name}.log"
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        process = subprocess.run(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            timeout=SPARK_TIMEOUT,
            check=False,
            env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
        )
    wall = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{name} exited {process.returncode}; log tail:\n{text[-4000:]}")
    return Submitted(wall, text)


def run_plain(
    topic: str,
    base: str,
    label: str,
    work: Path,
    memory: str,
    text_input: str = "",
    max_offsets: int = 0,
    pointers: bool = False,
) -> Submitted:
    """The limit job on ``topic``: raw values -> Parquet, or with ``pointers`` the staged CSVs its
    POINTER messages name -> Parquet as texts (the result is then that query's figures)."""
    result = work / f"plain-{label}.json"
    option = "--pointer-" if pointers else "--"  # the job's options for a pointer topic or a plain one
    args = ["--bootstrap", bootstrap_servers(), "--result", str(result)]
    args += [f"{option}topic", topic, f"{option}max-offsets-per-trigger", str(max_offsets)]
    args += [
        f"{option}output",
        f"{base}/plain-{label}/out",
        f"{option}checkpoint",
        f"{base}/plain-{label}/checkpoint",
    ]
    if text_input:
        args += ["--text-input", text_input, "--text-output", f"{base}/plain-{label}/text"]
    submitted = spark_submit(PLAIN, args, f"bench-plain-{label}", work, memory)
    figures = json.loads(result.read_text())
    submitted.result = figures["pointer"] if pointers else figures
    return submitted


def run_listener(
    topic: str, base: str, label: str, work: Path, memory: str, staging_root: str, max_offsets: int = 0
) -> Submitted:
    """One listener availableNow run on ``base``'s checkpoint (fresh the first time); the staged CSVs
    of its POINTER messages lie under ``staging_root``."""
    result = work / f"listener-{label}-{uuid.uuid4().hex[:6]}.json"
    args = [
        "--data-type",
        "flow",
        "--topics",
        topic,
        "--bootstrap",
        bootstrap_servers(),
        "--table-location",
        f"{base}/flow/hive",
        "--staging-root",
        staging_root,
        "--quarantine-location",
        f"{base}/quarantine/hive",
        "--checkpoint",
        f"{base}/flow/checkpoints/listener",
        "--mode",
        "availableNow",
        "--result",
        str(result),
        "--max-offsets-per-trigger",
        str(max_offsets),
    ]
    submitted = spark_submit(LISTENER, args, f"bench-listener-{label}", work, memory)
    submitted.result = json.loads(result.read_text())
    batches = [m.groups() for m in BATCH_LINE.finditer(submitted.log)]
    submitted.result["batch_seconds"] = sum(float(b[4]) for b in batches)  # inside foreachBatch
    return submitted


# --------------------------------------------------------------------------------------------------


def rate(rows: float, seconds: float) -> str:
    return f"{rows / seconds:12,.0f}" if seconds > 0 else f"{'-':>12}"


def median_line(ratios: list[float]) -> str:
    """The figure to read of a ratio measured once per run: its median (the runs spread by about 0.3
    on a shared 2-core machine), with the range."""
    spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
    return f"median {statistics.median(ratios):.2f} of {len(ratios)} runs ({spread})"


def steady_state(
    progress: list[dict[str, int]], rows_per_message: float | None = None
) -> tuple[float, float]:
    """(rows, seconds) of the batches after the first: the first pays for starting Python workers,
    loading classes and opening consumers once per application, not per row.

    Rows are the listener's typed rows, or ``messages * rows_per_message`` for the plain job, which
    does not parse (the bench's INLINE segments hold nearly the same number of rows each, its staged
    CSVs ``--pointer-file-rows`` each).
    """
    later = sorted(progress, key=lambda p: p["batch"])[1:]
    rows = sum(p["messages"] * rows_per_message if rows_per_message else p["rows"] for p in later)
    return rows, sum(p["trigger_ms"] for p in later) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="flow rows to publish (each path)")
    parser.add_argument("--pointer-file-rows", type=int, default=100_000, help="rows per POINTER file")
    parser.add_argument(
        "--staged-csv-max-bytes",
        type=int,
        default=None,
        help="size of the staged pieces (default: kafka.staged_csv_max_bytes of the config)",
    )
    parser.add_argument("--partitions", type=int, default=2, help="partitions of the bench topics")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each throughput measurement (read the ratios' median)"
    )
    parser.add_argument(
        "--batches", type=int, default=4, help="micro-batches per run (maxOffsetsPerTrigger); 1: one batch"
    )
    parser.add_argument("--latency-runs", type=int, default=5, help="0 skips the latency measurement")
    parser.add_argument("--skip-avro", action="store_true", help="skip the from_avro/fastavro job")
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--logs", default="", help="keep the Spark jobs' logs in this folder")
    args = parser.parse_args()
    if not SAMPLE.exists():
        print(f"the sample capture {SAMPLE} is missing (shared/ must sit beside the project)")
        return 1
    from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

    from spot_operators.config import load_ingest_config
    from spot_operators.hooks.kafka import IdempotentProducerHook

    if args.staged_csv_max_bytes is None:
        args.staged_csv_max_bytes = load_ingest_config().kafka.staged_csv_max_bytes

    tag = f"{datetime.now(tz=UTC):%Y%m%d%H%M%S}-{os.getpid()}"
    inline_topic, pointer_topic, latency_topic = (
        f"bench-listener-{k}-{tag}" for k in ("inline", "pointer", "latency")
    )
    base = f"/tmp/bench-listener-{tag}"
    hdfs = WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()
    producer = IdempotentProducerHook(
        "spot_kafka", load_ingest_config().kafka.max_request_size
    ).get_producer()
    topics = [inline_topic, pointer_topic, latency_topic]
    memory = args.driver_memory
    figures: list[tuple[str, int, float, float]] = []  # label, rows, wall, batch seconds
    steady: dict[str, list[tuple[float, float]]] = {}  # limit/inline/pointer: (rows, seconds) per run
    try:
        with tempfile.TemporaryDirectory(prefix="spot-bench-listener-") as tmp:
            work = Path(args.logs or tmp)
            work.mkdir(parents=True, exist_ok=True)
            for topic in topics:
                create_topic(topic, args.partitions)
            rows = base_rows()
            print(f"{len(rows)} flows from {SAMPLE.name}; generating {args.rows:,} rows ...", flush=True)
            started = time.monotonic()
            files = copies_of(rows, args.rows)
            total = sum(len(f) for f in files)
            print(f"  {len(files)} files of <= {len(rows)} rows in {time.monotonic() - started:.1f}s")
            started = time.monotonic()
            messages, sent = publish_inline(producer, inline_topic, files, work / "failed")
            print(
                f"  inline: {messages} messages, {sent / 1e6:.1f} MB to {inline_topic} "
                f"in {time.monotonic() - started:.1f}s",
                flush=True,
            )
            flat = [r for f in files for r in f]
            big = [flat[i : i + args.pointer_file_rows] for i in range(0, len(flat), args.pointer_file_rows)]
            del flat
            started = time.monotonic()
            staged, staged_bytes = stage_pointers(
                hdfs, producer, pointer_topic, big, base, work / "failed", args.staged_csv_max_bytes
            )
            print(
                f"  pointer: {len(big)} CSV files of {args.pointer_file_rows:,} rows staged as {staged} "
                f"files of <= {args.staged_csv_max_bytes:,} bytes ({staged_bytes / 1e6:.1f} MB) under "
                f"{base}/stage, {staged} messages to {pointer_topic} in {time.monotonic() - started:.1f}s\n",
                flush=True,
            )

            per_batch = {  # maxOffsetsPerTrigger: --batches micro-batches per run
                "inline": -(-messages // args.batches) if args.batches > 1 else 0,
                "pointer": -(-staged // args.batches) if args.batches > 1 else 0,
            }
            rows_per_unit = {"inline": total / messages, "pointer": total / staged}
            for run_no in range(1, args.repeat + 1):
                print(f"run {run_no} of {args.repeat}", flush=True)
                for label, topic in (("inline", inline_topic), ("pointer", pointer_topic)):
                    # Each path beside its own limit, one after the other: drift on this shared
                    # machine then touches both sides of a ratio alike.
                    plain = run_plain(
                        topic,
                        base,
                        f"{label}-{run_no}",
                        work,
                        memory,
                        f"{base}/stage/*.csv" if label == "inline" else "",
                        per_batch[label],
                        pointers=label == "pointer",
                    )
                    p = plain.result
                    print(f"  limit    {label:<7}: {p}", flush=True)
                    figures.append((LIMITS[label], total, plain.wall, p["batch_ms"] / 1000))
                    if "text_seconds" in p:
                        figures.append(("limit: staged CSVs in one batch job", total, 0.0, p["text_seconds"]))
                    steady.setdefault(f"{label} limit", []).append(
                        steady_state(p["progress"], rows_per_unit[label])
                    )
                    listened = run_listener(
                        topic,
                        f"{base}/{label}-{run_no}",
                        f"{label}-{run_no}",
                        work,
                        memory,
                        f"{base}/stage",
                        per_batch[label],
                    )
                    r = listened.result
                    shown = {
                        k: r.get(k)
                        for k in (
                            "batches",
                            "messages",
                            "rows",
                            "quarantined",
                            "batch_seconds",
                            "trigger_ms",
                            "duration_ms",
                        )
                    }
                    print(f"  listener {label:<7}: {shown}, wall {listened.wall:.1f}s", flush=True)
                    if r["rows"] != total or r["quarantined"]:  # figures of a wrong load mean nothing
                        raise SystemExit(
                            f"listener {label} run {run_no}: expected {total} rows and no quarantine, "
                            f"got {shown}"
                        )
                    # Spark's triggerExecution, as for the plain job (foreachBatch time alone flatters).
                    batch = r["trigger_ms"] / 1000 if r.get("trigger_ms") else r["batch_seconds"]
                    figures.append((f"listener {label}", r["rows"], listened.wall, batch))
                    steady.setdefault(label, []).append(steady_state(r["progress"]))

            jar = None if args.skip_avro else spark_avro_jar(work)
            if jar:
                print("\nfrom_avro vs fastavro (decode only, cached Kafka values) ...", flush=True)
                result = work / "avro.json"
                spark_submit(
                    AVRO,
                    ["--bootstrap", bootstrap_servers(), "--topic", inline_topic, "--result", str(result)],
                    "bench-avro-decode",
                    work,
                    memory,
                    (jar,),
                )
                avro = json.loads(result.read_text())
                for check in avro["failure_check"]:
                    print(f"  {json.dumps(check)}")
                print(
                    f"  {avro['messages']} messages, rows {avro['rows_from_avro']} / {avro['rows_fastavro']}"
                )
                print(f"  cached read alone: {avro['read_seconds']}s")
                for name, seconds in avro["seconds"].items():
                    rates = ", ".join(f"{avro['rows_fastavro'] / s:,.0f}" for s in seconds)
                    print(f"  {name:<36} {seconds} s -> {rates} rows/s")

            latencies: list[float] = []
            if args.latency_runs:
                print(
                    f"\nmicro-batch latency: publish one file, listener availableNow (x{args.latency_runs})"
                )
                times: dict[int, tuple[str, ...]] = {}
                for n in range(args.latency_runs):
                    one = [shifted(r, 10_000 + n, times) for r in rows]
                    started = time.monotonic()
                    publish_inline(producer, latency_topic, [one], work / "failed")
                    listened = run_listener(
                        latency_topic, f"{base}/latency", f"latency-{n}", work, memory, f"{base}/stage"
                    )
                    latencies.append(time.monotonic() - started)
                    print(
                        f"  {latencies[-1]:.1f}s (spark-submit {listened.wall:.1f}s, batch "
                        f"{listened.result['batch_seconds']:.1f}s, rows {listened.result['rows']})",
                        flush=True,
                    )

        print(
            f"\n{'measurement':<36} {'rows':>10} {'wall s':>8} {'rows/s':>12} {'batch s':>8} {'rows/s':>12}"
        )
        for label, n, wall, batch in figures:
            print(f"{label:<36} {n:>10,} {wall:8.1f} {rate(n, wall)} {batch:8.1f} {rate(n, batch)}")
        comparisons = (("inline", "inline"), ("pointer", "pointer"), ("pointer", "inline"))
        for path, limit in comparisons:
            runs = [(w, b) for label, _, w, b in figures if label == f"listener {path}"]
            limits = [(w, b) for label, _, w, b in figures if label == LIMITS[limit]]
            # Throughput ratio = limit seconds / listener seconds (same rows).
            pairs = list(zip(runs, limits, strict=True))
            wall_ratios = [lim_w / lis_w for (lis_w, _), (lim_w, _) in pairs]
            batch_ratios = [lim_b / lis_b for (_, lis_b), (_, lim_b) in pairs]
            ratios = [f"wall {w:.2f}, batch {b:.2f}" for w, b in zip(wall_ratios, batch_ratios, strict=True)]
            print(f"listener {path} / {limit} limit (per run): {'; '.join(ratios)}{TARGET[path == limit]}")
            if batch_ratios:
                print(f"  {median_line(batch_ratios)} (batch)")
        if args.batches > 1 and steady:  # none with --repeat 0 (latency only)
            print(f"\nsteady state (batches after the first of each run; {args.batches} batches per run):")
            for path in ("inline limit", "inline", "pointer limit", "pointer"):
                figure = ", ".join(f"{rate(r, t).strip()} rows/s ({t:.1f}s)" for r, t in steady[path])
                print(f"  {path:<14} {figure}")
            for path, limit in comparisons:
                values = [
                    (r / t) / (lr / lt) if t and lt else None
                    for (r, t), (lr, lt) in zip(steady[path], steady[f"{limit} limit"], strict=True)
                ]
                ratios = ["-" if v is None else f"{v:.2f}" for v in values]
                print(
                    f"  listener {path} / {limit} limit (per run): {', '.join(ratios)}{TARGET[path == limit]}"
                )
                measured = [v for v in values if v is not None]
                if measured:
                    print(f"    {median_line(measured)}")
        if latencies:
            print(f"micro-batch latency, median of {len(latencies)}: {statistics.median(latencies):.1f}s")
        return 0
    finally:
        delete_topics(topics)
        try:
            hdfs.delete(base, recursive=True)
        except Exception as exc:
            print(f"could not delete HDFS {base}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
