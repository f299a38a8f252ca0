"""Proves the deferrable Hive operator end to end: the HQL runs while the task waits in the triggerer.

This Airflow DAG runs one ``HiveQueryOperator`` on the ``spot_hiveserver2`` connection: ``SELECT 1``
and a short query over a generated range. The operator defers at once to
:class:`~spot_operators.triggers.hive.HiveQueryTrigger` (in plugins/, where the triggerer imports it),
which submits each statement asynchronously and polls it; the result (pushed as XCom) carries the rows
of the last statement and the pid of the process that ran the trigger.
"""

from __future__ import annotations

from airflow.sdk import dag

from spot_operators.dag_factories import smoke_dag_args
from spot_operators.operators.hive import HiveQueryOperator


@dag(
    dag_id="spot_hive_query_smoke",
    schedule=None,
    doc_md=__doc__,
    **smoke_dag_args(),
)
def spot_hive_query_smoke() -> None:
    HiveQueryOperator(
        task_id="hive_query",
        hql="SELECT 1; SELECT count(*) AS n, sum(id) AS total FROM range(1, 1001)",
        fetch_rows=True,
        poll_interval=0.5,
    )


spot_hive_query_smoke()
