"""Airflow DAG ``spot_backfill``: re-publish staged CSV or failed segments to Kafka, or load them into Hive.

Manually triggered with typed params (pipeline, source, target, since/until, dry_run); see its doc_md.
"""

from __future__ import annotations

from spot_operators.config import load_ingest_config
from spot_operators.operate_dag_factories import build_backfill_dag

spot_backfill = build_backfill_dag(load_ingest_config())
