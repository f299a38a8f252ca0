"""Airflow DAG ``spot_replay_failed_segments``: re-send kept Kafka segments once the broker answers.

Every 5 minutes; each segment is sent once, checked, then removed; returns the count still pending.
"""

from __future__ import annotations

from spot_operators.config import load_ingest_config
from spot_operators.operate_dag_factories import build_replay_dag

spot_replay_failed_segments = build_replay_dag(load_ingest_config())
