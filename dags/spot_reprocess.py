"""Airflow DAGs ``spot_reprocess_<type>``: re-ingest one hour of HDFS originals per data interval.

Hourly CronDataIntervalTimetable DAGs, paused by default, so ``airflow backfill create`` covers past hours.
"""

from __future__ import annotations

from spot_operators.config import PIPELINE_TYPES, load_ingest_config
from spot_operators.operate_dag_factories import build_reprocess_dag

_config = load_ingest_config()
for _type in PIPELINE_TYPES:
    if _config.pipelines_of_type(_type):
        globals()[f"spot_reprocess_{_type}"] = build_reprocess_dag(_config, _type)
