"""Benchmark job: decoding the ingest envelope with Spark's ``from_avro`` versus fastavro in ``mapInArrow``.

Run by ``scripts/bench_listener.py`` on its inline topic::

    spark-submit --jars "$(ls $SPOT_SPARK_JARS_DIR/*.jar | paste -sd,)" include/jobs/bench_avro_decode.py \\
        --bootstrap 127.0.0.1:9092 --topic t --result /tmp/avro.json

The topic is read once (batch Kafka source) and cached, so every timed step measures decoding only:

* ``from_avro``: ``pyspark.sql.avro.functions.from_avro`` (built into spark-sql since Spark 4.1) with
  ``mode=PERMISSIVE``, then the length of each message's CSV text (the current envelope carries an
  INLINE segment as one text), into the ``noop`` sink;
* ``fastavro``: the listener's own ``decode_message`` (:mod:`spot_operators.listener_messages`) in
  ``mapInArrow``, then the same length;
* both again followed by the listener's typing (``type_units``, :mod:`spot_operators.listener_pass`),
  the part that decoding feeds in a real batch: after ``from_avro`` in a ``mapInArrow`` of the decoded
  units, with fastavro in the same ``mapInArrow`` as the decoding (as the listener does: the values
  cross to Python once).

It also checks what each decoder does with broken values (truncated, garbage, empty, trailing bytes, a
bad enum index): the listener must turn each into one quarantine row and never fail the batch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

JOBS_DIR = Path(__file__).resolve().parent
sys.path.append(str(JOBS_DIR))  # spot_listener (its _ship_code)
sys.path.append(str(JOBS_DIR.parents[1] / "plugins"))  # spot_operators, if not on PYTHONPATH

from spot_operators.envelope import MESSAGE_SCHEMA_FILE, SCHEMA_VERSION, SCHEMAS_DIR  # noqa: E402
from spot_operators.job_support import spark_session, write_json_atomically  # noqa: E402

log = logging.getLogger("spot.jobs.bench_avro_decode")
SCHEMA_FILE = SCHEMAS_DIR / MESSAGE_SCHEMA_FILE
"""The envelope the collect side writes (the bench's topic is published as collect does)."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,...]")
    parser.add_argument("--topic", required=True, help="a topic of INLINE flow messages")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each variant")
    parser.add_argument("--result", required=True, help="local JSON file for the figures")
    return parser.parse_args(argv)


DECODED_EXTRA = (
    ("kind", "STRING"),
    ("pointer_path", "STRING"),
    ("lines", "ARRAY<STRING>"),
    ("text", "BINARY"),
    ("error", "STRING"),
)
"""What :func:`decode_messages` adds to the listener's ``MESSAGE_COLUMNS``."""


def decode_messages(
    batches: Any, data_type: str, message_format: str, schema_json: str, pipeline: str
) -> Any:
    """Kafka (value, topic, partition, offset) batches -> one decoded row per message (``mapInArrow``),
    with the listener's own :func:`~spot_operators.listener_messages.decode_message`: the fastavro half."""
    import pyarrow as pa

    from spot_operators.listener_messages import MESSAGE_COLUMNS, decode_message, reading_schemas
    from spot_operators.listener_pass import arrow_schema

    schemas = reading_schemas({SCHEMA_VERSION: schema_json})  # as the listener reads it
    out = arrow_schema((*MESSAGE_COLUMNS, *DECODED_EXTRA))
    for batch in batches:
        columns = batch.to_pydict()
        rows = [
            decode_message(value, topic, partition, offset, schemas, data_type, message_format, pipeline)
            for value, topic, partition, offset in zip(
                columns["value"], columns["topic"], columns["partition"], columns["offset"], strict=True
            )
        ]
        yield pa.RecordBatch.from_pylist([{name: r[name] for name in out.names} for r in rows], schema=out)


def broken_values() -> list[tuple[str, bytes]]:
    """A good envelope and the ways a value can be broken on the wire."""
    from spot_operators.envelope import IngestMessage, encode_message

    good = encode_message(
        IngestMessage(
            "INLINE", "bench", "flow", "nfcapd.x", "d" * 64, 0, 1, 1674671760, ("a,b,c", "d,e,f", "g,h,i")
        )
    )
    return [
        ("good", good),
        ("truncated to 1 byte", good[:1]),
        ("truncated to half", good[: len(good) // 2]),
        ("truncated by 1 byte", good[:-1]),
        ("garbage", b"\x00garbage that is not avro"),
        ("empty", b""),
        ("trailing bytes", good + b"\x01\x02junk"),
        ("bad enum index", good[:1] + b"\x0e" + good[2:]),
    ]


def failure_check(spark: Any, schema_json: str) -> list[dict[str, Any]]:
    """What from_avro (PERMISSIVE and FAILFAST) and the listener's fastavro decode make of broken values."""
    import pyarrow as pa
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    cases = broken_values()
    frame = spark.createDataFrame(cases, "case STRING, value BINARY").coalesce(1)
    permissive = frame.select(
        "case", from_avro("value", schema_json, {"mode": "PERMISSIVE"}).alias("m")
    ).collect()
    batch = pa.RecordBatch.from_pydict(
        {
            "value": [v for _, v in cases],
            "topic": ["t"] * len(cases),
            "partition": [0] * len(cases),
            "offset": list(range(len(cases))),
        }
    )
    fast = next(decode_messages(iter([batch]), "flow", "ingest", schema_json, "")).to_pylist()
    report = []
    for (case, value), row, decoded in zip(cases, permissive, fast, strict=True):
        entry: dict[str, Any] = {"case": case, "bytes": len(value)}
        m = row["m"]
        entry["from_avro_permissive"] = (
            "NULL" if m is None else f"record kind={m['kind']} rows={m['row_count']}"
        )
        try:
            one = frame.filter(F.col("case") == case)
            got = one.select(from_avro("value", schema_json, {"mode": "FAILFAST"}).alias("m")).collect()
            entry["from_avro_failfast"] = "NULL" if got[0]["m"] is None else "record"
        except Exception as exc:  # the point: FAILFAST fails the job
            entry["from_avro_failfast"] = f"raises {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        entry["fastavro_listener"] = (
            f"quarantine: {decoded['error'][:120]}"
            if decoded["kind"] == "ERROR"
            else f"record kind={decoded['kind']} rows={decoded['expected_rows']}"
        )
        report.append(entry)
    return report


def timed(label: str, action: Callable[[], Any]) -> float:
    started = time.monotonic()
    action()
    seconds = time.monotonic() - started
    log.info("%s: %.2fs", label, seconds)
    return seconds


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time every variant ``--repeat`` times on the cached topic; return the figures."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    from spot_listener import _ship_code
    from spot_operators.listener_messages import MESSAGE_COLUMNS
    from spot_operators.listener_pass import QUARANTINE_EXTRA, spark_ddl, type_units
    from spot_operators.listener_rows import table

    spark = spark_session("spot-bench-avro-decode")
    try:
        _ship_code(spark)  # the listener's typing pass and its imports, for the executors
        schema_json = SCHEMA_FILE.read_text(encoding="utf-8")
        result: dict[str, Any] = {"failure_check": failure_check(spark, schema_json)}

        raw = (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", args.bootstrap)
            .option("subscribe", args.topic)
            .option("startingOffsets", "earliest")
            .option("endingOffsets", "latest")
            .load()
            .select("value", "topic", "partition", "offset")
        )
        raw.persist(StorageLevel.MEMORY_AND_DISK)
        result["messages"] = raw.count()
        result["read_seconds"] = round(
            timed("cached read", lambda: raw.write.format("noop").mode("overwrite").save()), 2
        )

        envelope = raw.select(
            from_avro("value", schema_json, {"mode": "PERMISSIVE"}).alias("m"), "topic", "partition", "offset"
        )
        decoded_ddl = spark_ddl((*MESSAGE_COLUMNS, *DECODED_EXTRA))
        decode_args = ("flow", "ingest", schema_json, "")
        fast = raw.mapInArrow(lambda it: decode_messages(it, *decode_args), decoded_ddl)

        avro_texts = envelope.select(
            "m.file_digest", "m.segment_index", "m.kind", "m.row_count", F.length("m.csv").alias("size")
        )
        fast_texts = fast.select(
            "file_digest", "segment_index", "kind", "expected_rows", F.length("text").alias("size")
        )
        result["rows_from_avro"] = avro_texts.agg(F.sum("row_count")).first()[0]
        result["rows_fastavro"] = fast_texts.agg(F.sum("expected_rows")).first()[0]

        spec = table("flow")
        out_columns = (*spec.columns, *spec.partitions, *MESSAGE_COLUMNS, *QUARANTINE_EXTRA)
        # The listener's provenance columns, taken from the Kafka record or the decoded envelope.
        special = {
            "topic": F.col("topic"),
            "kafka_partition": F.col("partition"),
            "kafka_offset": F.col("offset"),
            "expected_rows": F.col("m.row_count"),
        }
        null_lines = F.lit(None).cast("array<string>")
        avro_units = envelope.select(
            *(special.get(n, F.col(f"m.{n}")).cast(t).alias(n) for n, t in MESSAGE_COLUMNS),
            null_lines.alias("lines"),
            F.col("m.csv").alias("text"),  # bytes, as fastavro gives them
            # PERMISSIVE turns a value it cannot decode into a record of nulls (not a null record).
            F.when(F.col("m.schema_version").isNull(), F.lit("undecodable message")).alias("error"),
        )
        out_ddl = spark_ddl(out_columns)

        def typed(units: Any) -> Any:
            return units.mapInArrow(lambda it: type_units(it, "flow", out_columns), out_ddl)

        def decoded_and_typed(batches: Any) -> Any:  # as the listener does: one Python pass
            return type_units(decode_messages(batches, *decode_args), "flow", out_columns)

        variants = {
            "from_avro (decode only)": avro_texts,
            "fastavro mapInArrow (decode only)": fast_texts,
            "from_avro + type_units": typed(avro_units),
            "fastavro + type_units, one mapInArrow": raw.mapInArrow(decoded_and_typed, out_ddl),
        }
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for run_no in range(args.repeat):
            for name, frame in variants.items():
                label = f"{name} (run {run_no + 1})"
                seconds[name].append(
                    round(timed(label, lambda f=frame: f.write.format("noop").mode("overwrite").save()), 2)
                )
        result["seconds"] = seconds
        raw.unpersist()
        return result
    finally:
        spark.stop()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        result = run(args)
    except Exception:
        log.exception("avro decode bench failed (topic %s)", args.topic)
        return 1
    log.info("avro decode bench: %s", json.dumps(result))
    write_json_atomically(args.result, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
