"""Smoke job: what a Spark job sees of a Hive table through the shared metastore.

Submitted with spark-submit (``SPARK_CONF_DIR`` points Spark at the metastore)::

    spark-submit include/jobs/smoke_hive_table_count.py --table db.tbl --result /tmp/tbl.json

Writes ``{"rows": count, "columns": [...], "partitions": [...]}`` to the local ``--result`` file:
``columns`` in table order (partition columns last, as Hive lists them), ``partitions`` as
``SHOW PARTITIONS`` names (``y=2024/m=1``), sorted; empty for an unpartitioned table. With
``--dump-rows`` the summary also holds ``"data"``: every row as a list of values, sorted (for small
test tables only). Any failure exits non-zero.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[2] / "plugins"))  # spot_operators, if not on PYTHONPATH

from spot_operators.job_support import spark_session, write_json_atomically

log = logging.getLogger("spot.jobs.smoke_hive_table_count")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def table_name(value: str) -> str:
    """argparse type: ``table`` or ``db.table`` made of plain identifiers, returned back-quoted."""
    parts = value.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(p) for p in parts):
        raise argparse.ArgumentTypeError(f"not a table name of the form [db.]table: {value!r}")
    return ".".join(f"`{p}`" for p in parts)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, type=table_name, help="Hive table, [db.]table")
    parser.add_argument("--result", required=True, help="local JSON file for the summary")
    parser.add_argument("--dump-rows", action="store_true", help="also write every row (sorted) under 'data'")
    parser.add_argument("--app-name", default="spot-smoke-hive-table-count")
    return parser.parse_args(argv)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return value


def run(args: argparse.Namespace) -> dict[str, Any]:
    spark = spark_session(args.app_name, hive=True)
    try:
        catalog = spark.conf.get("spark.sql.catalogImplementation")
        if catalog != "hive":
            raise RuntimeError(f"Spark session has no Hive support (catalogImplementation={catalog})")
        table = spark.table(args.table)
        columns = list(table.columns)
        rows = table.count()
        partition_columns = [c.name for c in spark.catalog.listColumns(args.table) if c.isPartition]
        partitions: list[str] = []
        if partition_columns:
            partitions = sorted(r[0] for r in spark.sql(f"SHOW PARTITIONS {args.table}").collect())
        result: dict[str, Any] = {"rows": rows, "columns": columns, "partitions": partitions}
        if args.dump_rows:
            data = [[_jsonable(v) for v in row] for row in table.collect()]
            result["data"] = sorted(data, key=lambda r: json.dumps(r, sort_keys=True, default=str))
        log.info("%s: %d rows, columns %s, partitions %s", args.table, rows, columns, partitions)
        return result
    finally:
        spark.stop()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        result = run(args)
        write_json_atomically(args.result, result)
    except Exception:
        log.exception("smoke job failed for table %s", args.table)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
