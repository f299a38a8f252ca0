"""Airflow DAG ``spot_setup``: Kafka topics, HDFS folders and Hive tables of the configured pipelines."""

from __future__ import annotations

from spot_operators.config import load_ingest_config
from spot_operators.dag_factories import build_setup_dag

spot_setup = build_setup_dag(load_ingest_config())
