"""Airflow DAGs: one ``spot_collect_<pipeline>`` per pipeline of include/ingest_conf.json.

Pipelines with ``message_format: spot_list`` get none: Apache Spot's own collector feeds their topic.
"""

from __future__ import annotations

from spot_operators.config import load_ingest_config
from spot_operators.dag_factories import build_collect_dag

_config = load_ingest_config()
for _name, _pipeline in _config.pipelines.items():
    if _pipeline.message_format != "ingest":
        continue
    globals()[f"spot_collect_{_name}"] = build_collect_dag(_config, _name)
