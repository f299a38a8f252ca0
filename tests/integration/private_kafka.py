"""A second, private Kafka broker (same jars as the stack's) that a test may stop and start at will.

Outage tests must not stop the shared broker under other tests; this one lives in tmp on its own ports.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateKafka:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.controller_port = _free_port()
        self.lib = Path(os.environ["SPOT_STACK_DIR"]) / "lib" / "kafka"
        self.java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "kafka.log"
        self.properties = root / "server.properties"
        self.properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={root / 'data'}",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                ]
            )
            + "\n"
        )
        subprocess.run(
            [
                self.java,
                "-cp",
                f"{self.lib}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                uuid.uuid4().hex[:22],
                "-c",
                str(self.properties),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.java, "-Xmx384m", "-cp", f"{self.lib}/*", "kafka.Kafka", str(self.properties)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"private Kafka did not start; see {self.log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None

    def connection_env(self) -> dict[str, str]:
        """AIRFLOW_CONN_SPOT_KAFKA pointing at this broker, with short delivery timeouts."""
        extra = (
            f'{{"bootstrap.servers": "{self.bootstrap}", "group.id": "spot-airflow", '
            '"message.timeout.ms": "8000", "socket.timeout.ms": "5000"}'
        )
        return {"AIRFLOW_CONN_SPOT_KAFKA": f'{{"conn_type": "kafka", "extra": {extra}}}'}
