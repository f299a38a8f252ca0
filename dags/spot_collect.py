"""Airflow DAGs: one ``spot_collect_<pipeline>`` per pipeline of include/ingest_conf.json."""

from __future__ import annotations

from spot_operators.config import load_ingest_config
from spot_operators.dag_factories import build_collect_dag

_config = load_ingest_config()
for _name in _config.pipelines:
    globals()[f"spot_collect_{_name}"] = build_collect_dag(_config, _name)
