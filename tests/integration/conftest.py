"""Integration tests talk to the real local stack (``make stack-up``). No mocks here.

The environment comes from ``scripts/env.sh`` (``make test`` sources it): ports, AIRFLOW_HOME and the
``AIRFLOW_CONN_SPOT_*`` connections. A service that is down fails the test loudly instead of skipping
it, because a skipped integration test proves nothing.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SERVICE_PORTS = {
    "kafka": "SPOT_KAFKA_PORT",
    "hdfs-namenode-http": "SPOT_HDFS_HTTP_PORT",
    "hdfs-namenode-rpc": "SPOT_HDFS_RPC_PORT",
    "hive-metastore": "SPOT_METASTORE_PORT",
    "hiveserver2": "SPOT_HIVE_PORT",
    "airflow-api-server": "SPOT_AIRFLOW_PORT",
}


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def local_stack() -> dict[str, int]:
    """Fail every integration test with one clear message when the stack is not up."""
    if "SPOT_STACK_DIR" not in os.environ:
        pytest.fail("the stack environment is not loaded: run through `make test` or `. scripts/env.sh`")
    host = os.environ.get("SPOT_BIND_HOST", "127.0.0.1")
    ports = {name: int(os.environ[var]) for name, var in SERVICE_PORTS.items()}
    down = [f"{name} ({host}:{port})" for name, port in ports.items() if not _port_open(host, port)]
    if down:
        pytest.fail("local stack services are down: " + ", ".join(down) + "; run `make stack-up`")
    return ports


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A name no other test (or earlier run) uses, for topics, tables and HDFS paths."""
    base = "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:30]
    yield f"it_{base}_{uuid.uuid4().hex[:8]}"
