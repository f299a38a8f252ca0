"""Secured Kafka: collect's producer and the listener on the stack broker's SASL_PLAINTEXT listener.

One set of connection extras (librdkafka names, as in the ``spot_kafka`` connection) is used as is by
the confluent-kafka producer and translated by :mod:`spot_operators.kafka_options` for the listener's
Spark Kafka source (the Java client). A wrong password fails the listener with Kafka's authentication
error instead of hanging or loading nothing quietly.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from spot_operators.envelope import encode_message
from spot_operators.kafka_options import LISTENER_KAFKA_OPTIONS_ENV, spark_kafka_options

from . import test_listener
from .test_listener import LISTENER, ListenerRun, _hook, flow_csv_row, inline

# The listener tests' fixtures, registered here under their names.
topic = test_listener.topic
hdfs = test_listener.hdfs
hdfs_base = test_listener.hdfs_base

HOUR = 1_700_000_000 - 1_700_000_000 % 3600


def _sasl_extras(password: str | None = None) -> dict[str, str]:
    secret = Path(os.environ["SPOT_STACK_DIR"]) / "run" / "kafka-sasl-password"
    if password is None:
        if not secret.is_file():
            pytest.fail(f"{secret} is missing: restart Kafka with scripts/stack.sh (it enables SASL/PLAIN)")
        password = secret.read_text().strip()
    host = os.environ.get("SPOT_BIND_HOST", "127.0.0.1")
    return {
        "bootstrap.servers": f"{host}:{os.environ['SPOT_KAFKA_SASL_PORT']}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "spot",
        "sasl.password": password,
    }


def _listener_env(extras: dict[str, str]) -> dict[str, str]:
    return {LISTENER_KAFKA_OPTIONS_ENV: json.dumps(spark_kafka_options(extras))}


def test_collect_producer_and_listener_share_one_sasl_connection(
    tmp_path: Path, topic: str, hdfs: Any, hdfs_base: str
) -> None:
    extras = _sasl_extras()
    producer = Producer({**extras, "enable.idempotence": True, "acks": "all"})
    rows = [flow_csv_row(HOUR + i, 40000 + i) for i in range(25)]
    errors: list[Any] = []
    message = inline(rows, "d" * 64)
    producer.produce(
        topic,
        value=encode_message(message),
        key=message.file_digest.encode(),
        on_delivery=lambda err, _m: errors.append(err) if err else None,
    )
    assert producer.flush(60) == 0 and errors == []

    run = ListenerRun(hdfs, hdfs_base, [topic], tmp_path)
    result = tmp_path / "sasl.json"
    args = run.args(result)
    args[args.index("--bootstrap") + 1] = extras["bootstrap.servers"]
    hook = _hook(args, "it-listener-sasl")
    hook._env_vars = {**(hook._env_vars or {}), **_listener_env(extras)}
    hook.submit(application=str(LISTENER))
    counts = json.loads(result.read_text())
    assert counts["rows"] == 25 and counts["quarantined"] == 0, counts
    assert len(run.read(run.table)) == 25


def test_a_wrong_sasl_password_fails_the_listener_with_kafkas_reason(
    tmp_path: Path, topic: str, hdfs: Any, hdfs_base: str
) -> None:
    extras = _sasl_extras(password="not-the-password")
    run = ListenerRun(hdfs, hdfs_base, [topic], tmp_path)
    args = run.args(tmp_path / "never.json")
    args[args.index("--bootstrap") + 1] = extras["bootstrap.servers"]
    hook = _hook(args, "it-listener-sasl-bad")
    command = hook._build_spark_submit_command(str(LISTENER))
    started = time.monotonic()
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(hook._env_vars or {}), **_listener_env(extras)},
    )
    log = out.stdout + out.stderr
    assert out.returncode != 0, log[-3000:]
    assert "Authentication failed" in log or "SaslAuthenticationException" in log, log[-3000:]
    assert "not-the-password" not in log, "the password must not be logged"
    assert not (tmp_path / "never.json").exists()
    print(f"refused after {time.monotonic() - started:.1f}s")
