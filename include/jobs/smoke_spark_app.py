"""A tiny PySpark job for the SparkApplicationOperator/trigger tests: succeed, fail or sleep.

spark-submit smoke_spark_app.py --mode ok --rows 10 --result /path/result.json
spark-submit smoke_spark_app.py --mode fail --message "text that must reach the task's error"
spark-submit smoke_spark_app.py --mode sleep --seconds 600
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["ok", "fail", "sleep"], default="ok")
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--message", default="spot spark app test failure")
    parser.add_argument("--result", default="")
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    try:
        total = spark.range(args.rows).selectExpr("sum(id) AS total").collect()[0]["total"]
        print(f"spot-spark-app-job: sum of {args.rows} ids is {total}", flush=True)
        if args.mode == "fail":
            raise ValueError(args.message)
        if args.mode == "sleep":
            print(f"spot-spark-app-job: sleeping {args.seconds}s in pid {os.getpid()}", flush=True)
            time.sleep(args.seconds)
        if args.result:
            with open(args.result + ".tmp", "w", encoding="utf-8") as handle:
                app_id = spark.sparkContext.applicationId
                json.dump({"rows": args.rows, "total": int(total), "app_id": app_id}, handle)
            os.replace(args.result + ".tmp", args.result)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
