"""Checks of docker-compose.yaml, the production-like topology of the stack.

The development machines and CI have no Docker engine, so the file is never started here. It is
validated with ``docker-compose config`` (Debian package ``docker-compose``, which CI installs)
and read with PyYAML to check the topology the architecture asks for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
COMPOSE_TIMEOUT_S = 120

# The local stack's variable names, with the defaults both stacks use.
PORT_VARIABLES = {
    "SPOT_KAFKA_PORT": 9092,
    "SPOT_HDFS_RPC_PORT": 8020,
    "SPOT_HDFS_HTTP_PORT": 9870,
    "SPOT_METASTORE_PORT": 9083,
    "SPOT_HIVE_PORT": 10000,
    "SPOT_AIRFLOW_PORT": 8080,
}
# Which service publishes which variable's port, and on which container port.
PUBLISHED_BY = {
    "SPOT_KAFKA_PORT": ("kafka", 19092),
    "SPOT_HDFS_RPC_PORT": ("namenode", 8020),
    "SPOT_HDFS_HTTP_PORT": ("namenode", 9870),
    "SPOT_METASTORE_PORT": ("metastore", 9083),
    "SPOT_HIVE_PORT": ("hiveserver2", 10000),
    "SPOT_AIRFLOW_PORT": ("airflow-apiserver", 8080),
}

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
REQUIRED_SERVICES = (
    "kafka",
    "namenode",
    "datanode",
    "metastore-db",
    "metastore",
    "hiveserver2",
    "spark-master",
    "spark-worker",
    "airflow-db",
    *AIRFLOW_SERVICES,
)

EXPECTED_CONNECTIONS: dict[str, dict[str, Any]] = {
    "AIRFLOW_CONN_SPOT_KAFKA": {
        "conn_type": "kafka",
        "extra": {"bootstrap.servers": "kafka:9092"},
    },
    "AIRFLOW_CONN_SPOT_WEBHDFS": {
        "conn_type": "webhdfs",
        "host": "namenode",
        "port": 9870,
    },
    "AIRFLOW_CONN_SPOT_HIVESERVER2": {
        "conn_type": "hiveserver2",
        "host": "hiveserver2",
        "port": 10000,
    },
    "AIRFLOW_CONN_SPOT_HIVE_CLI": {
        "conn_type": "hive_cli",
        "extra": {"use_beeline": True},
    },
    "AIRFLOW_CONN_SPOT_METASTORE": {"conn_type": "hive_metastore", "port": 9083},
    "AIRFLOW_CONN_SPOT_SPARK": {
        "conn_type": "spark",
        "host": "spark://spark-master",
        "port": 7077,
    },
}


# --------------------------------------------------------------------------------- helpers


def _docker_compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail(
            "docker-compose is not installed, so docker-compose.yaml cannot be validated. "
            "Install the Debian package: apt-get install -y docker-compose",
            pytrace=False,
        )
    return exe


def _clean_env(**overrides: str) -> dict[str, str]:
    """The environment minus the variables the compose file reads, plus ``overrides``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SPOT_", "COMPOSE_")) and k != "AIRFLOW_UID"
    }
    env.update(overrides)
    return env


def _run_config(
    *extra_args: str, env: dict[str, str], global_args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    argv = [
        _docker_compose(),
        *global_args,
        "-f",
        str(COMPOSE_FILE),
        "config",
        *extra_args,
    ]
    try:
        proc = subprocess.run(
            argv,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=COMPOSE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(argv)} did not finish within {COMPOSE_TIMEOUT_S} s")
    assert proc.returncode == 0, (
        f"{' '.join(argv)} exited with {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


def _published_ports(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port, from either the short or the long port syntax."""
    result: dict[int, int] = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            result[int(entry["target"])] = int(entry["published"])
        else:
            parts = str(entry).split("/")[0].split(":")
            result[int(parts[-1])] = int(parts[-2])
    return result


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _volume_strings(service: dict[str, Any]) -> list[str]:
    out = []
    for vol in service.get("volumes", []):
        if isinstance(vol, dict):
            out.append(f"{vol.get('source', '')}:{vol['target']}")
        else:
            out.append(str(vol))
    return out


@pytest.fixture(scope="module")
def raw_text() -> str:
    assert COMPOSE_FILE.is_file(), f"missing {COMPOSE_FILE}"
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(raw_text: str) -> dict[str, Any]:
    data = yaml.safe_load(raw_text)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


# ------------------------------------------------------------------ docker-compose validation


def test_docker_compose_config_is_valid() -> None:
    proc = _run_config("-q", env=_clean_env())
    assert proc.stdout.strip() == ""


def _empty_env_file(tmp_path: Path) -> tuple[str, str]:
    """``--env-file`` of an empty file, so that a developer's .env cannot change the result."""
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return ("--env-file", str(env_file))


def test_port_variables_default_to_local_stack_ports(tmp_path: Path) -> None:
    proc = _run_config(env=_clean_env(), global_args=_empty_env_file(tmp_path))
    resolved = yaml.safe_load(proc.stdout)["services"]
    for var, (service, container_port) in PUBLISHED_BY.items():
        ports = _published_ports(resolved[service])
        assert ports.get(container_port) == PORT_VARIABLES[var], (service, ports)


def test_port_variables_choose_published_ports(tmp_path: Path) -> None:
    overrides = {var: str(20000 + i) for i, var in enumerate(PUBLISHED_BY)}
    proc = _run_config(env=_clean_env(**overrides), global_args=_empty_env_file(tmp_path))
    resolved = yaml.safe_load(proc.stdout)["services"]
    for var, (service, container_port) in PUBLISHED_BY.items():
        ports = _published_ports(resolved[service])
        assert ports.get(container_port) == int(overrides[var]), (var, service, ports)
    # Host clients of Kafka are sent back to the published port.
    advertised = _environment(resolved["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert f"EXTERNAL://localhost:{overrides['SPOT_KAFKA_PORT']}" in advertised


# ------------------------------------------------------------------------ structure (PyYAML)


def test_header_says_how_it_is_validated(raw_text: str) -> None:
    header = "\n".join(line for line in raw_text.splitlines()[:15] if line.startswith("#"))
    assert "docker-compose" in header and "config -q" in header
    assert "no Docker engine" in header


def test_required_services_exist(services: dict[str, Any]) -> None:
    missing = [name for name in REQUIRED_SERVICES if name not in services]
    assert not missing, f"services missing from docker-compose.yaml: {missing}"


@pytest.mark.parametrize("var,default", sorted(PORT_VARIABLES.items()))
def test_local_stack_variables_are_used_with_defaults(raw_text: str, var: str, default: int) -> None:
    assert re.search(r"\$\{" + var + r":-" + str(default) + r"\}", raw_text), (
        f"docker-compose.yaml does not use ${{{var}:-{default}}}"
    )


def test_images(services: dict[str, Any]) -> None:
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    for name in ("namenode", "datanode"):
        assert services[name]["image"].startswith("apache/hadoop:3")
    assert services["hiveserver2"]["image"].startswith("apache/hive:4.")
    for name in ("spark-master", "spark-worker"):
        assert services[name]["image"].startswith("apache/spark:4.")
    for name in ("metastore-db", "airflow-db"):
        assert services[name]["image"].startswith("postgres:")


def test_spark_image_matches_pinned_pyspark(services: dict[str, Any]) -> None:
    """The Airflow image's spark-submit drives the cluster: client and cluster versions agree."""
    pins = re.findall(r"^pyspark==(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert pins, "requirements.txt pins no pyspark version"
    for name in ("spark-master", "spark-worker"):
        assert services[name]["image"] == f"apache/spark:{pins[0]}"


def test_hive_metastore_is_apache_hive_on_postgres(services: dict[str, Any]) -> None:
    metastore = services["metastore"]
    env = _environment(metastore)
    assert env["SERVICE_NAME"] == "metastore"
    assert env["DB_DRIVER"] == "postgres"
    assert "jdbc:postgresql://metastore-db:5432/" in env["SERVICE_OPTS"]
    # Built from the same apache/hive release as HiveServer2, plus the JDBC driver.
    hive_tag = services["hiveserver2"]["image"].split(":", 1)[1]
    assert str(metastore["build"]["args"]["HIVE_VERSION"]) == hive_tag
    dockerfile = (ROOT / metastore["build"]["context"] / "Dockerfile").read_text()
    assert "FROM apache/hive:${HIVE_VERSION}" in dockerfile
    assert "/opt/hive/lib/postgres.jar" in dockerfile
    assert _environment(services["hiveserver2"])["SERVICE_NAME"] == "hiveserver2"
    assert "thrift://metastore:9083" in _environment(services["hiveserver2"])["SERVICE_OPTS"]


def test_airflow_services(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert svc["build"]["dockerfile"] == "docker/airflow/Dockerfile", name
        assert str(svc["build"]["args"]["AIRFLOW_VERSION"]) == "3.3.2", name
        mounts = _volume_strings(svc)
        for folder in ("dags", "plugins", "include"):
            assert f"./{folder}:/opt/airflow/{folder}" in mounts, (name, folder)
    dockerfile = (ROOT / "docker/airflow/Dockerfile").read_text()
    assert "ARG AIRFLOW_VERSION=3.3.2" in dockerfile
    assert "FROM apache/airflow:${AIRFLOW_VERSION}" in dockerfile

    commands = {name: " ".join(services[name]["command"]) for name in AIRFLOW_SERVICES}
    assert commands["airflow-init"] == "airflow db migrate"
    assert "api-server" in commands["airflow-apiserver"]
    assert commands["airflow-scheduler"].endswith("scheduler")
    assert commands["airflow-dag-processor"].endswith("dag-processor")
    assert commands["airflow-triggerer"].endswith("triggerer")
    assert (
        "@airflow-db:5432/airflow"
        in _environment(services["airflow-scheduler"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_connections(services: dict[str, Any], name: str) -> None:
    env = _environment(services[name])
    for var, expected in EXPECTED_CONNECTIONS.items():
        assert var in env, f"{name} lacks {var}"
        conn = json.loads(env[var])
        for key, value in expected.items():
            if key == "extra":
                for extra_key, extra_value in value.items():
                    assert conn["extra"][extra_key] == extra_value, (var, extra_key)
            else:
                assert conn[key] == value, (var, key)


def test_kafka_is_single_node_kraft(services: dict[str, Any]) -> None:
    env = _environment(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"


@pytest.mark.parametrize(
    "relpath",
    [
        "docker/hadoop/core-site.xml",
        "docker/hadoop/hdfs-site.xml",
        "docker/hive/hive-site.xml",
    ],
)
def test_mounted_xml_is_hadoop_configuration(relpath: str) -> None:
    root = ET.parse(ROOT / relpath).getroot()
    assert root.tag == "configuration"
    names = [prop.findtext("name") for prop in root.iter("property")]
    assert names and all(names), relpath
    assert len(names) == len(set(names)), f"{relpath} sets a property twice"


def test_hadoop_config_files(services: dict[str, Any]) -> None:
    core = (ROOT / "docker/hadoop/core-site.xml").read_text()
    hdfs = (ROOT / "docker/hadoop/hdfs-site.xml").read_text()
    assert "hdfs://namenode:8020" in core
    assert "namenode:8020" in hdfs and "namenode:9870" in hdfs
    for name in ("namenode", "datanode"):
        command = services[name]["command"]
        assert command == ["hdfs", name]
    spark_defaults = (ROOT / "docker/spark/spark-defaults.conf").read_text()
    assert "thrift://metastore:9083" in spark_defaults


def test_depends_on_conditions_are_consistent(services: dict[str, Any]) -> None:
    seen_conditions = set()
    for name, svc in services.items():
        depends = svc.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: use depends_on with conditions"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = spec["condition"]
            seen_conditions.add(condition)
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target}, which has no healthcheck"
                )
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is a one-shot service"
            else:
                assert condition == "service_started", condition
    assert {"service_healthy", "service_completed_successfully"} <= seen_conditions
    # Long-running services each say how to tell they are up.
    for name in REQUIRED_SERVICES:
        if name != "airflow-init":
            assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_bind_mount_sources_exist(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for mount in _volume_strings(svc):
            source = mount.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        build = svc.get("build")
        if build:
            context = ROOT / build["context"]
            assert context.is_dir(), f"{name}: missing build context {context}"
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
