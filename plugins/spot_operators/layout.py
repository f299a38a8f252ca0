"""Where things live, derived from the config: Spot's HDFS folders and the local working folders.

Spot's HDFS layout is a contract (spot-ml reads the table folders directly), so it is computed in
one place and used by the stack, the setup DAG and the tests alike.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from spot_operators.config import IngestConfig, load_ingest_config

#: Sub-folders of ``<hdfs_app_path>/<type>/``: originals, transient CSV, table data, Spark checkpoints,
#: and the listeners' load log (rows per file, segment and hour, which the load DAG reconciles).
HDFS_AREAS = ("binary", "stage", "hive", "checkpoints", "loadlog")


def name_component(text: str) -> str:
    """``text`` as one HDFS path or Hive table-name component (run ids hold ':' and '+')."""
    return "".join(c if c.isalnum() else "_" for c in text)


def hdfs_type_root(config: IngestConfig, pipeline_type: str) -> PurePosixPath:
    """``<hdfs_app_path>/<type>``."""
    return PurePosixPath(config.hdfs_app_path) / pipeline_type


def hdfs_folders(config: IngestConfig) -> list[str]:
    """Every HDFS folder the pipelines of ``config`` write into, one per type and area."""
    types = sorted({p.type for p in config.pipelines.values()})
    return [str(hdfs_type_root(config, t) / area) for t in types for area in HDFS_AREAS]


def local_folders(config: IngestConfig) -> list[Path]:
    """Collector and staging directories of every pipeline (created by the local stack)."""
    folders: list[Path] = []
    for pipeline in config.pipelines.values():
        for folder in (pipeline.collector_path, pipeline.local_staging, pipeline.split_staging):
            if folder not in folders:
                folders.append(folder)
    return folders


def main(argv: Sequence[str] | None = None) -> int:
    """Print the folders, one per line, for shell scripts (``scripts/stack.sh``)."""
    parser = argparse.ArgumentParser(prog="python -m spot_operators.layout", description=__doc__)
    parser.add_argument("what", choices=("hdfs-dirs", "local-dirs"))
    parser.add_argument("--config", default=None, help="ingest_conf.json (default: SPOT_INGEST_CONF)")
    args = parser.parse_args(argv)
    config = load_ingest_config(args.config)
    folders = hdfs_folders(config) if args.what == "hdfs-dirs" else [str(p) for p in local_folders(config)]
    print("\n".join(folders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
