"""Airflow DAGs: ``spot_listener_<type>``, the supervised continuous listener of each configured type."""

from __future__ import annotations

from spot_operators.config import PIPELINE_TYPES, load_ingest_config
from spot_operators.load_dag_factories import build_listener_dag

_config = load_ingest_config()
for _type in PIPELINE_TYPES:
    if _config.pipelines_of_type(_type):
        globals()[f"spot_listener_{_type}"] = build_listener_dag(_config, _type)
