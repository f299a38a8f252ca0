"""Continuous-mode latency (``make bench``): from a file's messages in Kafka to its rows in Hive.

The listener (include/jobs/spot_listener.py) runs continuously, as ``spot_listener_<type>`` runs it:
a micro-batch every ``--batch-seconds`` (Spot's ``spark_batch_size``, default 30) that registers the
hours it wrote in the metastore. Each round publishes one 3018-row flow file (the reference capture,
shifted to its own hour) and polls HiveServer2 until ``COUNT(*)`` of that hour is complete; the
figure printed is the median of the rounds (target: under 60 s on this machine).

    python scripts/bench_latency.py [--rounds 5] [--batch-seconds 30]   (with scripts/env.sh sourced)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(Path(__file__).resolve().parent)]

from bench_listener import (  # noqa: E402
    LISTENER,
    base_rows,
    bootstrap_servers,
    create_topic,
    delete_topics,
    publish_inline,
    shifted,
)

HOUR_SECONDS = 3600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-seconds", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=300, help="give up on a round after this long")
    args = parser.parse_args()

    from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook
    from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook
    from confluent_kafka import Producer

    from spot_operators.hive_ddl import create_database_sql, create_table_sql
    from spot_operators.spark_jars import connector_jars
    from spot_operators.tables import FLOW

    tag = uuid.uuid4().hex[:8]
    base, db, topic = f"/tmp/bench-latency-{tag}", f"bench_latency_{tag}", f"bench-latency-{tag}"
    work = ROOT / ".stack" / "bench" / f"latency-{tag}"
    work.mkdir(parents=True, exist_ok=True)
    hive = HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")
    hdfs = WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()
    hive.run([create_database_sql(db, f"{base}/db"), create_table_sql(db, FLOW, f"{base}/flow/hive")])
    create_topic(topic, 1)
    listener = None
    rows = base_rows()
    latencies: list[float] = []
    try:
        log = (work / "listener.log").open("w")
        listener = subprocess.Popen(
            [
                "spark-submit",
                "--driver-memory",
                "1g",
                "--jars",
                ",".join(connector_jars()),
                str(LISTENER),
                *("--data-type", "flow", "--topics", topic, "--bootstrap", bootstrap_servers()),
                *("--table-location", f"{base}/flow/hive", "--quarantine-location", f"{base}/quarantine"),
                *("--checkpoint", f"{base}/flow/checkpoints/bench", "--load-log", f"{base}/flow/loadlog"),
                *("--mode", "continuous", "--batch-seconds", str(args.batch_seconds)),
                *("--register-table", f"{db}.flow"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        while "started (continuous)" not in (work / "listener.log").read_text(errors="replace"):
            if listener.poll() is not None or time.monotonic() > deadline:
                print(f"the listener did not start; see {work / 'listener.log'}")
                return 1
            time.sleep(1)
        print(
            f"continuous listener up (batch every {args.batch_seconds} s); {args.rounds} rounds of 3018 rows"
        )
        producer = Producer(
            {"bootstrap.servers": bootstrap_servers(), "enable.idempotence": True, "acks": "all"}
        )
        for n in range(args.rounds):
            # One copy shifted by n+1 hours: its own partition, so the count is unambiguous.
            times: dict[int, tuple[str, ...]] = {}
            file_rows = [shifted(r, (n + 1) * HOUR_SECONDS // 300, times) for r in rows]
            hour = file_rows[0].partition
            published = time.monotonic()
            publish_inline(producer, topic, [file_rows], work / "failed")
            query = (
                f"SELECT COUNT(*) FROM {db}.flow WHERE y = {hour.y} AND m = {hour.m} AND d = {hour.d} "
                f"AND h = {hour.h}"
            )
            count = 0
            while count < len(file_rows):
                if time.monotonic() - published > args.timeout:
                    print(f"round {n + 1}: only {count} rows after {args.timeout:.0f} s")
                    return 1
                time.sleep(1)
                try:
                    count = int(hive.get_records(query)[0][0])
                except Exception:  # partition not registered yet
                    count = 0
            latencies.append(time.monotonic() - published)
            print(f"round {n + 1}: {count} rows queryable after {latencies[-1]:.1f} s")
        print(
            f"continuous latency, median of {len(latencies)}: {statistics.median(latencies):.1f} s "
            f"(batch interval {args.batch_seconds} s; target < 60 s)"
        )
        return 0
    finally:
        if listener is not None and listener.poll() is None:
            os.killpg(listener.pid, 15)
            try:
                listener.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(listener.pid, 9)
        hive.run(f"DROP DATABASE IF EXISTS {db} CASCADE")
        delete_topics([topic])
        hdfs.delete(base, recursive=True)


if __name__ == "__main__":
    sys.exit(main())
