"""Local jars that Spark jobs need (Kafka connector and its dependencies), so no job downloads at start.

``make setup`` resolves them from Maven Central ahead of time into ``SPOT_SPARK_JARS_DIR``
(``.stack/lib/spark`` with ``scripts/env.sh``). Pass the result to ``SparkSubmitHook(jars=",".join(...))``
instead of ``packages=``: ``--packages`` would resolve (and possibly download) through Ivy at every submit.
"""

from __future__ import annotations

import os
from pathlib import Path

JARS_DIR_ENV = "SPOT_SPARK_JARS_DIR"


class SparkJarsError(RuntimeError):
    """The folder of pre-resolved Spark jars is not configured, missing or empty."""


def connector_jars(jars_dir: str | None = None) -> list[str]:
    """Return the absolute paths of the ``*.jar`` files in the connector folder, sorted by name.

    :param jars_dir: the folder; defaults to the ``SPOT_SPARK_JARS_DIR`` environment variable.
    :raises SparkJarsError: the folder is unset, missing, not a folder or holds no jar, or a jar path
        contains a comma (``--jars`` is comma-separated).
    """
    configured = jars_dir if jars_dir is not None else os.environ.get(JARS_DIR_ENV, "")
    if not configured.strip():
        raise SparkJarsError(
            f"{JARS_DIR_ENV} is not set: source scripts/env.sh (it points at .stack/lib/spark), "
            "and run `make setup` to download the Spark connector jars into that folder"
        )
    folder = Path(configured).expanduser()
    if not folder.is_dir():
        raise SparkJarsError(
            f"Spark connector jar folder {folder} does not exist or is not a folder: "
            "run `make setup` to download the Spark connector jars into it"
        )
    jars = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".jar")
    if not jars:
        raise SparkJarsError(
            f"Spark connector jar folder {folder} holds no .jar file: "
            "run `make setup` to download the Spark connector jars into it"
        )
    paths = [str(p.resolve()) for p in jars]
    with_comma = [p for p in paths if "," in p]
    if with_comma:
        # spark-submit --jars takes a comma-separated list: such a path would be split apart.
        raise SparkJarsError(f"Spark connector jar paths must not contain ',': {with_comma}")
    return paths
