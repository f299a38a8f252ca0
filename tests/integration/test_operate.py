"""Backfill, failed-segment replay and hourly reprocess on the real stack (``airflow dags test``).

Each test has its own config, topics, HDFS path, Hive database and Airflow metadata DB (CollectEnv).
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook

from spot_operators.dissectors.proxy import dissect_proxy_file
from spot_operators.rows import Row
from spot_operators.segments import csv_line

from . import test_collect
from .private_kafka import PrivateKafka
from .test_collect import FLOW_SAMPLE, PROXY_SAMPLE, CollectEnv, _proxy_hour, assert_in_output

# The fixture: a private config, topics, HDFS path, Hive database and Airflow metadata DB.
collect_env = test_collect.collect_env


def _staged_proxy_csv(env: CollectEnv) -> Path:
    """The proxy sample as staged CSV in the pipeline's local staging (what Spot's collector left)."""
    staging = Path(env.config["pipelines"]["proxy_bluecoat"]["local_staging"]) / "csv"
    staging.mkdir(parents=True, exist_ok=True)
    rows = [item for item in dissect_proxy_file(PROXY_SAMPLE) if isinstance(item, Row)]
    assert len(rows) == 11
    target = staging / "proxysg-main.csv"
    target.write_text("".join(csv_line(r.fields) + "\n" for r in rows), encoding="utf-8")
    return target


def _backfill(env: CollectEnv, source: Path | str, **conf: object) -> str:
    return env.dags_test(
        "spot_backfill", {"pipeline": "proxy_bluecoat", "source": str(source), **conf}, timeout=900
    )


def test_backfill_to_kafka_counts_then_sends_once(collect_env: CollectEnv) -> None:
    source = _staged_proxy_csv(collect_env)

    dry = _backfill(collect_env, source, target="kafka", dry_run=True)
    assert_in_output("1 file(s), would send 11 row(s)", dry)
    assert collect_env.read_topic("proxy_bluecoat") == []
    assert not (source.parent.parent / "backfill_ledger.sqlite3").exists(), "a dry run creates nothing"

    _backfill(collect_env, source.parent, target="kafka")
    messages = collect_env.read_topic("proxy_bluecoat")
    assert len(collect_env.rows_of(messages)) == 11

    again = _backfill(collect_env, f"{source.parent}/*.csv", target="kafka")
    assert_in_output("1 skipped as already done", again)
    assert len(collect_env.read_topic("proxy_bluecoat")) == len(messages)

    windowed = _backfill(
        collect_env, source, target="kafka", dry_run=True, since="2000-01-01T00:00:00Z", until="2000-01-02"
    )
    assert_in_output("would send 0 row(s)", windowed)


def test_load_after_a_kafka_backfill_and_its_repeat_lands_each_row_once(
    tmp_path: Path, unique_name: str
) -> None:
    """spot_load after a backfill to Kafka and its repeat: the rows reach Hive once, reconciled.

    Limits of 1 kB make the backfill stage the 11 rows in HDFS as pieces, one POINTER message each.
    """
    env = CollectEnv(tmp_path, unique_name.replace("_", "-"), inline_limit=1000, staged_csv_max_bytes=1000)
    try:
        env.provision()
        source = _staged_proxy_csv(env)
        _backfill(env, source, target="kafka")
        messages = env.read_topic("proxy_bluecoat")
        assert {m.kind for m in messages} == {"POINTER"}
        assert len(messages) == messages[0].segment_count > 1
        assert all(m.pointer is not None and m.pointer.bytes <= 1000 for m in messages)
        assert len(env.rows_of(messages)) == 11
        again = _backfill(env, source, target="kafka")
        assert_in_output("1 skipped as already done", again)
        output = env.dags_test("spot_load_proxy", timeout=900)
        assert_in_output("reconcile", output)
        assert _hive_count(env, "proxy") == 11
    finally:
        env.cleanup()


def _hive_count(env: CollectEnv, table: str) -> int:
    hive = HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")
    return int(hive.get_records(f"SELECT COUNT(*) FROM {env.dbname}.{table}")[0][0])


def test_backfill_refuses_sources_outside_the_staging_roots(collect_env: CollectEnv) -> None:
    staging = Path(collect_env.config["pipelines"]["proxy_bluecoat"]["local_staging"])
    for bad in ("/etc/passwd", f"{staging}/../../collector/proxy_bluecoat"):
        output = collect_env.dags_test(
            "spot_backfill",
            {"pipeline": "proxy_bluecoat", "source": bad, "target": "kafka"},
            expect_failure=True,
        )
        assert_in_output("refused", output)
        assert_in_output("allowed roots", output)
    assert collect_env.read_topic("proxy_bluecoat") == []


def test_backfill_to_hive_loads_once(collect_env: CollectEnv) -> None:
    source = _staged_proxy_csv(collect_env)
    _backfill(collect_env, source, target="hive")
    assert _hive_count(collect_env, "proxy") == 11
    again = _backfill(collect_env, source, target="hive")
    assert_in_output("1 skipped as already done", again)
    assert _hive_count(collect_env, "proxy") == 11


def test_replay_sends_kept_segments_once_and_empties_the_folder(tmp_path: Path, unique_name: str) -> None:
    broker = PrivateKafka(tmp_path / "kafka")
    broker.start()
    env = CollectEnv(tmp_path / "run", unique_name.replace("_", "-"))
    env.env.update(broker.connection_env())
    env.bootstrap = broker.bootstrap
    staging = Path(env.config["pipelines"]["proxy_bluecoat"]["local_staging"])
    try:
        env.provision()
        broker.stop()
        shutil.copy2(PROXY_SAMPLE, env.collector("proxy_bluecoat") / "proxysg-main.log")
        env.collect("proxy_bluecoat", expect_failure=True)
        kept = list((staging / "failed").glob("*/segment-*.avro"))
        assert kept

        down = env.dags_test("spot_replay_failed_segments")
        assert_in_output("Kafka does not answer", down)
        assert list((staging / "failed").glob("*/segment-*.avro")) == kept

        broker.start()
        output = env.dags_test("spot_replay_failed_segments")
        assert_in_output("pending: {", output)
        assert len(env.rows_of(env.read_topic("proxy_bluecoat"))) == 11
        assert not list((staging / "failed").iterdir()), "replayed folders must be removed"

        env.dags_test("spot_replay_failed_segments")
        assert len(env.rows_of(env.read_topic("proxy_bluecoat"))) == 11
    finally:
        broker.stop()
        env.cleanup()


def test_reprocess_skips_collected_originals_and_reingests_unknown_ones_once(collect_env: CollectEnv) -> None:
    env = collect_env
    shutil.copy2(FLOW_SAMPLE, env.collector("flow_internals") / FLOW_SAMPLE.name)
    env.collect("flow_internals")
    published = len(env.read_topic("flow_internals"))
    # A manual run covers the last complete interval before its logical date: 19:00 -> 18:00-19:00.
    output = _dags_test_at(env, "spot_reprocess_flow", "2023-01-25T19:00:00+00:00")
    assert_in_output("skipped: published by collect", output)
    assert len(env.read_topic("flow_internals")) == published

    # An original nobody's ledger knows (another collector, a lost ledger) is re-ingested, once.
    day, hour = _proxy_hour()
    env.hdfs.makedirs(f"{env.app_path}/proxy/binary/{day}/{hour}")
    env.hdfs.upload(f"{env.app_path}/proxy/binary/{day}/{hour}/proxysg-main.log", str(PROXY_SAMPLE))
    logical = (datetime.strptime(day + hour, "%Y%m%d%H") + timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:00:00+00:00"
    )
    _dags_test_at(env, "spot_reprocess_proxy", logical)
    assert len(env.rows_of(env.read_topic("proxy_bluecoat"))) == 11
    again = _dags_test_at(env, "spot_reprocess_proxy", logical)
    assert_in_output("already reprocessed", again)
    assert len(env.rows_of(env.read_topic("proxy_bluecoat"))) == 11

    # And the load after the reprocess and its repeat: the re-ingested proxy rows reach Hive once.
    assert_in_output("reconcile", env.dags_test("spot_load_proxy", timeout=900))
    assert _hive_count(env, "proxy") == 11


def _dags_test_at(env: CollectEnv, dag_id: str, logical_date: str) -> str:
    import subprocess

    out = subprocess.run(
        ["airflow", "dags", "test", dag_id, logical_date],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=900,
        env=env.env,
        check=False,
    )
    text = out.stdout + out.stderr
    (env.tmp / f"{dag_id}-{logical_date[:13]}.log").write_text(text)
    assert out.returncode == 0, text[-4000:]
    return text
