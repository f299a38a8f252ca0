"""A second, private HDFS (NameNode + DataNode, same jars as the stack's) that a test may stop at will.

Outage tests must not stop the shared HDFS under other tests; this one lives in tmp on its own ports.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from .private_kafka import _free_port

OPENS = [
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in (
        "java.lang",
        "java.lang.reflect",
        "java.util",
        "java.io",
        "java.net",
        "java.nio",
        "sun.nio.ch",
    )
]


def _xml(path: Path, properties: dict[str, str]) -> None:
    body = "".join(f"<property><name>{k}</name><value>{v}</value></property>" for k, v in properties.items())
    path.write_text(f'<?xml version="1.0"?><configuration>{body}</configuration>\n')


class PrivateHdfs:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.rpc, self.http = _free_port(), _free_port()
        dn_ports = [_free_port() for _ in range(3)]
        self.conf = root / "conf"
        self.conf.mkdir()
        _xml(self.conf / "core-site.xml", {"fs.defaultFS": f"hdfs://127.0.0.1:{self.rpc}"})
        _xml(
            self.conf / "hdfs-site.xml",
            {
                "dfs.replication": "1",
                "dfs.namenode.name.dir": f"file://{root / 'name'}",
                "dfs.datanode.data.dir": f"file://{root / 'data'}",
                "dfs.namenode.rpc-address": f"127.0.0.1:{self.rpc}",
                "dfs.namenode.http-address": f"127.0.0.1:{self.http}",
                "dfs.datanode.address": f"127.0.0.1:{dn_ports[0]}",
                "dfs.datanode.http.address": f"127.0.0.1:{dn_ports[1]}",
                "dfs.datanode.ipc.address": f"127.0.0.1:{dn_ports[2]}",
                "dfs.datanode.hostname": "127.0.0.1",
                "dfs.namenode.safemode.extension": "0",
                "dfs.permissions.enabled": "false",
                "dfs.namenode.datanode.registration.ip-hostname-check": "false",
            },
        )
        (self.conf / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, console\nlog4j.appender.console=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.console.layout=org.apache.log4j.PatternLayout\n"
        )
        self.lib = Path(os.environ["SPOT_STACK_DIR"]) / "lib" / "hadoop"
        self.java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
        self.processes: list[subprocess.Popen[bytes]] = []
        subprocess.run(
            [*self._command("org.apache.hadoop.hdfs.server.namenode.NameNode"), "-format", "-nonInteractive"],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def _command(self, main_class: str) -> list[str]:
        return [self.java, "-Xmx256m", *OPENS, "-cp", f"{self.conf}:{self.lib}/*", main_class]

    def start(self, timeout: float = 120) -> None:
        for name, main_class in (
            ("namenode", "org.apache.hadoop.hdfs.server.namenode.NameNode"),
            ("datanode", "org.apache.hadoop.hdfs.server.datanode.DataNode"),
        ):
            with (self.root / f"{name}.log").open("ab") as log:
                self.processes.append(
                    subprocess.Popen(self._command(main_class), stdout=log, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.http}/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if b'"NumLiveDataNodes" : 1' in response.read():
                        return
            except OSError:
                pass
            time.sleep(1)
        raise AssertionError(f"private HDFS did not start; see {self.root}/*.log")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=30)
        self.processes = []
        # Nothing may still answer on the ports once stopped.
        for port in (self.rpc, self.http):
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0, f"private HDFS still answers on {port}"

    def connection_env(self) -> dict[str, str]:
        """AIRFLOW_CONN_SPOT_WEBHDFS pointing at this HDFS."""
        return {
            "AIRFLOW_CONN_SPOT_WEBHDFS": (
                f'{{"conn_type": "webhdfs", "host": "127.0.0.1", "port": {self.http}, "login": "root"}}'
            )
        }

    def client(self) -> Any:
        from hdfs import InsecureClient

        return InsecureClient(f"http://127.0.0.1:{self.http}", user="root")
