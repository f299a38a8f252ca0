"""Flow collect throughput on a generated nfcapd file of >= 1,000,000 flows (``make bench``).

Prints flows/s for each stage beside nfdump's own CSV conversion of the same file, measured in the
same run. Needs the local stack (HDFS, Kafka). Not a test: it prints figures and never fails on speed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from spot_operators.collect import _dissect, collect_file  # noqa: E402
from spot_operators.config import load_ingest_config  # noqa: E402
from spot_operators.envelope import IngestMessage  # noqa: E402
from spot_operators.hdfs_store import store_verified  # noqa: E402
from spot_operators.ledger import FileLedger, file_digest  # noqa: E402
from spot_operators.rows import Row  # noqa: E402
from spot_operators.segments import inline_messages  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "flow" / "nfcapd.202301251836"


def timed(label: str, action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    print(f"  {label:<44} {seconds:8.2f} s", flush=True)
    return seconds, result


def build_big_file(work: Path, min_flows: int) -> tuple[Path, int]:
    """Merge copies of the real sample into one nfcapd file with nfdump itself (a genuine nfcapd file)."""
    per_copy = int(
        subprocess.run(
            ["nfdump", "-r", str(SAMPLE), "-q", "-o", "csv"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.count("\n")
    )
    copies = -(-min_flows // per_copy)
    parts = work / "parts"
    parts.mkdir()
    for i in range(copies):
        shutil.copyfile(SAMPLE, parts / f"nfcapd.2023012518{i // 60 % 60:02d}{i % 60:02d}")
    big = work / "collector" / "nfcapd.202301251836"
    big.parent.mkdir()
    subprocess.run(
        ["nfdump", "-R", str(parts), "-w", str(big)], check=True, timeout=1800, capture_output=True
    )
    shutil.rmtree(parts)
    return big, per_copy * copies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=1_000_000)
    args = parser.parse_args()
    if not SAMPLE.exists():
        print(f"the sample capture {SAMPLE} is missing (shared/ must sit beside the project)")
        return 1
    from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

    from spot_operators.hooks.kafka import IdempotentProducerHook
    from spot_operators.publish import publish_messages

    config = load_ingest_config()
    pipeline = config.pipelines["flow_internals"]
    hdfs = WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()
    producer_hook = IdempotentProducerHook("spot_kafka", config.kafka.max_request_size)
    # A topic of its own: the benchmark's messages must never reach a pipeline's listener.
    topic = f"spot-bench-flow-{os.getpid()}"
    from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook
    from confluent_kafka.admin import NewTopic

    admin = KafkaAdminClientHook(kafka_config_id="spot_kafka").get_conn
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(timeout=60)
    pipeline = pipeline.model_copy(update={"topic": topic})
    with tempfile.TemporaryDirectory(prefix="spot-bench-") as tmp:
        work = Path(tmp)
        print(f"generating an nfcapd file of >= {args.flows:,} flows from {SAMPLE.name} ...", flush=True)
        big, flows = build_big_file(work, args.flows)
        size_mb = big.stat().st_size / 1e6
        print(f"{big.name}: {flows:,} flows, {size_mb:.1f} MB\n")
        bench_root = f"/tmp/spot-bench-{os.getpid()}"
        figures: dict[str, float] = {}

        def nfdump_alone() -> None:
            with open(os.devnull, "w") as sink:
                subprocess.run(
                    ["nfdump", "-r", str(big), "-q", "-o", "csv"], stdout=sink, check=True, timeout=3600
                )

        figures["nfdump -o csv alone"], _ = timed("nfdump -q -o csv > /dev/null", nfdump_alone)
        (work / "d").mkdir()
        figures["dissect (nfdump + validate + CSV)"], dissected = timed(
            "dissect to CSV", lambda: _dissect(pipeline, big, work / "d", 0, work / "d" / "q.jsonl", 3600)
        )
        assert dissected.rows == flows, (dissected.rows, flows)
        figures["HDFS store (verified)"], _ = timed(
            "store original in HDFS, verified",
            lambda: store_verified(hdfs, big, f"{bench_root}/binary/{big.name}"),
        )
        figures["digest (sha256)"], _ = timed("sha256 of the original", lambda: file_digest(big))

        def publish_inline() -> int:
            import csv

            from spot_operators.rows import HourPartition

            rows = []
            with dissected.csv_path.open(encoding="utf-8", newline="") as handle:
                for n, fields in enumerate(csv.reader(handle)):
                    rows.append(Row(tuple(fields), HourPartition.of_epoch(int(fields[1])), n))
            template = IngestMessage("INLINE", "bench", "flow", big.name, "0" * 64, 0, 1)
            messages = inline_messages(
                rows, template=template, max_request_size=config.kafka.max_request_size
            )
            publish_messages(producer_hook.get_producer(), topic, messages, failed_dir=work / "failed")
            return len(messages)

        figures["publish inline (Avro + Kafka acks=all)"], segments = timed(
            "encode + publish every row inline", publish_inline
        )
        ledger = FileLedger(work / "ledger.sqlite3")

        def end_to_end() -> Any:
            bench_config = config.model_copy(update={"hdfs_app_path": bench_root})
            return collect_file(
                big,
                config=bench_config,
                pipeline=pipeline.model_copy(update={"local_staging": work / "staging"}),
                ledger=ledger,
                owner="bench",
                hdfs_factory=lambda: hdfs,
                producer_factory=producer_hook.get_producer,
            )

        try:
            figures["end to end (collect_file)"], result = timed("collect_file end to end", end_to_end)
        finally:
            hdfs.delete(bench_root, recursive=True)
            for future in admin.delete_topics([topic], operation_timeout=60).values():
                future.result(timeout=120)

    print(f"\n{'stage':<44} {'flows/s':>12} {'x nfdump':>9}")
    base = flows / figures["nfdump -o csv alone"]
    for stage, seconds in figures.items():
        rate = flows / seconds
        print(f"{stage:<44} {rate:12,.0f} {rate / base:9.2f}")
    routed = f"end to end routed {result.route} ({result.csv_bytes / 1e6:.1f} MB CSV)"
    print(f"\n{segments} inline segments; {routed}")
    print("End to end = dissect + digest + HDFS store + (pointer CSV to HDFS) + publish + ledger.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
