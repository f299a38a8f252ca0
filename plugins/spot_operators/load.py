"""What the load and listener DAGs need to know, derived from the config: pure, no Airflow, no I/O.

One listener per topic (pipelines of one type may share a topic, and two listeners on one topic would
load its rows twice). The micro-batch listener of ``spot_load_<type>`` and the continuous listener of
``spot_listener_<type>`` use the *same* checkpoint, so whichever runs continues where the other
stopped; Spark refuses a second query on a checkpoint that another one is writing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from spot_operators.config import IngestConfig
from spot_operators.layout import hdfs_type_root, name_component
from spot_operators.reconcile import Hour

#: The listener application, submitted by both DAG kinds.
LISTENER_APP = Path(__file__).resolve().parents[2] / "include" / "jobs" / "spot_listener.py"


@dataclass(frozen=True)
class ListenerPlan:
    """One listener: the topic it reads, its message format, and where it keeps state and writes."""

    data_type: str
    topic: str
    message_format: str
    pipelines: tuple[str, ...]
    table_location: str
    staging_root: str
    quarantine_location: str
    checkpoint: str
    load_log: str

    @property
    def task_suffix(self) -> str:
        """A task-id-safe name of the topic."""
        return name_component(self.topic)

    def application_args(
        self, config: IngestConfig, mode: str, result_file: str = "", register: bool = False
    ) -> list[str]:
        """Arguments of include/jobs/spot_listener.py for ``mode`` (availableNow or continuous)."""
        args = [
            "--data-type",
            self.data_type,
            "--topics",
            self.topic,
            "--bootstrap",
            config.kafka.bootstrap_servers,
            "--table-location",
            self.table_location,
            "--staging-root",
            self.staging_root,
            "--quarantine-location",
            self.quarantine_location,
            "--checkpoint",
            self.checkpoint,
            "--load-log",
            self.load_log,
            "--mode",
            mode,
            "--batch-seconds",
            str(config.spark_streaming.spark_batch_size),
            "--message-format",
            self.message_format,
            "--app-name",
            f"spot-listener-{self.data_type}-{self.topic}-{mode}",
        ]
        if self.message_format == "spot_list":
            args += ["--pipeline", self.pipelines[0]]
        if result_file:
            args += ["--result", result_file]
        if register:
            args += [
                "--register-table",
                f"{config.dbname}.{self.data_type}",
                "--register-quarantine-table",
                f"{config.dbname}.quarantine",
            ]
        return args


def listener_plans(config: IngestConfig, data_type: str) -> list[ListenerPlan]:
    """The listeners of one type's load, one per distinct topic, in config order."""
    root = hdfs_type_root(config, data_type)
    quarantine = f"{config.hdfs_app_path.rstrip('/')}/quarantine/hive"
    plans: dict[str, ListenerPlan] = {}
    for name, pipeline in config.pipelines_of_type(data_type).items():
        topic = pipeline.topic or f"spot-{name}"
        if topic in plans:
            plan = plans[topic]
            plans[topic] = ListenerPlan(**{**plan.__dict__, "pipelines": (*plan.pipelines, name)})
            continue
        plans[topic] = ListenerPlan(
            data_type=data_type,
            topic=topic,
            message_format=pipeline.message_format,
            pipelines=(name,),
            table_location=str(root / "hive"),
            staging_root=str(root / "stage"),
            quarantine_location=quarantine,
            checkpoint=str(root / "checkpoints" / name_component(topic)),
            load_log=str(root / "loadlog"),
        )
    return list(plans.values())


def spark_conf(config: IngestConfig) -> dict[str, str]:
    """Spark settings from Spot's ``spark-streaming`` section (unset keys keep Spark's defaults)."""
    section = config.spark_streaming
    conf = {
        "spark.executor.instances": section.spark_exec,
        "spark.executor.memory": section.spark_executor_memory,
        "spark.executor.cores": section.spark_executor_cores,
    }
    return {k: str(v) for k, v in conf.items() if v is not None}


def hours_written(results: Iterable[dict[str, Any] | None]) -> list[list[str]]:
    """Distinct hour partitions ``[y, m, d, h]`` the listeners of a run wrote into."""
    hours: set[tuple[str, ...]] = set()
    for result in results:
        for hour in (result or {}).get("hours") or []:
            hours.add(tuple(str(v) for v in hour))
    return [list(h) for h in sorted(hours)]


def hours_to_compact(
    file_counts: dict[tuple[str, ...], int],
    *,
    min_files: int,
    min_age_hours: float,
    now: datetime | None = None,
) -> list[list[str]]:
    """Hours with at least ``min_files`` files that ended ``min_age_hours`` ago or earlier."""
    now = now or datetime.now(tz=UTC)
    chosen = []
    for hour, files in sorted(file_counts.items()):
        y, m, d, h = (int(v) for v in hour)
        ended = datetime(y, m, d, h, tzinfo=UTC) + timedelta(hours=1)
        if files >= min_files and now - ended >= timedelta(hours=min_age_hours):
            chosen.append(list(hour))
    return chosen


def hive_count_sql(database: str, data_type: str, hours: Sequence[Hour]) -> list[str]:
    """``SELECT y, m, d, h, COUNT(*)`` of ``<database>.<data_type>`` for the given hours, 50 per statement.

    Hours are validated by :class:`~spot_operators.hql.HourPartition`, which also quotes the proxy
    table's string partitions.
    """
    from spot_operators.hql import HourPartition, quote_identifier
    from spot_operators.tables import TABLES

    spec = TABLES[data_type]
    target = f"{quote_identifier(database)}.{quote_identifier(spec.name)}"
    statements = []
    for start in range(0, len(hours), 50):
        clauses = [f"({HourPartition.of(tuple(hour)).where(spec)})" for hour in hours[start : start + 50]]
        statements.append(
            f"SELECT `y`, `m`, `d`, `h`, COUNT(*) FROM {target} "
            f"WHERE {' OR '.join(clauses)} GROUP BY `y`, `m`, `d`, `h`"
        )
    return statements
