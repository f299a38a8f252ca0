"""What the Spark applications under ``include/jobs`` share: their session and their result file.

Standard library only at import time (pyspark is imported inside :func:`spark_session`), so the
Spark supervisor and the jobs' drivers can both use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def kafka_stream(
    spark: Any,
    bootstrap: str,
    topics: str,
    max_offsets_per_trigger: int = 0,
    options: Mapping[str, str] | None = None,
) -> Any:
    """The Kafka topics (comma-separated) as the listener reads them: a streaming DataFrame.

    From the earliest offsets, failing on data loss, ``max_offsets_per_trigger`` messages a batch if
    above 0, with :data:`spot_operators.kafka_options.SOURCE_DEFAULTS` and then ``options`` (the
    connection's TLS/SASL settings, which may override the defaults). The bench's limit job reads
    through here too, so both sides of its ratio read alike.
    """
    from spot_operators.kafka_options import SOURCE_DEFAULTS

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topics)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "true")
    )
    if max_offsets_per_trigger > 0:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    for key, value in {**SOURCE_DEFAULTS, **(options or {})}.items():
        reader = reader.option(key, value)
    return reader.load()


def streaming_timings(progress: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Spark's own timing of a streaming query's batches (``query.recentProgress``).

    ``duration_ms``: each ``durationMs`` phase summed over the batches; ``progress``: per batch that
    read something, its id, Kafka messages and ``triggerExecution`` (what ``make bench`` compares).
    """
    duration_ms: dict[str, int] = {}
    for p in progress:
        for key, ms in (p.get("durationMs") or {}).items():
            duration_ms[key] = duration_ms.get(key, 0) + int(ms)
    batches = [
        {
            "batch": int(p["batchId"]),
            "messages": int(p["numInputRows"]),
            "trigger_ms": int((p.get("durationMs") or {}).get("triggerExecution", 0)),
        }
        for p in progress
        if p.get("numInputRows", 0) > 0
    ]
    return {"duration_ms": duration_ms, "progress": batches}


def write_json_atomically(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` so readers see the old file or the whole new one, never a partial one.

    A temporary file in the same folder (created if missing), flushed to disk, then renamed over
    ``path``: the operators poll these files while the application runs.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


SESSION_DEFAULTS = {
    # Few shuffle partitions: the batches are small and the stack has two cores.
    "spark.sql.shuffle.partitions": "2",
    # An HDFS close asks the NameNode to complete the file; when the DataNode has not reported the
    # block yet, the client sleeps this long before asking again (Hadoop's default: 400 ms). The
    # jobs write small files (staged Parquet, manifests, load logs, checkpoints) on every micro-batch,
    # so the default costs up to 0.4 s per write round; 25 ms asks again sooner (doubling each time).
    "spark.hadoop.dfs.client.block.write.locateFollowingBlock.initial.delay.ms": "25",
}
"""Settings every job's session gets unless spark-submit (``--conf``, spark-defaults) set them."""


def spark_session(app_name: str, *, hive: bool = False) -> Any:
    """The job's SparkSession: its name, :data:`SESSION_DEFAULTS` where not set, Hive if asked."""
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    submitted = SparkConf()  # what spark-submit passed (system properties of the driver JVM)
    builder = SparkSession.builder.appName(app_name)
    for key, value in SESSION_DEFAULTS.items():
        if not submitted.contains(key):
            builder = builder.config(key, value)
    if hive:
        builder = builder.enableHiveSupport()
    return builder.getOrCreate()
