"""What the Spark applications under ``include/jobs`` share: their session and their result file.

Standard library only at import time (pyspark is imported inside :func:`spark_session`), so the
Spark supervisor and the jobs' drivers can both use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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


def spark_session(app_name: str, *, hive: bool = False, shuffle_partitions: int = 2) -> Any:
    """The job's SparkSession: its name, few shuffle partitions (the batches are small), Hive if asked."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name).config(
        "spark.sql.shuffle.partitions", str(shuffle_partitions)
    )
    if hive:
        builder = builder.enableHiveSupport()
    return builder.getOrCreate()
