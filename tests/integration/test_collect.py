"""`airflow dags test spot_collect_<pipeline>` against the real stack, for all three pipelines.

Each test runs the DAGs with its own config (SPOT_INGEST_CONF): collector folders in tmp, a unique
hdfs_app_path and unique topics, so runs never see each other's data. Golden row counts come from the
tools themselves (nfdump, tshark) or from a plain count of the log's data lines, not from project code.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook
from confluent_kafka import Consumer, TopicPartition

from spot_operators.envelope import decode_message
from spot_operators.hdfs_checksum import hdfs_md5_crc32c_checksum

from .private_hdfs import PrivateHdfs
from .private_kafka import PrivateKafka

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
FLOW_SAMPLE = SHARED / "flow" / "nfcapd.202301251836"
DNS_SAMPLES = [SHARED / "dns" / "packetq-dns.pcap", SHARED / "dns" / "dsc-dnso1tcp.pcap"]
PROXY_SAMPLE = SHARED / "proxy" / "proxysg-main.log"


_MIGRATED_DB: Path | None = None


def private_airflow_db(folder: Path) -> str:
    """A migrated Airflow metadata DB of the test's own, as an SQLAlchemy URL.

    ``airflow dags test`` with a private ``SPOT_INGEST_CONF`` must not share the stack's metadata DB:
    the stack's dag-processor keeps re-serializing the same DAG ids from the shipped config, so a run
    could be validated against the other version (and its topic assets, deactivated by the scheduler's
    orphan check, failed the announce task in CI). One migration per test process, copied per test.
    """
    global _MIGRATED_DB
    if _MIGRATED_DB is None:
        template = Path(tempfile.mkdtemp(prefix="spot-airflow-db-")) / "airflow.db"
        subprocess.run(
            ["airflow", "db", "migrate"],
            env={**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{template}"},
            capture_output=True,
            timeout=300,
            check=True,
        )
        _MIGRATED_DB = template
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "airflow.db"
    shutil.copyfile(_MIGRATED_DB, target)
    return f"sqlite:///{target}"


def failure_excerpt(output: str, limit: int = 60) -> str:
    """The lines of a ``dags test`` output that say what went wrong (CI shows only a test's tail)."""
    markers = ("Task failed with exception", "Error", "error", "failed", "Traceback", "state=")
    lines = [line for line in output.splitlines() if any(m in line for m in markers)]
    return "\n".join(lines[:limit]) if lines else output[-4000:]


def assert_in_output(needle: str, output: str) -> None:
    """``needle in output``, and on failure the excerpt of what did happen instead of a cut-off repr."""
    if needle not in output:
        pytest.fail(f"{needle!r} not in the dags test output; what it reported:\n{failure_excerpt(output)}")


class CollectEnv:
    """A private config, its folders and topics, and helpers to run DAGs and read what they wrote."""

    def __init__(
        self, tmp: Path, unique: str, inline_limit: int = 1048576, staged_csv_max_bytes: int = 16777216
    ) -> None:
        self.tmp = tmp
        self.unique = unique
        self.app_path = f"/tmp/{unique}/spot"
        shipped = json.loads((ROOT / "include" / "ingest_conf.json").read_text())
        shipped.pop("$schema", None)
        shipped["hdfs_app_path"] = self.app_path
        self.dbname = unique.replace("-", "_")
        shipped["dbname"] = self.dbname
        shipped["kafka"]["inline_limit_bytes"] = inline_limit
        shipped["kafka"]["staged_csv_max_bytes"] = staged_csv_max_bytes
        for name, pipeline in shipped["pipelines"].items():
            pipeline["collector_path"] = str(tmp / "collector" / name)
            pipeline["local_staging"] = str(tmp / "staging" / name)
            pipeline["topic"] = f"{unique}-{name}"
            (tmp / "collector" / name).mkdir(parents=True)
        self.config = shipped
        self.config_path = tmp / "ingest_conf.json"
        self.config_path.write_text(json.dumps(shipped, indent=2))
        self.airflow_db = private_airflow_db(tmp / "airflow")
        self.env = {
            **os.environ,
            "SPOT_INGEST_CONF": str(self.config_path),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_db,
        }
        self.bootstrap = f"{os.environ['SPOT_BIND_HOST']}:{os.environ['SPOT_KAFKA_PORT']}"
        self.hdfs = WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()

    def provision(self) -> None:
        """What ``spot_setup`` does (topics, HDFS and local folders, Hive tables) for this env's config,
        with the same provisioning functions, on this env's broker, HDFS and the stack's HiveServer2.

        Called in the test process: a ``dags test`` run of ``spot_setup`` spends about 14 s on
        Airflow's own start-up, and most tests here need the setup, not a test of it. The DAG itself
        runs in ``test_hive_tables.test_spot_setup_dag_creates_the_tables``.
        """
        from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook
        from confluent_kafka.admin import AdminClient

        from spot_operators.config import load_ingest_config
        from spot_operators.hive_ddl import create_tables
        from spot_operators.provisioning import ensure_hdfs_folders, ensure_local_folders, ensure_topics

        config = load_ingest_config(self.config_path)
        ensure_topics(AdminClient({"bootstrap.servers": self.bootstrap}), config)
        ensure_hdfs_folders(self.hdfs, config)
        ensure_local_folders(config)
        create_tables(HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2"), config)

    def collector(self, pipeline: str) -> Path:
        return Path(self.config["pipelines"][pipeline]["collector_path"])

    def topic(self, pipeline: str) -> str:
        return str(self.config["pipelines"][pipeline]["topic"])

    def dags_test(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        timeout: float = 600,
        expect_failure: bool = False,
    ) -> str:
        args = ["airflow", "dags", "test", dag_id]
        if conf:
            args += ["-c", json.dumps(conf)]
        out = subprocess.run(
            args, capture_output=True, text=True, errors="replace", timeout=timeout, env=self.env, check=False
        )
        text = out.stdout + out.stderr
        log_file = self.tmp / f"{dag_id}-{time.monotonic_ns()}.log"
        log_file.write_text(text)
        if expect_failure:
            assert out.returncode != 0, f"{dag_id} should have failed (output: {log_file})"
            return text
        if out.returncode != 0:
            pytest.fail(f"{dag_id} failed (full output: {log_file}):\n{failure_excerpt(text)}")
        return text

    def asset_events(self, pipeline: str) -> list[dict[str, Any]]:
        """Asset events of the pipeline's topic in this test's metadata DB, newest first."""
        with closing(sqlite3.connect(self.airflow_db.removeprefix("sqlite:///"))) as con:
            rows = con.execute(
                "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                "WHERE a.uri LIKE ? ORDER BY e.timestamp DESC",
                (f"%/{self.topic(pipeline)}",),
            ).fetchall()
        return [json.loads(extra) if isinstance(extra, str) else extra for (extra,) in rows]

    def collect(self, pipeline: str, max_wait: float = 60, expect_failure: bool = False) -> str:
        conf = {"max_wait_seconds": max_wait, "stable_seconds": 1}
        return self.dags_test(f"spot_collect_{pipeline}", conf, expect_failure=expect_failure)

    def ledger_states(self, pipeline: str) -> dict[str, str]:
        from spot_operators.ledger import FileLedger

        staging = Path(self.config["pipelines"][pipeline]["local_staging"])
        return {
            Path(r.version.path).name: str(r.state) for r in FileLedger(staging / "ledger.sqlite3").records()
        }

    def read_topic(self, pipeline: str) -> list[Any]:
        """Every message of the pipeline's topic, decoded, from the beginning up to its end now.

        Reads up to each partition's high watermark, taken first: the DAG run that published has
        ended and its producer waited for every acknowledgement, so that is all of them.
        """
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"{self.unique}-reader-{time.monotonic_ns()}",
                "enable.auto.commit": False,
            }
        )
        try:
            topic = self.topic(pipeline)
            partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
            ends = {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions
            }
            pending = {p for p, end in ends.items() if end > 0}
            consumer.assign([TopicPartition(topic, p, 0) for p in pending])
            messages = []
            deadline = time.monotonic() + 60
            while pending:
                assert time.monotonic() < deadline, f"{topic}: {sorted(pending)} not read up to {ends}"
                for message in consumer.consume(num_messages=500, timeout=1.0):
                    assert message.error() is None, message.error()
                    offset, partition, value = message.offset(), message.partition(), message.value()
                    assert offset is not None and partition is not None and value is not None, message
                    if offset >= ends[partition]:
                        continue
                    decoded = decode_message(value)
                    assert message.key() == decoded.file_digest.encode()
                    headers = dict(message.headers() or [])
                    assert headers["spot.pipeline"] == pipeline.encode(), headers
                    assert (
                        headers["spot.segment"]
                        == f"{decoded.segment_index + 1}/{decoded.segment_count}".encode()
                    )
                    messages.append(decoded)
                    if offset + 1 >= ends[partition]:
                        pending.discard(partition)
            return messages
        finally:
            consumer.close()

    def rows_of(self, messages: list[Any]) -> list[list[str]]:
        """CSV rows carried by the messages: inline rows, or the staged CSV a pointer names."""
        rows: list[list[str]] = []
        for message in sorted(messages, key=lambda m: (m.file_name, m.segment_index)):
            if message.kind == "INLINE":
                rows.extend(next(csv.reader(io.StringIO(line))) for line in message.rows)
            else:
                with self.hdfs.read(message.pointer.hdfs_path) as reader:
                    text = reader.read().decode("utf-8")
                assert len(text.encode()) == message.pointer.bytes
                rows.extend(csv.reader(io.StringIO(text)))
        return rows

    def assert_original_verified(self, local: Path, data_type: str, day: str, hour: str) -> str:
        hdfs_path = f"{self.app_path}/{data_type}/binary/{day}/{hour}/{local.name}"
        status = self.hdfs.status(hdfs_path)
        assert status["length"] == local.stat().st_size
        expected = hdfs_md5_crc32c_checksum(local, block_size=int(status["blockSize"]))
        assert expected.matches(self.hdfs.checksum(hdfs_path)), (
            f"checksum of {hdfs_path} differs from {local}"
        )
        return hdfs_path

    def cleanup(self) -> None:
        from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook

        try:  # best effort: the assertion errors matter more
            HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2").run(
                f"DROP DATABASE IF EXISTS {self.dbname} CASCADE"
            )
        except Exception:
            pass
        try:
            self.hdfs.delete(f"/tmp/{self.unique}", recursive=True)
        except Exception:
            pass


@pytest.fixture
def collect_env(tmp_path: Path, unique_name: str) -> Iterator[CollectEnv]:
    env = CollectEnv(tmp_path, unique_name.replace("_", "-"))
    env.provision()
    yield env
    env.cleanup()


def drop_fresh_flow_capture(target: Path) -> None:
    """Put the NetFlow sample's 3018 flows into ``target`` as a new file with its own bytes.

    ``nfdump -w`` stamps each file it writes, so every call gives new content: collect settles a copy
    of bytes it has ingested before as a duplicate, and tests on the shared stack need a new file each
    time. Written under a hidden name and renamed, as nfcapd's rotation makes a file appear whole.
    """
    hidden = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    subprocess.run(
        ["nfdump", "-r", str(FLOW_SAMPLE), "-w", str(hidden)], capture_output=True, timeout=120, check=True
    )
    hidden.rename(target)


def _nfdump_count(path: Path) -> int:
    out = subprocess.run(
        ["nfdump", "-r", str(path), "-q", "-o", "csv"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return len([line for line in out.stdout.splitlines() if line.strip()])


def _tshark_responses(path: Path) -> int:
    out = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "dns.flags.response == 1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return len(out.stdout.splitlines())


def test_flow_file_is_stored_verified_and_published_inline_once(collect_env: CollectEnv) -> None:
    expected_rows = _nfdump_count(FLOW_SAMPLE)
    assert expected_rows == 3018  # the data README's figure; the test data itself must not change
    target = collect_env.collector("flow_internals") / FLOW_SAMPLE.name
    shutil.copy2(FLOW_SAMPLE, target)

    collect_env.collect("flow_internals")

    collect_env.assert_original_verified(target, "flow", "20230125", "18")
    messages = collect_env.read_topic("flow_internals")
    assert {m.kind for m in messages} == {"INLINE"}
    assert [m.segment_index for m in messages] == list(range(len(messages)))
    rows = collect_env.rows_of(messages)
    assert len(rows) == expected_rows
    assert all(len(row) == 28 for row in rows)
    assert target.exists(), "post_ingest=keep must leave the original in place"

    # The announce task emitted the topic's Asset event with the run's totals.
    events = collect_env.asset_events("flow_internals")
    assert events and events[0]["rows"] == expected_rows and events[0]["files"] == [target.name]

    # A second run finds nothing new: the ledger remembers the kept original.
    collect_env.collect("flow_internals", max_wait=8)
    assert len(collect_env.read_topic("flow_internals")) == len(messages)

    # The same bytes again, touched or copied under another name (a collector re-sending its files):
    # new file versions, settled as duplicates of the first one, nothing published twice.
    os.utime(target, ns=(time.time_ns(), time.time_ns() - 5 * 10**9))
    shutil.copy2(FLOW_SAMPLE, target.with_name(f"{target.name}00"))  # nfcapd.YYYYMMDDhhmmss form
    output = collect_env.collect("flow_internals")
    assert_in_output("identical content", output)
    assert len(collect_env.read_topic("flow_internals")) == len(messages)
    assert collect_env.ledger_states("flow_internals") == {target.name: "done", f"{target.name}00": "done"}


def test_dns_captures_travel_as_hdfs_pointers_above_the_inline_limit(
    tmp_path: Path, unique_name: str
) -> None:
    env = CollectEnv(tmp_path, unique_name.replace("_", "-"), inline_limit=1000)
    try:
        env.provision()
        for sample in DNS_SAMPLES:
            shutil.copy2(sample, env.collector("dns_server_1") / sample.name)
        env.collect("dns_server_1")
        messages = env.read_topic("dns_server_1")
        assert {m.kind for m in messages} == {"POINTER"}
        assert sorted(m.file_name for m in messages) == sorted(s.name for s in DNS_SAMPLES)
        rows = env.rows_of(messages)
        assert len(rows) == sum(_tshark_responses(s) for s in DNS_SAMPLES) == 82
        assert all(len(row) == 10 for row in rows)
        for message in messages:
            assert message.pointer.hdfs_path.startswith(f"{env.app_path}/dns/stage/")
            assert message.pointer.rows == 41
        # DNS keeps the editcap chunks as its originals.
        listing = env.hdfs.list(f"{env.app_path}/dns/binary", status=False)
        assert listing, "no DNS originals in HDFS"
    finally:
        env.cleanup()


def test_proxy_log_picked_up_while_the_dag_waits(collect_env: CollectEnv) -> None:
    data_lines = [
        line
        for line in PROXY_SAMPLE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    target = collect_env.collector("proxy_bluecoat") / "proxysg-main.log"

    def arrive_later() -> None:
        time.sleep(12)
        partial = target.with_name(".proxysg-main.log.part")
        shutil.copy2(PROXY_SAMPLE, partial)
        partial.rename(target)

    writer = threading.Thread(target=arrive_later)
    writer.start()
    try:
        collect_env.collect("proxy_bluecoat", max_wait=120)
    finally:
        writer.join()
    messages = collect_env.read_topic("proxy_bluecoat")
    rows = collect_env.rows_of(messages)
    assert len(rows) == len(data_lines) == 11
    by_ip = {row[2] for row in rows}
    assert by_ip, rows
    assert all(len(row) == 28 for row in rows)


def test_bad_flow_files_fail_alone_and_stay_put(collect_env: CollectEnv) -> None:
    """Empty, truncated and text-as-nfcapd files fail with their names; the good file still goes through."""
    folder = collect_env.collector("flow_internals")
    good = folder / "nfcapd.202301251836"
    shutil.copy2(FLOW_SAMPLE, good)
    bad = {
        "nfcapd.202301251837": b"",
        "nfcapd.202301251838": FLOW_SAMPLE.read_bytes()[:5000],
        "nfcapd.202301251839": b"this is not an nfcapd file\n" * 10,
    }
    for name, content in bad.items():
        (folder / name).write_bytes(content)

    output = collect_env.collect("flow_internals", expect_failure=True)

    assert_in_output("3 of 4 files failed", output)
    for name in bad:
        assert_in_output(name, output)
        assert (folder / name).exists(), f"{name} must stay where the operator can find it"
    states = collect_env.ledger_states("flow_internals")
    assert states[good.name] == "done"
    assert all(states[name] == "failed" for name in bad), states
    rows = collect_env.rows_of(collect_env.read_topic("flow_internals"))
    assert len(rows) == 3018


def test_hostile_and_odd_file_names_are_data_not_commands(collect_env: CollectEnv) -> None:
    """Names with spaces, quotes, ';', '$(...)' and non-UTF-8 bytes are ingested; nothing is executed."""
    folder = collect_env.collector("proxy_bluecoat")
    names = ['we ird "quoted" name.log', "semi;colon $(touch pwned).log", "`touch pwned`.log"]
    for name in names:
        shutil.copy2(PROXY_SAMPLE, folder / name)
    raw_name = os.fsencode(str(folder)) + b"/caf\xe9-latin1.log"
    with open(raw_name, "wb") as handle:
        handle.write(PROXY_SAMPLE.read_bytes())
    (folder / "garbage.log").write_text("\x00\x01 not a proxy log at all\n" * 5)

    output = collect_env.collect("proxy_bluecoat", expect_failure=True)

    assert_in_output("garbage.log", output)
    for place in (ROOT, collect_env.tmp, folder, Path.cwd()):
        assert not (place / "pwned").exists(), f"a file name was executed as a command (in {place})"
    messages = collect_env.read_topic("proxy_bluecoat")
    assert len({m.file_digest for m in messages}) == 1  # four copies of the same bytes: one digest
    # ... published once: the copies collected at the same time wait for the first and are duplicates.
    assert len({m.file_name for m in messages}) == 1
    assert list(collect_env.ledger_states("proxy_bluecoat").values()).count("done") == 4
    assert_in_output("identical content", output)
    assert (folder / "garbage.log").exists()


def test_kafka_outage_keeps_segments_and_a_later_run_delivers_once(tmp_path: Path, unique_name: str) -> None:
    """Broker down while publishing: the task fails loudly, segments are kept, the original stays; once
    the broker is back the next run delivers the file exactly once and drops the superseded segments."""
    broker = PrivateKafka(tmp_path / "kafka")
    broker.start()
    env = CollectEnv(tmp_path / "run", unique_name.replace("_", "-"))
    env.env.update(broker.connection_env())
    env.bootstrap = broker.bootstrap
    staging = Path(env.config["pipelines"]["proxy_bluecoat"]["local_staging"])
    try:
        env.provision()
        broker.stop()
        target = env.collector("proxy_bluecoat") / "proxysg-main.log"
        shutil.copy2(PROXY_SAMPLE, target)

        output = env.collect("proxy_bluecoat", expect_failure=True)

        assert_in_output("were not acknowledged", output)
        kept = sorted((staging / "failed").glob("*/segment-*.avro"))
        assert kept, "undelivered segments must be kept for replay"
        assert decode_message(kept[0].read_bytes()).file_name == target.name
        assert target.exists()
        assert env.ledger_states("proxy_bluecoat") == {target.name: "failed"}
        hour_folders = env.hdfs.list(f"{env.app_path}/proxy/binary", status=False)
        assert hour_folders, "the original was stored (and verified) before publishing"

        broker.start()
        env.collect("proxy_bluecoat")

        rows = env.rows_of(env.read_topic("proxy_bluecoat"))
        assert len(rows) == 11
        assert not list((staging / "failed").glob("*/segment-*.avro")), "superseded segments must go"
        assert env.ledger_states("proxy_bluecoat") == {target.name: "done"}
    finally:
        broker.stop()
        env.cleanup()


def test_hdfs_outage_keeps_the_original_and_a_later_run_succeeds(tmp_path: Path, unique_name: str) -> None:
    """HDFS down: the file's task fails with a clear error, nothing is published, the original stays;
    with HDFS back the next run stores it (verified) and publishes it once."""
    hdfs = PrivateHdfs(tmp_path / "hdfs")
    hdfs.start()
    env = CollectEnv(tmp_path / "run", unique_name.replace("_", "-"))
    env.env.update(hdfs.connection_env())
    env.hdfs = hdfs.client()
    try:
        env.provision()
        hdfs.stop()
        target = env.collector("proxy_bluecoat") / "proxysg-main.log"
        shutil.copy2(PROXY_SAMPLE, target)

        output = env.collect("proxy_bluecoat", expect_failure=True)

        assert_in_output("proxysg-main.log", output)
        assert target.exists()
        assert env.ledger_states("proxy_bluecoat") == {target.name: "failed"}
        assert env.read_topic("proxy_bluecoat") == [], (
            "nothing may be published before the original is stored"
        )

        hdfs.start()
        env.collect("proxy_bluecoat")

        env.assert_original_verified(target, "proxy", *_proxy_hour())
        assert len(env.rows_of(env.read_topic("proxy_bluecoat"))) == 11
        assert env.ledger_states("proxy_bluecoat") == {target.name: "done"}
    finally:
        hdfs.stop()
        env.cleanup()


def _proxy_hour() -> tuple[str, str]:
    """YYYYMMDD and HH of the first data line of the ProxySG sample (its original's HDFS folder)."""
    first = next(
        line
        for line in PROXY_SAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    day, clock = first.split()[:2]
    return day.replace("-", ""), clock[:2]


def test_a_growing_file_is_collected_only_once_complete(collect_env: CollectEnv) -> None:
    """A log written in pieces (no rename) is picked up after it stopped changing, with every line."""
    data = PROXY_SAMPLE.read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1
    target = collect_env.collector("proxy_bluecoat") / "growing.log"

    def grow() -> None:
        with target.open("wb") as handle:
            handle.write(data[:half])
            handle.flush()
            time.sleep(4)
            handle.write(data[half:])

    writer = threading.Thread(target=grow)
    writer.start()
    try:
        collect_env.dags_test("spot_collect_proxy_bluecoat", {"max_wait_seconds": 90, "stable_seconds": 8})
    finally:
        writer.join()
    rows = collect_env.rows_of(collect_env.read_topic("proxy_bluecoat"))
    assert len(rows) == 11


def test_bad_captures_fail_alone_and_stay_put(collect_env: CollectEnv) -> None:
    """Empty, truncated, corrupt and text-as-pcap captures fail with their names; the good one passes."""
    folder = collect_env.collector("dns_server_1")
    good = folder / DNS_SAMPLES[0].name
    shutil.copy2(DNS_SAMPLES[0], good)
    sample = DNS_SAMPLES[0].read_bytes()
    bad = {
        "empty.pcap": b"",
        "truncated.pcap": sample[: len(sample) // 2],
        "corrupt.pcap": sample[:24] + bytes(range(256)) * 8,
        "text.pcap": b"this is not a capture\n" * 20,
    }
    for name, content in bad.items():
        (folder / name).write_bytes(content)

    output = collect_env.collect("dns_server_1", expect_failure=True)

    assert_in_output(f"{len(bad)} of {len(bad) + 1} files failed", output)
    states = collect_env.ledger_states("dns_server_1")
    assert states[good.name] == "done"
    for name in bad:
        assert_in_output(name, output)
        assert (folder / name).exists()
        assert states[name] == "failed", states
    assert len(collect_env.rows_of(collect_env.read_topic("dns_server_1"))) == _tshark_responses(
        DNS_SAMPLES[0]
    )
