"""Benchmark job: the practical limit of the listener, a Kafka topic -> Parquet with no parsing at all.

Run by ``scripts/bench_listener.py`` beside the listener, on the same topic::

    spark-submit --jars "$(ls $SPOT_SPARK_JARS_DIR/*.jar | paste -sd,)" \\
        include/jobs/bench_plain_kafka_to_parquet.py --bootstrap 127.0.0.1:9092 --topic t \\
        --output /tmp/b/out --checkpoint /tmp/b/ckpt --result /tmp/b.json \\
        [--text-input '/tmp/b/stage/*.csv' --text-output /tmp/b/text]

Structured Streaming with ``trigger(availableNow=True)``, the same Kafka source options as the listener,
writing the raw ``value`` bytes (with topic, partition, offset) as Parquet. With ``--text-input`` it
then also copies the staged CSV files (the pointer path's input) to Parquet as whole texts, the same
read the listener does for a pointer, again without parsing. The ``--result`` JSON holds the messages
read, the streaming batch durations Spark reports (``durationMs``) and the seconds of the text copy.
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

from spot_operators.job_support import spark_session, streaming_timings, write_json_atomically

log = logging.getLogger("spot.jobs.bench_plain_kafka_to_parquet")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,...]")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--output", required=True, help="Parquet folder for the raw values")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--result", required=True, help="local JSON file for the figures")
    parser.add_argument("--text-input", default="", help="HDFS glob of staged CSV files to copy as text")
    parser.add_argument("--text-output", default="", help="Parquet folder for the copied texts")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=0, help="0: one batch")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Drain the topic to Parquet, then (optionally) copy the staged texts; return the figures."""
    spark = spark_session("spot-bench-plain-kafka-to-parquet")
    try:
        started = time.monotonic()
        reader = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", args.bootstrap)
            .option("subscribe", args.topic)
            .option("startingOffsets", "earliest")
            .option("failOnDataLoss", "true")
        )
        if args.max_offsets_per_trigger > 0:
            reader = reader.option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger))
        query = (
            reader.load()
            .select("value", "topic", "partition", "offset")
            .writeStream.format("parquet")
            .option("path", args.output)
            .option("checkpointLocation", args.checkpoint)
            .trigger(availableNow=True)
            .queryName("bench_plain_kafka_to_parquet")
            .start()
        )
        query.awaitTermination()
        if query.exception() is not None:
            raise RuntimeError(f"query failed: {query.exception()}")
        query_seconds = time.monotonic() - started
        progress = [p for p in query.recentProgress if p.get("numInputRows", 0) > 0]
        timings = streaming_timings(progress)
        result: dict[str, Any] = {
            "messages": sum(p["numInputRows"] for p in progress),
            "batches": len(progress),
            "batch_ms": timings["duration_ms"].get("triggerExecution", 0),
            "add_batch_ms": timings["duration_ms"].get("addBatch", 0),
            "query_seconds": round(query_seconds, 2),
            **timings,
        }
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
