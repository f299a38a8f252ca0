"""The listener (include/jobs/spot_listener.py) on the real stack: Kafka -> typed Parquet in HDFS, once.

Submitted like the DAGs submit Spark jobs (``SparkSubmitHook``, connection ``spot_spark``, local jars).
The Parquet is read back over WebHDFS with pyarrow, independently of the listener's own counts.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook
from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook
from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from spot_operators.envelope import (
    SCHEMAS_DIR,
    SPOT_LIST_SCHEMA_FILE,
    IngestMessage,
    Pointer,
    encode_message,
    encode_spot_list,
)
from spot_operators.hive_ddl import register_partitions
from spot_operators.segments import csv_line
from spot_operators.spark_jars import connector_jars
from spot_operators.tables import FLOW
from tests.unit.test_listener_job import encode_v1, encode_with_raw_lines

from .test_collect import FLOW_SAMPLE, CollectEnv
from .test_spark import SPARK_CONF, bootstrap_servers

ROOT = Path(__file__).resolve().parents[2]
LISTENER = ROOT / "include" / "jobs" / "spot_listener.py"


def _hook(args: list[str], name: str) -> SparkSubmitHook:
    return SparkSubmitHook(
        conn_id="spot_spark",
        conf=SPARK_CONF,
        jars=",".join(connector_jars()),
        driver_memory="1g",
        name=name,
        application_args=args,
        env_vars={"SPARK_LOCAL_IP": SPARK_CONF["spark.driver.host"]},
    )


class ListenerRun:
    """Folders and arguments of one listener (one checkpoint), and readers of what it wrote."""

    def __init__(self, hdfs: Any, base: str, topics: list[str], tmp: Path, data_type: str = "flow") -> None:
        self.hdfs = hdfs
        self.table = f"{base}/{data_type}/hive"
        self.stage = f"{base}/{data_type}/stage"
        self.quarantine = f"{base}/quarantine/hive"
        self.checkpoint = f"{base}/{data_type}/checkpoints/listener"
        self.topics = topics
        self.tmp = tmp
        self.data_type = data_type
        self.runs = 0

    def args(self, result: Path, *extra: str) -> list[str]:
        return [
            "--data-type",
            self.data_type,
            "--topics",
            ",".join(self.topics),
            "--bootstrap",
            bootstrap_servers(),
            "--table-location",
            self.table,
            "--staging-root",
            self.stage,
            "--quarantine-location",
            self.quarantine,
            "--checkpoint",
            self.checkpoint,
            "--mode",
            "availableNow",
            "--result",
            str(result),
            *extra,
        ]

    def run(self, *extra: str) -> dict[str, Any]:
        self.runs += 1
        result = self.tmp / f"listener-{self.runs}.json"
        started = time.monotonic()
        _hook(self.args(result, *extra), f"it-listener-{self.runs}").submit(application=str(LISTENER))
        counts = json.loads(result.read_text())
        counts["seconds"] = round(time.monotonic() - started, 1)
        print(f"listener run {self.runs}: {counts}")
        return counts

    def files(self, folder: str) -> dict[str, int]:
        """Relative path -> length of every file under ``folder`` (recursive, over WebHDFS)."""
        found: dict[str, int] = {}
        if self.hdfs.status(folder, strict=False) is None:
            return found
        for (path, _), _dirs, files in self.hdfs.walk(folder, status=True):
            for name, status in files:
                found[f"{path}/{name}"[len(folder) + 1 :]] = status["length"]
        return found

    def read(self, folder: str) -> list[dict[str, Any]]:
        """Every row of the visible Parquet files under ``folder`` (not ``_``-prefixed), with its file."""
        rows = []
        for relative in sorted(self.files(folder)):
            if relative.startswith("_") or not relative.endswith(".parquet"):
                continue
            with self.hdfs.read(f"{folder}/{relative}") as reader:
                data = reader.read()
            for row in pq.read_table(io.BytesIO(data)).to_pylist():
                rows.append({**row, "_file": relative})
        return rows


def produce(topic: str, messages: Sequence[IngestMessage | bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap_servers(), "enable.idempotence": True, "acks": "all"})
    errors: list[Any] = []
    for message in messages:
        if isinstance(message, bytes):
            producer.produce(topic, value=message, key=b"junk")
        else:
            headers: list[tuple[str, str | bytes | None]] = list(message.headers())
            producer.produce(
                topic,
                value=encode_message(message),
                key=message.file_digest.encode(),
                headers=headers,
                on_delivery=lambda err, _m: errors.append(err) if err else None,
            )
    assert producer.flush(60) == 0
    assert errors == []


@pytest.fixture
def topic(unique_name: str) -> Iterator[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers()})
    name = unique_name.replace("_", "-")
    for future in admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)]).values():
        future.result(timeout=60)
    yield name
    for future in admin.delete_topics([name], operation_timeout=30).values():
        future.result(timeout=60)


@pytest.fixture
def hdfs() -> Any:
    return WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()


@pytest.fixture
def hdfs_base(unique_name: str, hdfs: Any) -> Iterator[str]:
    base = f"/tmp/spot-it/{unique_name}"
    yield base
    hdfs.delete(base, recursive=True)


def flow_csv_row(epoch: int, sport: int, ibyt: int = 100) -> str:
    t = datetime.fromtimestamp(epoch, tz=UTC)
    fields = [t.strftime("%Y-%m-%d %H:%M:%S"), str(epoch), *(str(v) for v in (t.year, t.month, t.day))]
    fields += [str(t.hour), str(t.minute), str(t.second), "1.5", "10.0.0.1", "10.0.0.2", str(sport), "443"]
    fields += [
        "TCP",
        "...AP...",
        "0",
        "0",
        "2",
        str(ibyt),
        "0",
        "0",
        "1",
        "2",
        "0",
        "0",
        "0",
        "0",
        "10.0.0.9",
    ]
    assert len(fields) == FLOW.width
    return csv_line(fields)


def _with_schema_version(message: IngestMessage, version: int) -> bytes:
    """The message encoded as a producer of another envelope version would (same fields)."""
    import fastavro

    from spot_operators.envelope import MESSAGE_SCHEMA_FILE, load_schema

    buffer = io.BytesIO()
    fastavro.schemaless_writer(
        buffer, load_schema(MESSAGE_SCHEMA_FILE), {**message.to_record(), "schema_version": version}
    )
    return buffer.getvalue()


def inline(rows: list[str], digest: str, index: int = 0, count: int = 1) -> IngestMessage:
    return IngestMessage(
        kind="INLINE",
        pipeline="flow_it",
        data_type="flow",
        file_name=f"nfcapd.{digest}",
        file_digest=digest,
        segment_index=index,
        segment_count=count,
        rows=tuple(rows),
    )


def test_collected_flow_file_lands_once_in_hour_partition(
    tmp_path: Path, unique_name: str, hdfs: Any
) -> None:
    """3018 flows collected by the real collect DAG -> 3018 Parquet rows in y=2023/m=1/d=25/h=18, once."""
    env = CollectEnv(tmp_path, unique_name.replace("_", "-"))
    try:
        env.provision()
        shutil.copy2(FLOW_SAMPLE, env.collector("flow_internals") / FLOW_SAMPLE.name)
        env.collect("flow_internals")
        messages = env.read_topic("flow_internals")
        expected = env.rows_of(messages)
        assert len(expected) == 3018

        run = ListenerRun(hdfs, env.app_path, [env.topic("flow_internals")], tmp_path)
        first = run.run()
        assert first["rows"] == 3018 and first["quarantined"] == 0, first
        assert first["messages"] == len(messages) and first["duplicates"] == 0, first

        files = run.files(run.table)
        visible = {p: n for p, n in files.items() if not p.startswith("_")}
        assert visible and all(p.startswith("y=2023/m=1/d=25/h=18/part-") for p in visible), files
        assert not [p for p in files if p.startswith("_staging/") and "/batch=" in p], files
        rows = run.read(run.table)
        assert len(rows) == 3018
        # Read back with the Parquet types the Hive DDL expects, and equal to what was published.
        names = FLOW.column_names
        got = sorted(
            tuple(str(r[n]) for n in ("sip", "dip", "sport", "dport", "ibyt", "unix_tstamp")) for r in rows
        )
        want = sorted(
            tuple(row[names.index(n)] for n in ("sip", "dip", "sport", "dport", "ibyt", "unix_tstamp"))
            for row in expected
        )
        assert got == want
        assert {type(rows[0][n]).__name__ for n in ("unix_tstamp", "sport", "tdur")} == {"int", "float"}

        # Same checkpoint again: nothing new, nothing duplicated.
        second = run.run()
        assert second["rows"] == 0 and second["batches"] == 0, second
        assert run.files(run.table) == files

        # Hive sees the rows once their hour folder is registered (spot_setup created the table there).
        hs2 = HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")
        assert register_partitions(hs2, env.dbname, "flow") == ["y=2023/m=1/d=25/h=18"]
        assert hs2.get_records(f"SELECT count(*) FROM {env.dbname}.flow WHERE y=2023 AND h=18") == [(3018,)]
        top = hs2.get_records(
            f"SELECT sip, count(*) AS n FROM {env.dbname}.flow GROUP BY sip ORDER BY n DESC, sip"
        )
        sip_counts = Counter(r[names.index("sip")] for r in expected)
        want_top = sorted(sip_counts.items(), key=lambda item: (-item[1], item[0]))
        assert [tuple(t) for t in top[:5]] == want_top[:5]
    finally:
        env.cleanup()


@pytest.mark.parametrize("typed_in", ["tasks", "driver"])
def test_pointer_duplicates_and_bad_rows(
    tmp_path: Path, topic: str, hdfs: Any, hdfs_base: str, typed_in: str
) -> None:
    """Inline and pointer rows over two hours; a duplicate segment; bad rows and messages in quarantine.

    Typed by Spark's tasks (the checkpoint's first batch), and again as a later batch small enough
    for the driver (``--driver-batch-messages``): the same rows, files and quarantine either way."""
    hour = 1674669600  # 2023-01-25 18:00:00 UTC
    run = ListenerRun(hdfs, hdfs_base, [topic], tmp_path)
    warm_up = 0
    if typed_in == "driver":  # a first batch (typed by the tasks), so that the one below is batch 1
        produce(topic, [inline([flow_csv_row(hour - 3600, 999)], "d-warm-up")])
        assert run.run("--driver-batch-messages", "20")["batches_typed_in_driver"] == 0
        warm_up = 1
    good_inline = [flow_csv_row(hour + i, 1000 + i) for i in range(5)]
    bad_lines = {
        "short": "2023-01-25 18:00:00,1674669600,2023",
        "bad int": flow_csv_row(hour, 1).replace(",443,", ",https,", 1),
        "int range": flow_csv_row(hour, 2**31),
        "bad epoch": flow_csv_row(hour, 3).replace(",1674669600,", ",0,", 1),
        "bad float": flow_csv_row(hour, 4).replace(",1.5,", ",1.5x,", 1),
    }
    staged_rows = [flow_csv_row(hour + 3600 + i, 2000 + i) for i in range(7)] + ['"unterminated,x']
    staged = f"{hdfs_base}/flow/stage/20230125/19/x.csv"
    text = "\n".join(staged_rows) + "\n"
    hdfs.write(staged, data=text.encode(), overwrite=True)
    text_outside = f"{hdfs_base}/flow/stage-not/x.csv"
    hdfs.write(text_outside, data=text.encode(), overwrite=True)
    pointer = IngestMessage(
        kind="POINTER",
        pipeline="flow_it",
        data_type="flow",
        file_name="nfcapd.big",
        file_digest="d-pointer",
        segment_index=0,
        segment_count=1,
        pointer=Pointer(staged, len(text.encode()), len(staged_rows), "0" * 64),
    )
    missing = IngestMessage(**{**vars(pointer), "file_digest": "d-missing"})
    # A second staged CSV, read in the same pass; a space in its name (Spark names it with %20).
    spaced = f"{hdfs_base}/flow/stage/20230125/19/x y.csv"
    spaced_text = "\n".join(flow_csv_row(hour + 3700 + i, 3000 + i) for i in range(2)) + "\n"
    hdfs.write(spaced, data=spaced_text.encode(), overwrite=True)
    spaced_pointer = Pointer(spaced, len(spaced_text), 2, "0" * 64)
    second = IngestMessage(**{**vars(pointer), "file_digest": "d-spaced", "pointer": spaced_pointer})
    # A third: glob metacharacters in its name (read as itself) and one line that is not UTF-8
    # (quarantined alone: its two good lines load and the batch goes on).
    odd = f"{hdfs_base}/flow/stage/20230125/19/odd[1]{{a,b}}*.csv"
    odd_lines = [flow_csv_row(hour + 3800 + i, 4000 + i).encode() for i in range(3)]
    odd_lines[1] = odd_lines[1].replace(b"TCP", b"TC\xff", 1)
    odd_data = b"\n".join(odd_lines) + b"\n"
    hdfs.write(odd, data=odd_data, overwrite=True)
    third = IngestMessage(
        **{**vars(pointer), "file_digest": "d-odd", "pointer": Pointer(odd, len(odd_data), 3, "0" * 64)}
    )
    missing = IngestMessage(
        **{**vars(missing), "pointer": Pointer(f"{hdfs_base}/flow/stage/nope.csv", 1, 1, "0" * 64)}
    )
    # Paths a message must not make the listener read: outside the staging folder (the file exists),
    # and on another file system.
    outside = IngestMessage(
        **{**vars(missing), "file_digest": "d-out", "pointer": Pointer(text_outside, 1, 1, "0" * 64)}
    )
    foreign = IngestMessage(
        **{
            **vars(missing),
            "file_digest": "d-foreign",
            "pointer": Pointer("file:///etc/hostname", 1, 1, "0" * 64),
        }
    )
    # A pointer to the folder of those files: refused, not read as all of them.
    folder_pointer = Pointer(staged.rsplit("/", 1)[0], 1, 1, "0" * 64)
    folder = IngestMessage(**{**vars(missing), "file_digest": "d-folder", "pointer": folder_pointer})
    dns_message = IngestMessage(**{**vars(inline(good_inline, "d-dns")), "data_type": "dns"})
    produce(
        topic,
        [
            inline(good_inline, "d-inline"),
            inline(good_inline, "d-inline"),  # a duplicate of the same segment: loaded once
            inline(list(bad_lines.values()), "d-bad"),
            pointer,
            missing,
            outside,
            foreign,
            folder,
            second,
            third,
            dns_message,
            b"\x00garbage that is not avro",
            encode_message(inline(good_inline, "d-truncated"))[:-40],  # truncated Avro
            _with_schema_version(inline(good_inline, "d-v3"), 3),
            encode_v1(inline(good_inline[:2], "d-v1")),  # the earlier envelope still loads
        ],
    )
    counts = run.run("--driver-batch-messages", "20" if typed_in == "driver" else "0")
    assert counts["batches_typed_in_driver"] == (typed_in == "driver"), counts
    rows = run.read(run.table)
    assert len(rows) == counts["rows"] + warm_up == 5 + 7 + 2 + 2 + 2 + warm_up
    by_hour: dict[str, int] = {}
    for row in rows:
        folder = row["_file"].rsplit("/", 1)[0]
        by_hour[folder] = by_hour.get(folder, 0) + 1
    assert by_hour == {
        **({"y=2023/m=1/d=25/h=17": 1} if warm_up else {}),
        "y=2023/m=1/d=25/h=18": 5 + 2,
        "y=2023/m=1/d=25/h=19": 7 + 2 + 2,
    }
    assert counts["duplicates"] == 1
    quarantine = run.read(run.quarantine)
    assert len(quarantine) == counts["quarantined"] == len(bad_lines) + 1 + 1 + 1 + 1 + 2 + 1 + 1 + 2
    reasons = sorted(q["reason"] for q in quarantine)
    print("\n".join(reasons))
    joined = "\n".join(reasons)
    for needle in (
        "expected 28 fields for flow, got 3",
        "dport is not an integer",
        "sport '2147483648' is out of INT range",
        "unix_tstamp 0 is not a usable time",
        "tdur is not a finite number",
        "not a CSV record",
        "does not exist",
        "is a folder, not a file",
        "stage-not/x.csv is outside the staging folder hdfs://",
        "file:///etc/hostname is not on the table's file system",
        "message of data type 'dns' on a 'flow' listener",
        "undecodable message",
        "unknown schema version 3",
    ):
        assert needle in joined, needle
    bad_row = next(q for q in quarantine if "got 3" in q["reason"])
    assert (bad_row["file_digest"], bad_row["line_no"], bad_row["raw"]) == ("d-bad", 1, bad_lines["short"])
    assert next(q for q in quarantine if "not a CSV record" in q["reason"])["line_no"] == 8
    not_utf8 = next(q for q in quarantine if q["file_digest"] == "d-odd")
    assert not_utf8["reason"].startswith("not UTF-8: byte 0xff at character "), not_utf8["reason"]
    assert (not_utf8["line_no"], not_utf8["raw"]) == (2, odd_lines[1].decode("utf-8", "backslashreplace"))
    # Laid out as the <db>.quarantine table reads it (hive_ddl.QUARANTINE).
    from spot_operators.hive_ddl import QUARANTINE

    assert set(bad_row) - {"_file"} == set(QUARANTINE.column_names)
    assert all(q["_file"].startswith("data_type=flow/y=") for q in quarantine), quarantine[0]["_file"]

    again = run.run()
    assert again["batches"] == 0
    assert len(run.read(run.table)) == len(rows) and len(run.read(run.quarantine)) == len(quarantine)


def test_killed_after_moving_files_restarts_exactly_once(
    tmp_path: Path, topic: str, hdfs: Any, hdfs_base: str
) -> None:
    """SIGKILL the listener after it moved a batch's first file into the table, before Spark commits the
    batch; the restart replays the batch with the same id and every row is there exactly once."""
    hour = 1674669600
    messages = [
        inline([flow_csv_row(hour + 3600 * h + i, 100 * h + i) for i in range(50)], f"d-{h}")
        for h in range(3)
    ]
    produce(topic, messages)
    run = ListenerRun(hdfs, hdfs_base, [topic], tmp_path)
    marker = tmp_path / "paused"
    hook = _hook(
        run.args(
            tmp_path / "killed.json", "--test-pause-at", "after-move", "--test-pause-marker", str(marker)
        ),
        "it-kill",
    )
    command = hook._build_spark_submit_command(str(LISTENER))
    log_file = (tmp_path / "killed.log").open("wb")
    process = subprocess.Popen(
        command,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "the listener never reached the pause point"
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(60)
        log_file.close()

    # Killed mid-batch: part of the batch is in the table, the batch is not committed.
    partial = run.read(run.table)
    assert 0 < len(partial) < 150, len(partial)
    assert {r["_file"].rsplit("/", 1)[1].split("-")[2] for r in partial} == {"b0"}
    assert not run.files(f"{run.checkpoint}/commits") or "0" not in {
        p.rsplit("/", 1)[-1] for p in run.files(f"{run.checkpoint}/commits")
    }
    assert not (tmp_path / "killed.json").exists()

    counts = run.run()
    assert counts["batches"] == 1 and counts["rows"] == 150, counts
    rows = run.read(run.table)
    assert len(rows) == 150
    keys = [(r["unix_tstamp"], r["sport"]) for r in rows]
    assert len(set(keys)) == 150, "a row is duplicated"
    # The restart replayed batch 0 (same id, same offsets): its files replaced the killed attempt's.
    assert {r["_file"].rsplit("/", 1)[1].split("-")[2] for r in rows} == {"b0"}
    assert sorted({r["_file"].rsplit("/", 1)[0] for r in rows}) == [
        f"y=2023/m=1/d=25/h={h}" for h in (18, 19, 20)
    ]
    assert len(run.read(run.table)) == 150
    assert run.run()["batches"] == 0
    assert len(run.read(run.table)) == 150


def test_spot_edge_collector_list_messages(tmp_path: Path, topic: str, hdfs: Any, hdfs_base: str) -> None:
    """Apache Spot Distributed Collector messages (``list.avsc``) load with --message-format spot_list."""
    hour = 1674669600
    rows = [flow_csv_row(hour + i, 3000 + i) for i in range(6)]
    # An edge collector that does not check UTF-8: only the damaged line is quarantined.
    damaged = encode_with_raw_lines(
        (SCHEMAS_DIR / SPOT_LIST_SCHEMA_FILE).read_text(),
        {},
        "list",
        [rows[4].encode(), b"\xff" + rows[5].encode()],
    )
    produce(topic, [encode_spot_list(rows[:2]), encode_spot_list([*rows[2:4], "1,2,3"]), b"\x04", damaged])
    run = ListenerRun(hdfs, hdfs_base, [topic], tmp_path)
    counts = run.run("--message-format", "spot_list", "--pipeline", "flow_edge")
    assert (counts["rows"], counts["quarantined"]) == (5, 3), counts
    assert sorted(r["sport"] for r in run.read(run.table)) == [3000, 3001, 3002, 3003, 3004]
    quarantine = run.read(run.quarantine)
    assert {q["pipeline"] for q in quarantine} == {"flow_edge"}
    assert sorted(q["reason"].split(":")[0] for q in quarantine) == [
        "expected 28 fields for flow, got 3",
        "not UTF-8",
        "undecodable message",
    ]
    not_utf8 = next(q for q in quarantine if q["reason"].startswith("not UTF-8"))
    assert (not_utf8["line_no"], not_utf8["raw"]) == (2, "\\xff" + rows[5])
