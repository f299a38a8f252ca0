"""Unit tests of the ingest config model and loader (``spot_operators.config``)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spot_operators import config as cfg
from spot_operators.config import (
    IngestConfig,
    IngestConfigError,
    load_ingest_config,
    project_root,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = PROJECT_ROOT / "include" / "ingest_conf.json"
SCHEMA = PROJECT_ROOT / "include" / "schemas" / "ingest_conf.schema.json"

BASE: dict[str, Any] = {
    "dbname": "spot",
    "kafka": {"kafka_server": "127.0.0.1", "kafka_port": 9092},
    "pipelines": {
        "flow_internals": {
            "type": "flow",
            "collector_path": "collector/flow",
            "local_staging": "staging/flow",
            "supported_files": [r"nfcapd\.[0-9]{12}"],
        },
        "dns_server_1": {
            "type": "dns",
            "collector_path": "/abs/collector/dns",
            "local_staging": "staging/dns",
        },
    },
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell must not change what these tests see."""
    monkeypatch.delenv(cfg.CONF_ENV_VAR, raising=False)
    monkeypatch.delenv(cfg.ROOT_ENV_VAR, raising=False)


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def write(tmp_path: Path, data: dict[str, Any] | str, name: str = "ingest_conf.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


def load_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(IngestConfigError) as info:
        load_ingest_config(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    # Never a raw pydantic trace.
    assert "validation error" not in message
    assert "errors.pydantic.dev" not in message
    assert "Traceback" not in message
    return message


def line_for(message: str, key_path: str) -> str:
    """The single message line reporting ``key_path``."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip().startswith(f"{key_path}:")]
    assert len(lines) == 1, f"expected one line for {key_path!r} in:\n{message}"
    return lines[0]


# ---------------------------------------------------------------------------------- shipped


def test_shipped_config_loads() -> None:
    config = load_ingest_config(SHIPPED)
    assert config.dbname == "spot"
    assert config.hdfs_app_path == "/user/spot"
    assert config.collector_processes == 2
    assert config.ingestion_interval == 10
    assert config.kafka.kafka_server == "127.0.0.1"
    assert config.kafka.kafka_port == 9092
    assert config.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert config.schema_ == "schemas/ingest_conf.schema.json"
    assert {n: p.type for n, p in config.pipelines.items()} == {
        "flow_internals": "flow",
        "dns_server_1": "dns",
        "proxy_bluecoat": "proxy",
    }
    for name, pipeline in config.pipelines.items():
        assert pipeline.name == name
        assert pipeline.topic == f"spot-{name}"
        assert pipeline.collector_path == PROJECT_ROOT / ".stack/data/collector" / name
        assert pipeline.local_staging == PROJECT_ROOT / ".stack/data/staging" / name


def test_default_path_is_shipped_config() -> None:
    assert cfg.default_config_path() == SHIPPED
    assert project_root() == PROJECT_ROOT
    assert load_ingest_config() == load_ingest_config(SHIPPED)


def test_shipped_patterns_select_complete_files_only() -> None:
    pipelines = load_ingest_config(SHIPPED).pipelines
    flow, dns, proxy = (pipelines[n] for n in ("flow_internals", "dns_server_1", "proxy_bluecoat"))
    assert flow.supported_files == [r"nfcapd\.[0-9]{12}([0-9]{2})?"]
    assert flow.matches("nfcapd.202401011200")
    assert flow.matches("/some/dir/nfcapd.20240101120000")
    assert not flow.matches("nfcapd.current.4242")
    assert not flow.matches("nfcapd.2024010112")
    assert dns.matches("capture.pcap") and not dns.matches("capture.pcap.part")
    assert proxy.matches("access.log") and not proxy.matches("access.log.1")


def test_shipped_config_matches_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(json.loads(SHIPPED.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**json.loads(SHIPPED.read_text()), "typo_key": 1}, schema)
    bad_name = base()
    bad_name["pipelines"]["flow-internals"] = bad_name["pipelines"].pop("flow_internals")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_name, schema)


# ---------------------------------------------------------------------------------- schema


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == cfg.render_json_schema(), (
        "include/schemas/ingest_conf.schema.json is stale: run "
        "`PYTHONPATH=plugins .venv/bin/python -m spot_operators.config --write-schema`"
    )


def test_schema_uses_file_spelling_of_keys() -> None:
    schema = cfg.json_schema()
    assert "spark-streaming" in schema["properties"]
    assert "$schema" in schema["properties"]
    assert set(schema["required"]) == {"dbname", "kafka", "pipelines"}
    assert schema["additionalProperties"] is False


def test_write_schema_command(tmp_path: Path) -> None:
    target = tmp_path / "out" / "schema.json"
    result = subprocess.run(
        [sys.executable, "-m", "spot_operators.config", "--write-schema", "--schema-path", str(target)],
        cwd=PROJECT_ROOT / "plugins",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert target.read_text(encoding="utf-8") == cfg.render_json_schema()


def test_check_command_reports_errors(tmp_path: Path) -> None:
    data = base()
    data["dbname"] = "spot; DROP DATABASE x"
    path = write(tmp_path, data)
    assert cfg.main(["--check", "--config", str(path)]) == 1
    assert cfg.main(["--check", "--config", str(write(tmp_path, base(), "ok.json"))]) == 0


# ---------------------------------------------------------------------------------- defaults


def test_defaults(tmp_path: Path) -> None:
    config = load_ingest_config(write(tmp_path, base()))
    assert config.hdfs_app_path == "/user/spot"
    assert config.collector_processes == 1
    assert config.ingestion_interval == 10
    assert config.spark_streaming.spark_batch_size == 30
    assert config.spark_streaming.driver_memory is None
    kafka = config.kafka
    assert (kafka.max_request_size, kafka.inline_limit_bytes, kafka.message_size) == (
        1048576,
        1048576,
        900000,
    )
    assert (kafka.topic_partitions, kafka.replication_factor) == (1, 1)
    dns = config.pipelines["dns_server_1"]
    assert dns.pkt_num == 650000
    assert dns.recursive is False
    assert dns.topic == "spot-dns_server_1"
    assert dns.supported_files == list(cfg.DEFAULT_SUPPORTED_FILES["dns"])
    assert dns.pcap_split_staging is None
    assert dns.split_staging == dns.local_staging
    assert dns.process_opt == "" and dns.process_args == []
    assert config.topics_of_type("flow") == ["spot-flow_internals"]
    assert list(config.pipelines_of_type("dns")) == ["dns_server_1"]


@pytest.mark.parametrize(
    ("given", "loaded"), [(None, "ingest"), ("ingest_v1", "ingest"), ("spot_list", "spot_list")]
)
def test_message_format_earlier_name_means_the_envelope(
    tmp_path: Path, given: str | None, loaded: str
) -> None:
    """``ingest_v1`` (the name before envelope v2) loads as ``ingest``; a config without the key too."""
    data = base()
    if given is not None:
        data["pipelines"]["flow_internals"]["message_format"] = given
    config = load_ingest_config(write(tmp_path, data))
    assert config.pipelines["flow_internals"].message_format == loaded


def test_spot_template_values_still_load(tmp_path: Path) -> None:
    """Spot's documented template: blank spark values, numbers as strings, a quoted process_opt."""
    data = base()
    data["spark-streaming"] = {
        "driver_memory": "",
        "spark_exec": "",
        "spark_executor_memory": "",
        "spark_executor_cores": "",
        "spark_batch_size": "",
    }
    data["kafka"].update({"kafka_port": "9092", "message_size": 900000})
    dns = data["pipelines"]["dns_server_1"]
    dns.update(
        {
            "pkt_num": "650000",
            "pcap_split_staging": "/tmp",
            "process_opt": "-E separator=, -T fields -e frame.time 'dns.flags.response == 1'",
        }
    )
    config = load_ingest_config(write(tmp_path, data))
    assert config.spark_streaming.spark_batch_size == 30
    assert config.kafka.kafka_port == 9092
    pipeline = config.pipelines["dns_server_1"]
    assert pipeline.pkt_num == 650000
    assert pipeline.split_staging == Path("/tmp")
    assert pipeline.process_args[-1] == "dns.flags.response == 1"


def test_zookeeper_keys_accepted_and_ignored(tmp_path: Path) -> None:
    with_zk = base()
    with_zk["kafka"].update({"zookeper_server": "zk ip", "zookeper_port": "zk port"})
    config = load_ingest_config(write(tmp_path, with_zk, "zk.json"))
    without_zk = load_ingest_config(write(tmp_path, base(), "nozk.json"))
    assert config.kafka.bootstrap_servers == without_zk.kafka.bootstrap_servers
    assert config.kafka.model_dump(exclude={"zookeper_server", "zookeper_port"}) == (
        without_zk.kafka.model_dump(exclude={"zookeper_server", "zookeper_port"})
    )
    # Only Spot's spelling is a known key; the corrected spelling is a typo like any other.
    typo = base()
    typo["kafka"]["zookeeper_server"] = "zk"
    message = load_error(write(tmp_path, typo, "typo.json"))
    assert "unknown key" in line_for(message, "kafka.zookeeper_server")


# ---------------------------------------------------------------------------------- paths


def test_relative_paths_resolve_against_project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = base()
    data["pipelines"]["dns_server_1"]["pcap_split_staging"] = "split/../split/dns"
    conf_dir = tmp_path / "elsewhere"
    conf_dir.mkdir()
    path = write(conf_dir, data)
    monkeypatch.chdir(tmp_path)  # neither the working directory nor the file's folder counts
    config = load_ingest_config(path)
    flow = config.pipelines["flow_internals"]
    dns = config.pipelines["dns_server_1"]
    assert flow.collector_path == PROJECT_ROOT / "collector" / "flow"
    assert flow.local_staging == PROJECT_ROOT / "staging" / "flow"
    assert dns.collector_path == Path("/abs/collector/dns")  # absolute paths are kept
    assert dns.pcap_split_staging == PROJECT_ROOT / "split" / "dns"


def test_project_root_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "include").mkdir(parents=True)
    write(root / "include", base())
    monkeypatch.setenv(cfg.ROOT_ENV_VAR, str(root))
    assert project_root() == root
    assert cfg.default_config_path() == root / "include" / "ingest_conf.json"
    config = load_ingest_config()
    assert config.pipelines["flow_internals"].collector_path == root / "collector" / "flow"


def test_conf_env_var_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = base()
    data["dbname"] = "from_env"
    path = write(tmp_path, data, "custom.json")
    monkeypatch.setenv(cfg.CONF_ENV_VAR, str(path))
    assert cfg.default_config_path() == path
    assert load_ingest_config().dbname == "from_env"
    # An explicit path still wins over the environment.
    assert load_ingest_config(SHIPPED).dbname == "spot"


def test_check_paths_accepts_existing_collector_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cfg.ROOT_ENV_VAR, str(tmp_path))
    (tmp_path / "collector" / "flow").mkdir(parents=True)
    data = base()
    data["pipelines"]["dns_server_1"]["collector_path"] = str(tmp_path / "dns")
    (tmp_path / "dns").mkdir()
    config = load_ingest_config(write(tmp_path, data), check_paths=True)
    assert config.pipelines["flow_internals"].collector_path.is_dir()


# ---------------------------------------------------------------------------------- errors


def test_error_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "ingest_conf.json"
    message = load_error(path)
    assert "file not found" in message


def test_error_invalid_json_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "dbname": "spot",\n  "kafka": {,}\n}\n')
    message = load_error(path)
    assert "invalid JSON at line 3, column 13" in message


def test_error_top_level_not_an_object(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "[1, 2]"))
    assert "must be a JSON object" in line_for(message, "(top level)")


def test_error_unknown_type(tmp_path: Path) -> None:
    data = base()
    data["pipelines"]["flow_internals"]["type"] = "netflow"
    message = load_error(write(tmp_path, data))
    line = line_for(message, "pipelines.flow_internals.type")
    assert "unknown pipeline type 'netflow'" in line
    assert "flow, dns, proxy" in line


def test_error_bad_regex(tmp_path: Path) -> None:
    data = base()
    data["pipelines"]["flow_internals"]["supported_files"] = ["nfcapd([0-9]"]
    message = load_error(write(tmp_path, data))
    line = line_for(message, "pipelines.flow_internals.supported_files[0]")
    assert "invalid regular expression 'nfcapd([0-9]'" in line


def test_error_empty_supported_files(tmp_path: Path) -> None:
    data = base()
    data["pipelines"]["flow_internals"]["supported_files"] = []
    message = load_error(write(tmp_path, data))
    assert "at least 1" in line_for(message, "pipelines.flow_internals.supported_files")


def test_error_missing_collector_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cfg.ROOT_ENV_VAR, str(tmp_path))
    data = base()
    data["pipelines"]["dns_server_1"]["collector_path"] = str(tmp_path)
    path = write(tmp_path, data)
    load_ingest_config(path)  # paths are not checked by default
    message = load_error(path, check_paths=True)
    line = line_for(message, "pipelines.flow_internals.collector_path")
    assert f"collector directory {tmp_path / 'collector' / 'flow'} does not exist" in line


def test_error_collector_path_is_a_file(tmp_path: Path) -> None:
    data = base()
    data["pipelines"]["dns_server_1"]["collector_path"] = str(write(tmp_path, "x", "a_file"))
    message = load_error(write(tmp_path, data), check_paths=True)
    assert "is not a directory" in line_for(message, "pipelines.dns_server_1.collector_path")


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("kafka", "max_request_size"),
        ("kafka", "inline_limit_bytes"),
        ("kafka", "message_size"),
        ("kafka", "topic_partitions"),
        ("pipelines.dns_server_1", "pkt_num"),
        ("spark-streaming", "spark_batch_size"),
        ("", "collector_processes"),
        ("", "ingestion_interval"),
    ],
)
def test_error_negative_sizes(tmp_path: Path, section: str, key: str) -> None:
    data = base()
    node = data
    for part in filter(None, section.split(".")):
        node = node.setdefault(part, {})
    node[key] = -1
    message = load_error(write(tmp_path, data))
    key_path = f"{section}.{key}" if section else key
    assert "must be greater than 0, got -1" in line_for(message, key_path)


def test_error_unknown_key(tmp_path: Path) -> None:
    data = base()
    data["pipelines"]["flow_internals"]["collector_pth"] = "typo"
    data["ingestion_intervall"] = 5
    message = load_error(write(tmp_path, data))
    assert line_for(message, "pipelines.flow_internals.collector_pth").endswith("unknown key")
    assert line_for(message, "ingestion_intervall").endswith("unknown key")


def test_error_missing_required_key(tmp_path: Path) -> None:
    data = base()
    del data["pipelines"]["flow_internals"]["local_staging"]
    del data["dbname"]
    message = load_error(write(tmp_path, data))
    assert "required key is missing" in line_for(message, "pipelines.flow_internals.local_staging")
    assert "required key is missing" in line_for(message, "dbname")


def test_error_bad_pipeline_name(tmp_path: Path) -> None:
    data = base()
    data["pipelines"]["flow-internals"] = data["pipelines"].pop("flow_internals")
    message = load_error(write(tmp_path, data))
    line = line_for(message, "pipelines.flow-internals")
    assert "invalid pipeline name 'flow-internals'" in line and "DAG ids" in line


def test_error_duplicate_key(tmp_path: Path) -> None:
    text = json.dumps(base()).replace('"dbname": "spot"', '"dbname": "spot", "dbname": "other"')
    message = load_error(write(tmp_path, text))
    assert "duplicate key" in line_for(message, "dbname")


def test_error_unsafe_names_and_paths(tmp_path: Path) -> None:
    data = base()
    data["dbname"] = "spot; DROP DATABASE spot"
    data["hdfs_app_path"] = "/user/../etc"
    data["pipelines"]["flow_internals"]["topic"] = "bad topic"
    data["pipelines"]["flow_internals"]["process_opt"] = "-o 'unbalanced"
    message = load_error(write(tmp_path, data))
    assert "should match pattern" in line_for(message, "dbname")
    assert "must be absolute" in line_for(message, "hdfs_app_path")
    assert "should match pattern" in line_for(message, "pipelines.flow_internals.topic")
    assert "cannot split" in line_for(message, "pipelines.flow_internals.process_opt")


def test_error_topic_shared_across_types(tmp_path: Path) -> None:
    data = base()
    for pipeline in data["pipelines"].values():
        pipeline["topic"] = "spot-shared"
    message = load_error(write(tmp_path, data))
    line = line_for(message, "pipelines")
    assert "share topic 'spot-shared'" in line
    # Pipelines of one type may share a topic.
    data["pipelines"]["dns_server_1"]["type"] = "flow"
    assert load_ingest_config(write(tmp_path, data, "same.json")).topics_of_type("flow") == ["spot-shared"]


def test_errors_are_aggregated_one_line_each(tmp_path: Path) -> None:
    data = base()
    data["pipelines"]["flow_internals"]["type"] = "netflow"
    data["pipelines"]["flow_internals"]["supported_files"] = ["ok", "(", "[\n"]
    data["kafka"]["max_request_size"] = -5
    data["bogus"] = True
    with pytest.raises(IngestConfigError) as info:
        load_ingest_config(write(tmp_path, data))
    error = info.value
    assert isinstance(error, ValueError)
    assert len(error.errors) == 5
    lines = str(error).splitlines()
    assert lines[0] == f"invalid ingest config {tmp_path / 'ingest_conf.json'} (5 errors):"
    assert len(lines) == 6
    for key_path in (
        "pipelines.flow_internals.type",
        "pipelines.flow_internals.supported_files[1]",
        "pipelines.flow_internals.supported_files[2]",
        "kafka.max_request_size",
        "bogus",
    ):
        line_for(str(error), key_path)


def test_model_validate_without_loader_keeps_relative_paths() -> None:
    """Outside the loader there is no project root in context: paths stay as written."""
    config = IngestConfig.model_validate(base())
    assert config.pipelines["flow_internals"].collector_path == Path("collector/flow")
