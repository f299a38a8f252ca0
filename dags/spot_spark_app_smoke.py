"""Proves the deferrable Spark operator in Airflow: a tiny PySpark job waited for by the triggerer.

This DAG runs ``include/jobs/smoke_spark_app.py`` through
:class:`~spot_operators.operators.spark_app.SparkApplicationOperator` on the ``spot_spark``
connection (``local[2]`` on the stack). The task starts spark-submit detached, defers to
:class:`~spot_operators.triggers.spark_app.SparkApplicationTrigger` (no worker slot held while Spark
runs), and resumes with the job's JSON result; its return value carries the pid of the triggerer
process that watched the job. Params: ``rows`` to sum, ``mode`` ``ok`` or ``fail``.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import dag

from spot_operators.dag_factories import smoke_dag_args
from spot_operators.operators.spark_app import SparkApplicationOperator

SMOKE_JOB = Path(__file__).resolve().parents[1] / "include" / "jobs" / "smoke_spark_app.py"


@dag(
    dag_id="spot_spark_app_smoke",
    schedule=None,
    doc_md=__doc__,
    **smoke_dag_args(),
    params={"rows": 100, "mode": "ok"},
)
def spot_spark_app_smoke() -> None:
    SparkApplicationOperator(
        task_id="spark_app",
        application=str(SMOKE_JOB),
        application_args=[
            "--mode",
            "{{ params.mode }}",
            "--rows",
            "{{ params.rows }}",
            "--result",
            "{result_file}",
        ],
        conf={
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
        },
        name="spot_spark_app_smoke.{{ run_id }}",
        driver_memory="512m",
        result_file="result.json",
        poll_interval=2.0,
        app_timeout=900.0,
    )


spot_spark_app_smoke()
