"""Benchmark job: the practical limit of the listener, a Kafka topic -> Parquet with no parsing at all.

Run by ``scripts/bench_listener.py`` beside the listener, on the same topics::

    spark-submit --jars "$(ls $SPOT_SPARK_JARS_DIR/*.jar | paste -sd,)" \\
        include/jobs/bench_plain_kafka_to_parquet.py --bootstrap 127.0.0.1:9092 --topic t \\
        --output /tmp/b/out --checkpoint /tmp/b/ckpt --result /tmp/b.json \\
        [--pointer-topic p --pointer-output /tmp/b/pout --pointer-checkpoint /tmp/b/pckpt] \\
        [--text-input '/tmp/b/stage/*.csv' --text-output /tmp/b/text]

Structured Streaming with ``trigger(availableNow=True)``, the same Kafka source options as the listener,
writing the raw ``value`` bytes (with topic, partition, offset) as Parquet: the limit of the INLINE
path. With ``--pointer-topic``, a second query does the least the POINTER path can do: per micro-batch
it collects the messages, takes the staged CSV path out of each envelope, reads those files as whole
texts (the listener's read) and appends them to Parquet, again without parsing a row. With
``--text-input`` it then also copies the staged CSV files to Parquet in one batch job. The ``--result``
JSON holds the messages read, the streaming batch durations Spark reports (``durationMs``), per query,
and the seconds of the text copy.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[2] / "plugins"))  # spot_operators, if not on PYTHONPATH

from spot_operators.job_support import kafka_stream, spark_session, streaming_timings, write_json_atomically

log = logging.getLogger("spot.jobs.bench_plain_kafka_to_parquet")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,...]")
    parser.add_argument("--topic", default="", help="a topic whose raw values go to Parquet")
    parser.add_argument("--output", default="", help="Parquet folder for the raw values")
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--result", required=True, help="local JSON file for the figures")
    parser.add_argument("--text-input", default="", help="HDFS glob of staged CSV files to copy as text")
    parser.add_argument("--text-output", default="", help="Parquet folder for the copied texts")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=0, help="0: one batch")
    parser.add_argument("--pointer-topic", default="", help="a topic of POINTER messages to resolve")
    parser.add_argument("--pointer-output", default="", help="Parquet folder for the pointed-to texts")
    parser.add_argument("--pointer-checkpoint", default="")
    parser.add_argument("--pointer-max-offsets-per-trigger", type=int, default=0, help="0: one batch")
    args = parser.parse_args(argv)
    if not (args.topic or args.pointer_topic):
        parser.error("give --topic, --pointer-topic or both")
    if args.topic and not (args.output and args.checkpoint):
        parser.error("--topic needs --output and --checkpoint")
    if args.pointer_topic and not (args.pointer_output and args.pointer_checkpoint):
        parser.error("--pointer-topic needs --pointer-output and --pointer-checkpoint")
    return args


def drained(query: Any, started: float) -> dict[str, Any]:
    """Wait for an availableNow query; its messages and Spark's batch timings."""
    query.awaitTermination()
    if query.exception() is not None:
        raise RuntimeError(f"query {query.name} failed: {query.exception()}")
    progress = [p for p in query.recentProgress if p.get("numInputRows", 0) > 0]
    timings = streaming_timings(progress)
    return {
        "messages": sum(p["numInputRows"] for p in progress),
        "batches": len(progress),
        "batch_ms": timings["duration_ms"].get("triggerExecution", 0),
        "add_batch_ms": timings["duration_ms"].get("addBatch", 0),
        "query_seconds": round(time.monotonic() - started, 2),
        **timings,
    }


def copy_pointed_texts(output: str) -> Any:
    """The ``foreachBatch`` of the pointer limit: the batch's staged CSVs -> Parquet, as whole texts."""
    from spot_operators.envelope import decode_message

    def copy(df: Any, batch_id: int) -> None:
        messages = [decode_message(bytes(row["value"])) for row in df.select("value").collect()]
        paths = sorted({m.pointer.hdfs_path for m in messages if m.pointer is not None})
        if paths:
            texts = df.sparkSession.read.text(paths, wholetext=True)
            texts.write.mode("append").parquet(output)
        log.info("pointer batch %d: %d messages, %d staged CSVs", batch_id, len(messages), len(paths))

    return copy


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Drain the topics to Parquet, then (optionally) copy the staged texts; return the figures."""
    spark = spark_session("spot-bench-plain-kafka-to-parquet")
    result: dict[str, Any] = {}
    try:
        if args.topic:
            started = time.monotonic()
            query = (
                kafka_stream(spark, args.bootstrap, args.topic, args.max_offsets_per_trigger)
                .select("value", "topic", "partition", "offset")
                .writeStream.format("parquet")
                .option("path", args.output)
                .option("checkpointLocation", args.checkpoint)
                .trigger(availableNow=True)
                .queryName("bench_plain_kafka_to_parquet")
                .start()
            )
            result.update(drained(query, started))
        if args.pointer_topic:
            started = time.monotonic()
            query = (
                kafka_stream(spark, args.bootstrap, args.pointer_topic, args.pointer_max_offsets_per_trigger)
                .writeStream.foreachBatch(copy_pointed_texts(args.pointer_output))
                .option("checkpointLocation", args.pointer_checkpoint)
                .trigger(availableNow=True)
                .queryName("bench_plain_pointer_texts_to_parquet")
                .start()
            )
            result["pointer"] = drained(query, started)
        if args.text_input:
            started = time.monotonic()
            texts = spark.read.text(args.text_input, wholetext=True)
            texts.write.mode("overwrite").parquet(args.text_output)
            result["text_seconds"] = round(time.monotonic() - started, 2)
            result["text_files"] = spark.read.parquet(args.text_output).count()
        return result
    finally:
        spark.stop()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        result = run(args)
    except Exception:
        log.exception("bench job failed (topic %s)", args.topic)
        return 1
    log.info("plain kafka -> parquet: %s", result)
    write_json_atomically(args.result, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
