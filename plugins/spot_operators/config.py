"""Typed model and loader of Spot's ``ingest_conf.json``.

Spot read this file with a bare ``json.load`` and discovered mistakes at run time (a typo in a key
was silently ignored, a bad regex crashed a worker). Here every key is typed, unknown keys are
errors, and every problem in a file is reported at once, one line per problem, naming the file,
the key path and the reason. The module deliberately imports nothing from Airflow: DAG files,
triggers and command-line tools all load it, and it has to stay fast and standalone.

Regenerate the committed JSON schema with ``python -m spot_operators.config --write-schema``
(with ``plugins/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "CONF_ENV_VAR",
    "DEFAULT_SUPPORTED_FILES",
    "PIPELINE_TYPES",
    "ROOT_ENV_VAR",
    "IngestConfig",
    "IngestConfigError",
    "KafkaConfig",
    "PipelineConfig",
    "PipelineType",
    "SparkStreamingConfig",
    "default_config_path",
    "json_schema",
    "load_ingest_config",
    "project_root",
    "render_json_schema",
    "schema_path",
    "write_json_schema",
]

CONF_ENV_VAR = "SPOT_INGEST_CONF"
"""Environment variable naming the config file (overrides ``include/ingest_conf.json``)."""

ROOT_ENV_VAR = "SPOT_PROJECT_ROOT"
"""Environment variable overriding the project root (the directory that contains ``plugins/``)."""

PipelineType = Literal["flow", "dns", "proxy"]
PIPELINE_TYPES: tuple[str, ...] = ("flow", "dns", "proxy")

DEFAULT_SUPPORTED_FILES: dict[str, tuple[str, ...]] = {
    # nfcapd renames nfcapd.current.<pid> to nfcapd.YYYYMMDDhhmm[ss] when a file is complete.
    "flow": (r"nfcapd\.[0-9]{12}([0-9]{2})?",),
    "dns": (r"^.*\.pcap$",),
    "proxy": (r"^.*\.log$",),
}
"""Used when a pipeline omits ``supported_files`` (Spot's classic pipelines had no such key)."""

_PIPELINE_NAME_RE = r"^[A-Za-z][A-Za-z0-9_]*$"
_DBNAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
_TOPIC_RE = r"^[A-Za-z0-9._-]{1,249}$"
_SPARK_MEMORY_RE = r"^[0-9]+[kKmMgGtTpP]?[bB]?$"
_JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class IngestConfigError(ValueError):
    """The config file is missing, unreadable or invalid; ``errors`` holds one line per problem."""

    def __init__(self, path: str | Path, errors: Sequence[str]) -> None:
        self.path = str(path)
        self.errors: list[str] = [" ".join(str(e).splitlines()) for e in errors]
        count = len(self.errors)
        noun = "error" if count == 1 else "errors"
        lines = [f"invalid ingest config {self.path} ({count} {noun}):"]
        lines.extend(f"  {error}" for error in self.errors)
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------------


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` cut to one readable line for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_regex(pattern: str) -> str:
    """Compile now so a bad pattern fails at load time, not inside a running collector."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise PydanticCustomError(
            "invalid_regex",
            "invalid regular expression {pattern}: {reason}",
            {"pattern": repr(pattern), "reason": str(exc)},
        ) from None
    return pattern


Regex = Annotated[str, StringConstraints(min_length=1), AfterValidator(_check_regex)]
PipelineName = Annotated[str, StringConstraints(pattern=_PIPELINE_NAME_RE, max_length=200)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Port = Annotated[int, Field(ge=1, le=65535)]
SparkMemory = Annotated[str, StringConstraints(pattern=_SPARK_MEMORY_RE)]


class _Model(BaseModel):
    """Shared settings: unknown keys are errors, Spot's hyphenated keys work by alias or name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """Anchor relative paths at the project root so every Airflow process sees the same place."""
    if value is None:
        return None
    context = info.context if isinstance(info.context, dict) else {}
    root = context.get("project_root")
    if root is None or value.is_absolute():
        return value
    return Path(os.path.normpath(Path(root) / value))


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


class SparkStreamingConfig(_Model):
    """Spot's ``spark-streaming`` section: resources of the listener job; blank means Spark's default."""

    driver_memory: SparkMemory | None = Field(
        default=None, description="Spark driver memory, e.g. '1g'. Spot key."
    )
    spark_exec: PositiveInt | None = Field(
        default=None, description="Number of executors (spark.executor.instances). Spot key."
    )
    spark_executor_memory: SparkMemory | None = Field(
        default=None, description="Memory per executor, e.g. '2g'. Spot key."
    )
    spark_executor_cores: PositiveInt | None = Field(
        default=None, description="Cores per executor. Spot key."
    )
    spark_batch_size: PositiveInt = Field(
        default=30, description="Micro-batch interval of the listener, in seconds. Spot key."
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_means_default(cls, data: Any) -> Any:
        """Spot's template ships every value as ``""``; treat those as "not set"."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data


class LoadConfig(_Model):
    """When the load DAGs run and when they compact hour partitions."""

    schedule: Annotated[str, StringConstraints(min_length=1)] = Field(
        default="*/30 * * * *",
        description="Cron expression (UTC) of the safety-net schedule of spot_load_<type>, which also "
        "runs whenever a collect DAG announces new data on one of its topics. New key.",
    )
    compact_min_files: PositiveInt = Field(
        default=16,
        description="Compact an hour partition the load wrote into when it holds at least this many "
        "Parquet files. New key.",
    )
    compact_after_hours: NonNegativeFloat = Field(
        default=2.0,
        description="Only compact hours that ended at least this long ago (a continuous listener may "
        "still be writing into recent hours). New key.",
    )
    hive_server: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")] = Field(
        default="localhost:10000",
        description="host[:port] of HiveServer2 as written in the tables' Airflow asset URIs "
        "(hive://<hive_server>/<dbname>/<table>). Identity only: the DAGs reach Hive through the "
        "spot_hiveserver2 connection. New key.",
    )

    @field_validator("schedule", mode="after")
    @classmethod
    def _cron(cls, value: str) -> str:
        """A bad cron string must fail at config load, naming the key, not at DAG parse."""
        from croniter import croniter

        if not croniter.is_valid(value):
            raise PydanticCustomError(
                "invalid_cron", "invalid cron expression {value}", {"value": repr(value)}
            )
        return value


class KafkaConfig(_Model):
    """Spot's ``kafka`` section plus the sizing and topic keys this project adds."""

    kafka_server: Annotated[str, StringConstraints(min_length=1, pattern=r"^\S+$")] = Field(
        description="Bootstrap broker host or IP. Spot key."
    )
    kafka_port: Port = Field(description="Bootstrap broker port. Spot key.")
    zookeper_server: str | None = Field(
        default=None,
        description="Accepted and ignored: Kafka 4 runs in KRaft mode without ZooKeeper. "
        "Spot key (Spot's spelling).",
        json_schema_extra={"deprecated": True},
    )
    zookeper_port: int | str | None = Field(
        default=None,
        description="Accepted and ignored: Kafka 4 runs in KRaft mode without ZooKeeper. "
        "Spot key (Spot's spelling).",
        json_schema_extra={"deprecated": True},
    )
    message_size: PositiveInt = Field(
        default=900000,
        description="Bytes of raw log text per chunk where Spot chunked raw text. Spot key.",
    )
    max_request_size: PositiveInt = Field(
        default=1048576,
        description="Upper bound in bytes of one Kafka message (segments are cut below it). "
        "Spot key (Distributed Collector).",
    )
    inline_limit_bytes: PositiveInt = Field(
        default=1048576,
        description="CSV smaller than this travels inside the Kafka messages; larger CSV is "
        "staged in HDFS and announced by a pointer message. New key.",
    )
    staged_csv_max_bytes: PositiveInt = Field(
        default=16777216,
        description="Largest staged CSV file one pointer message names: a bigger CSV is staged as "
        "several files, cut between records, one pointer message each. The listener reads each staged "
        "file whole, at about 13 times its size of heap per running task, so keep it well below "
        "driver_memory (local) or spark_executor_memory divided by 13 and by the cores per executor. "
        "New key.",
    )
    topic_partitions: PositiveInt = Field(
        default=1, description="Partitions of each pipeline topic when it is created. New key."
    )
    replication_factor: PositiveInt = Field(
        default=1,
        description="Replication factor of each pipeline topic when it is created "
        "(1 suits the single-broker local stack; use 3 in production). New key.",
    )

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` as Kafka clients expect it (IPv6 literals bracketed)."""
        host = self.kafka_server
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.kafka_port}"


class PipelineConfig(_Model):
    """One entry of ``pipelines``: where files arrive, how to recognise them, where they go."""

    type: PipelineType = Field(description="Dissector and Hive table: flow, dns or proxy. Spot key.")
    collector_path: Path = Field(
        description="Directory the collector writes into; relative paths resolve against the "
        "project root. Spot key."
    )
    local_staging: Path = Field(
        description="Local working directory (CSV, failed segments kept for replay); relative "
        "paths resolve against the project root. Spot key."
    )
    supported_files: Annotated[list[Regex], Field(min_length=1)] | None = Field(
        default=None,
        description="Regular expressions; a file is ingested when one matches its whole base "
        "name (re.fullmatch). Default depends on type (see DEFAULT_SUPPORTED_FILES). Spot key.",
    )
    process_opt: str = Field(
        default="",
        description="Extra dissector arguments, split with shlex into an argument list and "
        "never passed to a shell. Spot key.",
    )
    pkt_num: PositiveInt = Field(
        default=650000, description="Packets per chunk when editcap splits a pcap. Spot key."
    )
    pcap_split_staging: Path | None = Field(
        default=None,
        description="Where split pcap chunks go; defaults to local_staging. Relative paths "
        "resolve against the project root. Spot key.",
    )
    recursive: bool = Field(
        default=False, description="Also watch sub-directories of collector_path. Spot key."
    )
    topic: Annotated[str, StringConstraints(pattern=_TOPIC_RE)] | None = Field(
        default=None, description="Kafka topic of the pipeline; default 'spot-<name>'. New key."
    )
    stable_seconds: NonNegativeFloat = Field(
        default=30.0,
        description="A file is ready once its size and mtime have not changed for this long. New key.",
    )
    max_wait_seconds: NonNegativeFloat = Field(
        default=600.0,
        description="A collect run that finds no ready file within this time ends as skipped. New key.",
    )
    max_attempts: PositiveInt = Field(
        default=3,
        description="After this many failed attempts a file is left alone until an operator acts. New key.",
    )
    post_ingest: Literal["keep", "delete", "move"] = Field(
        default="keep",
        description="What happens to the local original once its HDFS copy is verified and every "
        "message acknowledged: keep it (Spot's edge mode), delete it, or move it to done_path. New key.",
    )
    done_path: Path | None = Field(
        default=None,
        description="Where post_ingest=move puts originals; default <local_staging>/done. Relative "
        "paths resolve against the project root. New key.",
    )

    message_format: Literal["ingest", "ingest_v1", "spot_list"] = Field(
        default="ingest",
        description="What the topic carries: this project's Avro envelope (ingest, written by the "
        "collect DAG; every envelope version is read; ingest_v1 is its earlier name and means the same) "
        "or Apache Spot's edge collector messages (spot_list, Avro list.avsc; no collect DAG is built "
        "for such a pipeline, Spot's collector feeds the topic). New key.",
    )

    _name: str = PrivateAttr(default="")

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> Any:
        """Say "unknown pipeline type" rather than pydantic's generic literal message."""
        if value not in PIPELINE_TYPES:
            raise PydanticCustomError(
                "unknown_pipeline_type",
                "unknown pipeline type {value}; expected one of: " + ", ".join(PIPELINE_TYPES),
                {"value": _short(value)},
            )
        return value

    @field_validator("message_format", mode="after")
    @classmethod
    def _current_format_name(cls, value: str) -> str:
        """``ingest_v1`` (the name before envelope v2) is ``ingest``: configs written for it still load."""
        return "ingest" if value == "ingest_v1" else value

    @field_validator("collector_path", "local_staging", "pcap_split_staging", "done_path", mode="after")
    @classmethod
    def _anchor(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """Resolve relative paths; with ``check_paths`` require the collector directory."""
        value = _resolve_path(value, info)
        context = info.context if isinstance(info.context, dict) else {}
        if (
            info.field_name == "collector_path"
            and value is not None
            and context.get("check_paths")
            and not value.is_dir()
        ):
            reason = "is not a directory" if value.exists() else "does not exist"
            raise PydanticCustomError(
                "missing_directory",
                "collector directory {path} {reason}",
                {"path": str(value), "reason": reason},
            )
        return value

    @field_validator("process_opt", mode="after")
    @classmethod
    def _splittable(cls, value: str) -> str:
        """Reject unbalanced quotes now instead of when the dissector starts."""
        try:
            shlex.split(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "invalid_process_opt",
                "cannot split {value} into arguments: {reason}",
                {"value": repr(value), "reason": str(exc)},
            ) from None
        return value

    @model_validator(mode="after")
    def _default_patterns(self) -> PipelineConfig:
        """Spot's classic pipelines had no ``supported_files``; fall back to the type's pattern."""
        if self.supported_files is None:
            self.supported_files = list(DEFAULT_SUPPORTED_FILES[self.type])
        return self

    @property
    def name(self) -> str:
        """The key under ``pipelines`` (also the DAG id suffix); empty if built standalone."""
        return self._name

    @property
    def patterns(self) -> list[re.Pattern[str]]:
        """Compiled ``supported_files``."""
        return [re.compile(p) for p in self.supported_files or ()]

    def matches(self, file_name: str) -> bool:
        """Whether a file is one of ours: some pattern matches its whole base name.

        Full matching keeps ``nfcapd.current.<pid>`` and ``x.pcap.tmp`` out with the shipped
        patterns, which an unanchored search would let through.
        """
        base = os.path.basename(file_name)
        return any(p.fullmatch(base) for p in self.patterns)

    @property
    def process_args(self) -> list[str]:
        """``process_opt`` as an argument list for ``subprocess`` (no shell involved)."""
        return shlex.split(self.process_opt)

    @property
    def done_folder(self) -> Path:
        """Where ``post_ingest=move`` puts originals."""
        return self.done_path or self.local_staging / "done"

    @property
    def split_staging(self) -> Path:
        """Directory for editcap chunks: ``pcap_split_staging`` or else ``local_staging``."""
        return self.pcap_split_staging or self.local_staging


class IngestConfig(_Model):
    """The whole ``ingest_conf.json``: Spot's keys, typed, plus the keys documented as new."""

    schema_: str | None = Field(
        default=None,
        alias="$schema",
        description="Optional pointer to the JSON schema, for editors. New key.",
    )
    dbname: Annotated[str, StringConstraints(pattern=_DBNAME_RE)] = Field(
        description="Hive database holding the flow, dns and proxy tables. Spot key."
    )
    hdfs_app_path: str = Field(
        default="/user/spot",
        description="Absolute HDFS path of the application (Spot's HUSER). Spot key.",
    )
    collector_processes: PositiveInt = Field(
        default=1, description="Files processed in parallel per pipeline. Spot key."
    )
    ingestion_interval: PositiveInt = Field(
        default=10, description="Seconds between polls of a collector directory. Spot key."
    )
    spark_streaming: SparkStreamingConfig = Field(
        default_factory=SparkStreamingConfig,
        alias="spark-streaming",
        description="Resources of the streaming listener. Spot key.",
    )
    kafka: KafkaConfig = Field(description="Kafka connection, sizes and topics. Spot key.")
    load: LoadConfig = Field(
        default_factory=LoadConfig,
        description="Schedule and housekeeping of the spot_load_<type> DAGs. New section.",
    )
    pipelines: Annotated[dict[PipelineName, PipelineConfig], Field(min_length=1)] = Field(
        description="Pipelines by name; a name becomes part of DAG ids. Spot key.",
        # patternProperties alone would let editors accept badly named pipelines.
        json_schema_extra={
            "propertyNames": {"pattern": _PIPELINE_NAME_RE, "maxLength": 200},
            "additionalProperties": False,
        },
    )

    @field_validator("hdfs_app_path", mode="after")
    @classmethod
    def _absolute_hdfs_path(cls, value: str) -> str:
        """Relative or ``..`` paths would land data outside the application folder."""
        path = PurePosixPath(value)
        if not path.is_absolute() or ".." in path.parts:
            raise PydanticCustomError(
                "invalid_hdfs_path",
                "HDFS path {value} must be absolute and must not contain '..'",
                {"value": repr(value)},
            )
        return str(path)

    @field_validator("pipelines", mode="after")
    @classmethod
    def _name_pipelines(cls, pipelines: dict[str, PipelineConfig]) -> dict[str, PipelineConfig]:
        """Give each pipeline its name and default topic, and keep types off shared topics."""
        seen: dict[str, tuple[str, str]] = {}
        for name, pipeline in pipelines.items():
            pipeline._name = name
            if pipeline.topic is None:
                pipeline.topic = f"spot-{name}"
            first, first_type = seen.setdefault(pipeline.topic, (name, pipeline.type))
            first_format = pipelines[first].message_format
            if first_format != pipeline.message_format:
                raise PydanticCustomError(
                    "shared_topic_format",
                    "pipelines {a} ({a_format}) and {b} ({b_format}) share topic {topic}; "
                    "one topic carries one message format",
                    {
                        "a": repr(first),
                        "a_format": first_format,
                        "b": repr(name),
                        "b_format": pipeline.message_format,
                        "topic": repr(pipeline.topic),
                    },
                )
            if first_type != pipeline.type:
                raise PydanticCustomError(
                    "shared_topic",
                    "pipelines {a} ({a_type}) and {b} ({b_type}) share topic {topic}; "
                    "pipelines of different types need different topics",
                    {
                        "a": repr(first),
                        "a_type": first_type,
                        "b": repr(name),
                        "b_type": pipeline.type,
                        "topic": repr(pipeline.topic),
                    },
                )
        return pipelines

    def pipelines_of_type(self, pipeline_type: str) -> dict[str, PipelineConfig]:
        """Pipelines feeding one Hive table (the load DAGs are one per type)."""
        return {n: p for n, p in self.pipelines.items() if p.type == pipeline_type}

    def topics_of_type(self, pipeline_type: str) -> list[str]:
        """Distinct topics the load DAG of one type reads, in config order."""
        topics: list[str] = []
        for pipeline in self.pipelines_of_type(pipeline_type).values():
            if pipeline.topic and pipeline.topic not in topics:
                topics.append(pipeline.topic)
        return topics


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def project_root() -> Path:
    """The directory holding ``plugins/``; ``SPOT_PROJECT_ROOT`` wins when set."""
    override = os.environ.get(ROOT_ENV_VAR, "").strip()
    if override:
        return Path(os.path.abspath(override))
    return Path(__file__).resolve().parents[2]


def default_config_path() -> Path:
    """``SPOT_INGEST_CONF`` if set, else ``<project root>/include/ingest_conf.json``."""
    override = os.environ.get(CONF_ENV_VAR, "").strip()
    if override:
        return Path(override)
    return project_root() / "include" / "ingest_conf.json"


class _PairsDict(dict[str, Any]):
    """A JSON object that remembers keys given twice (``json`` silently keeps the last one)."""

    duplicates: list[str]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _PairsDict:
    result = _PairsDict()
    result.duplicates = []
    for key, value in pairs:
        if key in result and key not in result.duplicates:
            result.duplicates.append(key)
        result[key] = value
    return result


def _duplicate_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """Lines for every duplicated key, with its key path."""
    if isinstance(node, dict):
        for key in getattr(node, "duplicates", ()):
            yield f"{_join(prefix, key)}: duplicate key (the last value would silently win)"
        for key, value in node.items():
            yield from _duplicate_keys(value, _join(prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _duplicate_keys(value, f"{prefix}[{index}]")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _key_path(loc: tuple[int | str, ...]) -> str:
    """``('pipelines', 'x', 'supported_files', 0)`` -> ``pipelines.x.supported_files[0]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            continue  # the bad part is the key itself, already the last element of the path
        else:
            path = _join(path, part)
    return path or "(top level)"


def _reason(error: Any) -> str:
    """A one-line reason for one pydantic error, phrased for someone editing the JSON file."""
    kind = error["type"]
    loc = error["loc"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if loc and loc[-1] == "[key]":
        name = loc[-2] if len(loc) > 1 else "?"
        return f"invalid pipeline name {name!r}: must match {_PIPELINE_NAME_RE} (it becomes part of DAG ids)"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a JSON object, got {type(error.get('input')).__name__}"
    message = str(error["msg"]).replace("\n", " ")
    if kind.startswith(("invalid_", "unknown_", "missing_", "shared_")):
        return message  # our own messages already quote the value
    if kind in ("greater_than", "greater_than_equal", "less_than_equal", "less_than"):
        return f"{message.replace('Input should', 'must')}, got {_short(error['input'])}"
    if isinstance(error.get("input"), dict | list):
        return message
    return f"{message}, got {_short(error.get('input'))}"


def _format_errors(exc: ValidationError) -> list[str]:
    return [f"{_key_path(tuple(e['loc']))}: {_reason(e)}" for e in exc.errors()]


def load_ingest_config(path: str | Path | None = None, *, check_paths: bool = False) -> IngestConfig:
    """Read, validate and resolve the ingest config, or raise one :class:`IngestConfigError`.

    ``path`` defaults to :func:`default_config_path`. Relative ``collector_path``,
    ``local_staging`` and ``pcap_split_staging`` resolve against :func:`project_root` (not the
    working directory, which differs between Airflow processes). With ``check_paths`` every
    ``collector_path`` must be an existing directory.
    """
    conf_path = Path(path) if path is not None else default_config_path()
    try:
        text = conf_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IngestConfigError(conf_path, ["(file): file not found"]) from None
    except IsADirectoryError:
        raise IngestConfigError(conf_path, ["(file): is a directory, not a file"]) from None
    except UnicodeDecodeError as exc:
        raise IngestConfigError(conf_path, [f"(file): not UTF-8 text: {exc.reason}"]) from None
    except OSError as exc:
        raise IngestConfigError(conf_path, [f"(file): cannot read: {exc.strerror}"]) from None

    try:
        data = json.loads(text, object_pairs_hook=_pairs_hook)
    except json.JSONDecodeError as exc:
        raise IngestConfigError(
            conf_path,
            [f"(file): invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"],
        ) from None

    errors = list(_duplicate_keys(data))
    context = {"project_root": project_root(), "check_paths": check_paths}
    config: IngestConfig | None = None
    try:
        config = IngestConfig.model_validate(data, context=context)
    except ValidationError as exc:
        errors.extend(_format_errors(exc))
    if errors or config is None:
        raise IngestConfigError(conf_path, errors)
    return config


# --------------------------------------------------------------------------------------------
# JSON schema
# --------------------------------------------------------------------------------------------


def schema_path() -> Path:
    """Where the committed JSON schema lives (``include/schemas/ingest_conf.schema.json``)."""
    return project_root() / "include" / "schemas" / "ingest_conf.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON schema of ``ingest_conf.json`` as the file spells keys (by alias)."""
    schema = IngestConfig.model_json_schema(by_alias=True, mode="validation")
    schema["title"] = "Spot ingest configuration (ingest_conf.json)"
    return {"$schema": _JSON_SCHEMA_DIALECT, **schema}


def render_json_schema() -> str:
    """The exact text of the committed schema file; a unit test compares the two."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_json_schema(target: str | Path | None = None) -> Path:
    """Regenerate the schema file after a model change."""
    out = Path(target) if target is not None else schema_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_json_schema(), encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``--write-schema`` regenerates the schema; ``--check`` validates a config file."""
    parser = argparse.ArgumentParser(prog="python -m spot_operators.config", description=__doc__)
    parser.add_argument("--write-schema", action="store_true", help="regenerate the JSON schema")
    parser.add_argument("--schema-path", type=Path, default=None, help="schema output file")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument("--config", type=Path, default=None, help="config file to check")
    parser.add_argument(
        "--check-paths", action="store_true", help="with --check, require collector directories"
    )
    args = parser.parse_args(argv)
    if not (args.write_schema or args.check):
        parser.error("nothing to do: give --write-schema and/or --check")
    if args.write_schema:
        print(f"wrote {write_json_schema(args.schema_path)}")
    if args.check:
        try:
            config = load_ingest_config(args.config, check_paths=args.check_paths)
        except IngestConfigError as exc:
            print(exc, file=sys.stderr)
            return 1
        names = ", ".join(f"{n} ({p.type})" for n, p in config.pipelines.items())
        print(f"ok: {len(config.pipelines)} pipeline(s): {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
