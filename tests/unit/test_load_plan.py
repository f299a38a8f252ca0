"""What the load and listener DAGs derive from the config (pure): listeners, arguments, hours, SQL."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from spot_operators.config import IngestConfig, load_ingest_config
from spot_operators.load import hive_count_sql, hours_to_compact, hours_written, listener_plans, spark_conf

from .test_config import BASE, write


def _config(tmp_path: Path, **changes: Any) -> IngestConfig:
    data = copy.deepcopy(BASE)
    data["pipelines"]["flow_externals"] = {
        "type": "flow",
        "collector_path": "collector/flow2",
        "local_staging": "staging/flow2",
        "topic": "spot-flow_internals",  # shares the topic: one listener
    }
    data["pipelines"]["flow_edge"] = {
        "type": "flow",
        "collector_path": "collector/edge",
        "local_staging": "staging/edge",
        "topic": "spot-flow-edge",
        "message_format": "spot_list",
    }
    data.update(changes)
    return load_ingest_config(write(tmp_path, data))


def test_one_listener_per_topic_with_shared_checkpoint_and_locations(tmp_path: Path) -> None:
    plans = listener_plans(_config(tmp_path, hdfs_app_path="/apps/spot"), "flow")
    assert [(p.topic, p.pipelines, p.message_format) for p in plans] == [
        ("spot-flow_internals", ("flow_internals", "flow_externals"), "ingest"),
        ("spot-flow-edge", ("flow_edge",), "spot_list"),
    ]
    first = plans[0]
    assert first.table_location == "/apps/spot/flow/hive"
    assert first.staging_root == "/apps/spot/flow/stage"
    assert first.checkpoint == "/apps/spot/flow/checkpoints/spot_flow_internals"
    assert first.load_log == "/apps/spot/flow/loadlog"
    assert first.quarantine_location == "/apps/spot/quarantine/hive"
    assert first.task_suffix == "spot_flow_internals"
    assert listener_plans(_config(tmp_path), "proxy") == []


def test_listener_arguments_per_mode(tmp_path: Path) -> None:
    config = _config(tmp_path)
    inline, edge = listener_plans(config, "flow")
    micro = inline.application_args(config, "availableNow", "{result_file}")
    assert micro[micro.index("--mode") + 1] == "availableNow"
    assert micro[micro.index("--result") + 1] == "{result_file}"
    assert "--register-table" not in micro and "--pipeline" not in micro
    assert micro[micro.index("--bootstrap") + 1] == "127.0.0.1:9092"
    assert micro[micro.index("--staging-root") + 1] == "/user/spot/flow/stage"
    continuous = edge.application_args(config, "continuous", register=True)
    assert continuous[continuous.index("--register-table") + 1] == "spot.flow"
    assert continuous[continuous.index("--register-quarantine-table") + 1] == "spot.quarantine"
    assert continuous[continuous.index("--message-format") + 1] == "spot_list"
    assert continuous[continuous.index("--pipeline") + 1] == "flow_edge"
    assert continuous[continuous.index("--batch-seconds") + 1] == "30"


def test_spark_conf_keeps_spark_defaults_for_unset_keys(tmp_path: Path) -> None:
    assert spark_conf(_config(tmp_path)) == {}
    section = {"spark_exec": 2, "spark_executor_memory": "2g", "spark_executor_cores": ""}
    assert spark_conf(_config(tmp_path, **{"spark-streaming": section})) == {
        "spark.executor.instances": "2",
        "spark.executor.memory": "2g",
    }


def test_hours_written_merges_listener_results() -> None:
    results = [
        {"hours": [["2023", "1", "25", "18"]]},
        None,
        {"hours": [["2023", "1", "25", "18"], [2023, 1, 25, 19]]},
    ]
    assert hours_written(results) == [["2023", "1", "25", "18"], ["2023", "1", "25", "19"]]


def test_only_closed_hours_with_many_files_are_compacted() -> None:
    now = datetime(2026, 3, 7, 12, 30, tzinfo=UTC)
    counts: dict[tuple[str, ...], int] = {
        ("2026", "3", "7", "9"): 20,
        ("2026", "3", "7", "10"): 3,
        ("2026", "3", "7", "11"): 50,
    }
    assert hours_to_compact(counts, min_files=16, min_age_hours=1.0, now=now) == [["2026", "3", "7", "9"]]
    assert hours_to_compact(counts, min_files=16, min_age_hours=0, now=now) == [
        ["2026", "3", "7", "11"],
        ["2026", "3", "7", "9"],
    ]


def test_hive_count_sql_quotes_proxy_partitions_and_rejects_odd_values() -> None:
    (flow,) = hive_count_sql("spot", "flow", [("2023", "1", "25", "18")])
    assert flow.startswith("SELECT `y`, `m`, `d`, `h`, COUNT(*) FROM `spot`.`flow` WHERE ")
    assert "(`y` = 2023 AND `m` = 1 AND `d` = 25 AND `h` = 18)" in flow
    (proxy,) = hive_count_sql("spot", "proxy", [("2024", "03", "22", "16")])
    assert "(`y` = '2024' AND `m` = '03' AND `d` = '22' AND `h` = '16')" in proxy
    assert len(hive_count_sql("spot", "flow", [("2023", "1", "1", str(h % 24)) for h in range(120)])) == 3
    with pytest.raises(ValueError, match="invalid hour partition"):
        hive_count_sql("spot", "flow", [("2023", "1", "1", "1 OR 1=1")])


def test_a_topic_carries_one_message_format(tmp_path: Path) -> None:
    from spot_operators.config import IngestConfigError

    data = copy.deepcopy(BASE)
    data["pipelines"]["flow_edge"] = {
        "type": "flow",
        "collector_path": "c",
        "local_staging": "s",
        "topic": "spot-flow_internals",
        "message_format": "spot_list",
    }
    with pytest.raises(
        IngestConfigError, match="share topic 'spot-flow_internals'; one topic carries one message"
    ):
        load_ingest_config(write(tmp_path, data))


def test_bad_load_schedule_names_the_key(tmp_path: Path) -> None:
    from spot_operators.config import IngestConfigError

    data = copy.deepcopy(BASE)
    data["load"] = {"schedule": "every hour"}
    with pytest.raises(IngestConfigError, match=r"load\.schedule.*invalid cron expression 'every hour'"):
        load_ingest_config(write(tmp_path, data))
