"""Smoke job: one Kafka topic -> Parquet in HDFS with Structured Streaming, then a read-back summary.

Submitted with spark-submit (the Kafka connector jars come from ``spot_operators.spark_jars``)::

    spark-submit --jars "$(ls $SPOT_SPARK_JARS_DIR/*.jar | paste -sd,)" \\
        include/jobs/smoke_kafka_to_parquet.py --bootstrap 127.0.0.1:9092 --topic t \\
        --output hdfs:///tmp/t/out --checkpoint hdfs:///tmp/t/ckpt --result /tmp/t.json

Reads the topic from the earliest offsets with ``trigger(availableNow=True)`` (everything present at
start, then stop), writes ``key, value, topic, partition, offset`` as Parquet, waits for the query to
end, reads the Parquet back and writes ``{"rows": n, "values": [sorted values as UTF-8 text]}`` to the
local ``--result`` file. Any failure exits non-zero.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[2] / "plugins"))  # spot_operators, if not on PYTHONPATH

from spot_operators.job_support import kafka_stream, spark_session, write_json_atomically

log = logging.getLogger("spot.jobs.smoke_kafka_to_parquet")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,host:port]")
    parser.add_argument("--topic", required=True, help="Kafka topic to read from the earliest offsets")
    parser.add_argument("--output", required=True, help="Parquet output folder (HDFS path or URI)")
    parser.add_argument("--checkpoint", required=True, help="streaming checkpoint folder (HDFS path or URI)")
    parser.add_argument("--result", required=True, help="local JSON file for the read-back summary")
    parser.add_argument("--app-name", default="spot-smoke-kafka-to-parquet")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    spark = spark_session(args.app_name)
    try:
        source = kafka_stream(spark, args.bootstrap, args.topic).select(
            "key", "value", "topic", "partition", "offset"
        )
        query = (
            source.writeStream.format("parquet")
            .option("path", args.output)
            .option("checkpointLocation", args.checkpoint)
            .outputMode("append")
            .trigger(availableNow=True)
            .queryName("smoke_kafka_to_parquet")
            .start()
        )
        log.info("streaming query %s started: topic %s -> %s", query.id, args.topic, args.output)
        query.awaitTermination()
        error = query.exception()
        if error is not None:
            raise RuntimeError(f"streaming query {query.id} failed: {error}")
        progress = query.lastProgress
        log.info("streaming query %s finished; last progress: %s", query.id, progress)

        written = spark.read.parquet(args.output)
        rows = written.selectExpr("CAST(value AS STRING) AS value").collect()
        values = sorted(row["value"] for row in rows if row["value"] is not None)
        nulls = sum(1 for row in rows if row["value"] is None)
        if nulls:
            log.warning("%d messages had a null value; they are not listed in 'values'", nulls)
        return {"rows": len(rows), "values": values}
    finally:
        spark.stop()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        result = run(args)
        write_json_atomically(args.result, result)
    except Exception:
        log.exception("smoke job failed (topic %s -> %s)", args.topic, args.output)
        return 1
    log.info("read back %d rows from %s; summary in %s", result["rows"], args.output, args.result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
