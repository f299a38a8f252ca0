"""End to end on the real stack: collect, then ``spot_load_<type>`` with ``airflow dags test``, then Hive.

Each test has its own config (database, HDFS app path, topics, collector folders, Airflow metadata DB),
and an inline limit of 100 kB so that both routes are exercised: the flow sample's CSV and the generated
proxy log travel as HDFS pointers, the DNS captures and the proxy sample inline. Staged CSV files are
limited to 150 kB, so those two are staged as several pieces (segments). Counts are compared with
the tools' own counts (nfdump, tshark, the log's data lines); sampled rows with values read off the raw
captures; partitions with ``SHOW PARTITIONS``, through HiveServer2 and through beeline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.apache.hive.hooks.hive import HiveCliHook, HiveServer2Hook

from .test_collect import DNS_SAMPLES, FLOW_SAMPLE, PROXY_SAMPLE, CollectEnv, _tshark_responses

INLINE_LIMIT = 100_000
STAGED_CSV_MAX_BYTES = 150_000


@pytest.fixture
def load_env(tmp_path: Path, unique_name: str) -> Any:
    env = CollectEnv(
        tmp_path,
        unique_name.replace("_", "-"),
        inline_limit=INLINE_LIMIT,
        staged_csv_max_bytes=STAGED_CSV_MAX_BYTES,
    )
    env.provision()
    yield env
    env.cleanup()


def _hs2() -> HiveServer2Hook:
    return HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")


def _count(env: CollectEnv, table: str) -> int:
    return int(_hs2().get_records(f"SELECT COUNT(*) FROM {env.dbname}.{table}")[0][0])


def _beeline(env: CollectEnv, hql: str, header: str) -> list[str]:
    """Rows of one query through beeline (tsv2), those after its ``header`` line (beeline prints more)."""
    cli = HiveCliHook(hive_cli_conn_id="spot_hive_cli", hive_cli_params="--silent=true --outputformat=tsv2")
    lines = cli.run_cli(hql + ";", schema=env.dbname, verbose=False).splitlines()
    # beeline --silent still prints its own lines before the result (and may glue "null" to them).
    starts = [i for i, line in enumerate(lines) if line.strip().endswith(header)]
    assert starts, f"no {header!r} header in beeline output: {lines}"
    return [line for line in lines[starts[-1] + 1 :] if line.strip() not in ("", "null")]


def _nfdump_flows(path: Path) -> int:
    out = subprocess.run(
        ["nfdump", "-r", str(path), "-q", "-N", "-o", "fmt:%ts"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return sum(1 for line in out.stdout.splitlines() if line.strip())


def _load(env: CollectEnv, data_type: str) -> str:
    output = env.dags_test(f"spot_load_{data_type}", timeout=900)
    assert "reconcile" in output
    return output


def _assert_staged_in_pieces(messages: list[Any], limit: int) -> None:
    """One file's POINTER messages name pieces of at most ``limit`` bytes, numbered 0..n-1 of n."""
    count = messages[0].segment_count
    assert count > 1
    assert sorted(m.segment_index for m in messages) == list(range(count))
    assert {m.segment_count for m in messages} == {count}
    assert all(m.pointer.bytes <= limit for m in messages)
    assert len({m.pointer.hdfs_path for m in messages}) == count


def _assert_reloading_adds_nothing(env: CollectEnv, data_type: str, expected: int) -> None:
    _load(env, data_type)
    assert _count(env, data_type) == expected


def test_flow_sample_lands_in_hive_once(load_env: CollectEnv) -> None:
    env = load_env
    shutil.copy2(FLOW_SAMPLE, env.collector("flow_internals") / FLOW_SAMPLE.name)
    env.collect("flow_internals")
    messages = env.read_topic("flow_internals")
    assert {m.kind for m in messages} == {"POINTER"}
    _assert_staged_in_pieces(messages, STAGED_CSV_MAX_BYTES)

    _load(env, "flow")

    expected = _nfdump_flows(FLOW_SAMPLE)
    assert expected == 3018
    assert _count(env, "flow") == expected
    # The biggest flow of the capture, as nfdump prints it (-6 -N -O bytes): UDP 443 -> 58187.
    top = _hs2().get_records(
        f"SELECT sip, dip, sport, dport, proto, ipkt, ibyt, y, m, d, h FROM {env.dbname}.flow "
        "ORDER BY ibyt DESC LIMIT 1"
    )
    assert list(top[0]) == [
        "2800:3f0:4001:830::2003",
        "2804:3714:4058:ff30:c526:712:93f6:1dce",
        443,
        58187,
        "UDP",
        2192,
        2232887,
        2023,
        1,
        25,
        18,
    ]
    assert _beeline(env, "SHOW PARTITIONS flow", "partition") == ["y=2023/m=1/d=25/h=18"]
    assert _beeline(env, "SELECT COUNT(*) AS n FROM flow", "n") == [str(expected)]

    _assert_reloading_adds_nothing(env, "flow", expected)


def test_dns_captures_land_in_hive_once(load_env: CollectEnv) -> None:
    env = load_env
    for sample in DNS_SAMPLES:
        shutil.copy2(sample, env.collector("dns_server_1") / sample.name)
    env.collect("dns_server_1")
    assert {m.kind for m in env.read_topic("dns_server_1")} == {"INLINE"}

    _load(env, "dns")

    expected = sum(_tshark_responses(s) for s in DNS_SAMPLES)
    assert expected == 82
    assert _count(env, "dns") == expected
    # The first response of packetq-dns.pcap, as tshark shows it.
    first = _hs2().get_records(
        f"SELECT unix_tstamp, ip_dst, dns_qry_name, dns_qry_type, dns_qry_rcode FROM {env.dbname}.dns "
        "ORDER BY unix_tstamp, frame_time LIMIT 1"
    )
    assert list(first[0]) == [1476976981, "172.17.0.10", "google.com", 1, 0]
    partitions = _beeline(env, "SHOW PARTITIONS dns", "partition")
    assert partitions and all(p.startswith("y=") and "/h=" in p for p in partitions), partitions
    hs2_partitions = [row[0] for row in _hs2().get_records(f"SHOW PARTITIONS {env.dbname}.dns")]
    assert sorted(hs2_partitions) == sorted(partitions)

    _assert_reloading_adds_nothing(env, "dns", expected)


def _generated_proxy_log(target: Path, lines: int) -> int:
    """The sample's header and data lines repeated an hour later with growing seconds (> inline limit)."""
    text = PROXY_SAMPLE.read_text(encoding="utf-8").splitlines()
    header = [line for line in text if line.startswith("#")]
    data = [line for line in text if line and not line.startswith("#")]
    start = datetime(2024, 3, 22, 17, 0, 0)
    out = []
    for n in range(lines):
        line = data[n % len(data)]
        stamp = start + timedelta(seconds=n % 3600)
        out.append(f"{stamp:%Y-%m-%d %H:%M:%S}" + line[19:])
    target.write_text("\n".join([*header, *out]) + "\n", encoding="utf-8")
    return lines


def test_proxy_logs_inline_and_pointer_land_in_hive_once(load_env: CollectEnv) -> None:
    env = load_env
    folder = env.collector("proxy_bluecoat")
    shutil.copy2(PROXY_SAMPLE, folder / PROXY_SAMPLE.name)
    generated = _generated_proxy_log(folder / "generated-big.log", 1500)
    sample_rows = sum(
        1 for line in PROXY_SAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    env.collect("proxy_bluecoat")
    messages = env.read_topic("proxy_bluecoat")
    kinds = {(m.file_name, m.kind) for m in messages}
    assert kinds == {(PROXY_SAMPLE.name, "INLINE"), ("generated-big.log", "POINTER")}
    _assert_staged_in_pieces([m for m in messages if m.kind == "POINTER"], STAGED_CSV_MAX_BYTES)

    _load(env, "proxy")

    expected = sample_rows + generated
    assert _count(env, "proxy") == expected
    first = _hs2().get_records(
        f"SELECT p_date, p_time, clientip, host, duration, respcode, scbytes, csbytes, y, m, d, h "
        f"FROM {env.dbname}.proxy WHERE h = '16' AND host = 'pixel.tapad.com'"
    )
    assert list(first[0]) == [
        "2024-03-22",
        "16:16:01",
        "10.82.255.36",
        "pixel.tapad.com",
        48,
        "302",
        1242,
        969,
        "2024",
        "03",
        "22",
        "16",
    ]
    partitions = _beeline(env, "SHOW PARTITIONS proxy", "partition")
    assert partitions == ["y=2024/m=03/d=22/h=16", "y=2024/m=03/d=22/h=17"]

    _assert_reloading_adds_nothing(env, "proxy", expected)


def _listener_started(apps: Path) -> bool:
    """The listener logs ``listener <id> started (continuous)`` once its query runs."""
    return any("started (continuous)" in log.read_text(errors="replace") for log in apps.rglob("driver.log"))


def test_continuous_listener_dag_makes_a_new_file_queryable(tmp_path: Path, unique_name: str) -> None:
    """``spot_listener_flow`` runs the listener continuously; a collected file becomes queryable in Hive.

    The listener registers the hours each batch wrote, so no load DAG is needed for the rows to show.
    ``dags test`` of the listener DAG runs in the background with its own Airflow DB (the collect run
    uses another one: two processes on one SQLite file would lock each other out).
    """
    from spot_operators.hooks.spark_app import group_alive, kill_local

    from .test_collect import private_airflow_db

    env = CollectEnv(tmp_path, unique_name.replace("_", "-"), inline_limit=INLINE_LIMIT)
    env.config["spark-streaming"]["spark_batch_size"] = 5
    env.config_path.write_text(json.dumps(env.config, indent=2))
    apps = tmp_path / "spark_apps"
    env.env["SPOT_SPARK_APPS_DIR"] = str(apps)
    listener_log = tmp_path / "spot_listener_flow.log"
    env.provision()
    with listener_log.open("w") as out:
        listener = subprocess.Popen(
            ["airflow", "dags", "test", "spot_listener_flow"],
            env=env.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240
        while not _listener_started(apps):
            assert listener.poll() is None, f"spot_listener_flow ended early, see {listener_log}"
            assert time.monotonic() < deadline, f"the continuous listener did not start, see {listener_log}"
            time.sleep(2)

        shutil.copy2(FLOW_SAMPLE, env.collector("flow_internals") / FLOW_SAMPLE.name)
        collect_db = {
            **env.env,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": private_airflow_db(tmp_path / "collect"),
        }
        env.env, listener_env = collect_db, env.env
        env.collect("flow_internals")
        env.env = listener_env
        published = time.monotonic()

        count, deadline = 0, time.monotonic() + 240
        while count != 3018:
            assert listener.poll() is None, f"spot_listener_flow ended, see {listener_log}"
            assert time.monotonic() < deadline, f"only {count} rows queryable after 240 s, see {listener_log}"
            time.sleep(2)
            try:
                count = _count(env, "flow")
            except Exception:  # the table has no partition yet
                count = 0
        latency = time.monotonic() - published
        print(f"continuous listener: rows queryable {latency:.1f} s after the collect run ended")
        assert [r[0] for r in _hs2().get_records(f"SHOW PARTITIONS {env.dbname}.flow")] == [
            "y=2023/m=1/d=25/h=18"
        ]
    finally:
        listener.terminate()  # dags test may not stop on SIGTERM while its trigger waits: then SIGKILL
        try:
            listener.wait(20)
        except subprocess.TimeoutExpired:
            listener.kill()
            listener.wait(20)
        run_dirs = [p.parent for p in apps.rglob("supervisor.json")]
        for run_dir in run_dirs:
            kill_local(run_dir)
        env.cleanup()
    for run_dir in run_dirs:
        pgid = json.loads((run_dir / "supervisor.json").read_text())["pgid"]
        assert not group_alive(pgid), f"listener of {run_dir} still running"
