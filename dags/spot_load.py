"""Airflow DAGs: ``spot_load_<type>`` per type of include/ingest_conf.json (listen, partitions, reconcile)."""

from __future__ import annotations

from spot_operators.config import PIPELINE_TYPES, load_ingest_config
from spot_operators.load_dag_factories import build_load_dag

_config = load_ingest_config()
for _type in PIPELINE_TYPES:
    if _config.pipelines_of_type(_type):
        globals()[f"spot_load_{_type}"] = build_load_dag(_config, _type)
