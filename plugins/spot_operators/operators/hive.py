"""Deferrable HQL operators: the worker only builds the statements, the triggerer waits for the server.

``HiveQueryOperator`` runs any HQL; the three subclasses build Spot's statements with
:mod:`spot_operators.hql` at run time (so their arguments can be templates or XComs):
``HivePartitionRegisterOperator`` (hours a listener wrote, or MSCK REPAIR),
``HiveCompactPartitionOperator`` (one hour into few files) and ``HiveLoadStagedCsvOperator`` (a staged
CSV folder through a uniquely named temporary external table).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from spot_operators import hql
from spot_operators.triggers.hive import HiveQueryTrigger


class HiveQueryOperator(BaseOperator):
    """Run HQL on HiveServer2, deferring at once to :class:`HiveQueryTrigger`.

    Returns the trigger's success event (pushed as XCom): ``status``, ``statements``, ``rows`` and
    ``columns`` (last statement, when ``fetch_rows``), ``elapsed``, ``triggerer_pid``, ``final_errors``.
    A failing statement fails the task with the server's message and the statement.

    Statements may run more than once (a restarted triggerer starts the list again): write them to be
    idempotent, see :class:`HiveQueryTrigger`.

    :param hql: a script (split on ``;`` outside quotes and comments), a list of statements, or a
        ``.hql`` file path (templated).
    :param final_hql: statements run after ``hql`` even when it failed (cleanup), templated.
    :param hive_conn_id: ``hiveserver2`` connection.
    :param schema: the session's database.
    """

    template_fields: Sequence[str] = ("hql", "final_hql", "schema")
    template_ext: Sequence[str] = (".hql", ".sql")
    template_fields_renderers = {"hql": "sql", "final_hql": "sql"}
    ui_color = "#f0e4ec"

    def __init__(
        self,
        *,
        hql: str | Sequence[str] = (),
        final_hql: str | Sequence[str] = (),
        hive_conn_id: str = "spot_hiveserver2",
        schema: str = "default",
        fetch_rows: bool = False,
        max_rows: int = 1000,
        poll_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hql = hql
        self.final_hql = final_hql
        self.hive_conn_id = hive_conn_id
        self.schema = schema
        self.fetch_rows = fetch_rows
        self.max_rows = max_rows
        self.poll_interval = poll_interval

    def build(self, context: Context) -> hql.HqlPlan:
        """The statements to run (subclasses build them from their arguments)."""
        return hql.HqlPlan(hql.split_statements(self.hql), hql.split_statements(self.final_hql))

    def execute(self, context: Context) -> Any:
        plan = self.build(context)
        if not plan.statements and not plan.final_statements:
            self.log.info("no HQL to run")
            return {"status": "success", "statements": 0, "rows": [], "columns": [], "final_errors": []}
        timeout = self.execution_timeout.total_seconds() if self.execution_timeout else None
        self.log.info("deferring %d HQL statement(s) to the triggerer", len(plan.statements))
        self.defer(
            trigger=HiveQueryTrigger(
                statements=plan.statements,
                final_statements=plan.final_statements,
                hive_conn_id=self.hive_conn_id,
                schema=self.schema,
                poll_interval=self.poll_interval,
                fetch_rows=self.fetch_rows,
                max_rows=self.max_rows,
                timeout=timeout,
            ),
            method_name="execute_complete",
            timeout=None if timeout is None else timedelta(seconds=timeout + 60),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Back on a worker with the trigger's event: return it, or fail with the server's message."""
        for problem in event.get("final_errors") or []:
            self.log.warning("cleanup statement failed: %s\n%s", problem["error"], problem["statement"])
        if event.get("status") != "success":
            index = event.get("statement_index")
            where = "opening the session" if index is None else f"statement {index + 1}"
            raise AirflowException(
                f"HiveServer2 failed at {where}: {event.get('error')}\n"
                f"--- statement:\n{event.get('statement')}"
            )
        self.log.info(
            "%s HQL statement(s) done in %s s (triggerer pid %s)",
            event.get("statements"),
            event.get("elapsed"),
            event.get("triggerer_pid"),
        )
        return event


class HivePartitionRegisterOperator(HiveQueryOperator):
    """Register hour partitions of ``database.table`` (flow, dns, proxy) that a writer put in HDFS.

    :param hours: the hours written, e.g. ``["2026-03-07T05", ...]``, ``[[2026, 3, 7, 5]]``, datetimes,
        ``y=2026/m=3/d=7/h=5`` folders (templated; an XCom works). Empty means nothing to do.
    :param location: table location; partitions get explicit ``LOCATION <location>/y=../h=..``.
    :param repair: ignore ``hours`` and run ``MSCK REPAIR TABLE`` (scans the whole table).
    """

    template_fields: Sequence[str] = ("database", "table", "hours", "location")
    template_ext: Sequence[str] = ()

    def __init__(
        self,
        *,
        database: str,
        table: str,
        hours: Any = (),
        location: str | None = None,
        repair: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.database = database
        self.table = table
        self.hours = hours
        self.location = location
        self.repair = repair

    def build(self, context: Context) -> hql.HqlPlan:
        if self.repair:
            return hql.HqlPlan(hql.msck_repair_sql(self.database, self.table))
        return hql.HqlPlan(hql.register_hours_sql(self.database, self.table, self.hours or [], self.location))


class HiveCompactPartitionOperator(HiveQueryOperator):
    """Rewrite one hour partition of ``database.table`` into ``files`` Parquet files.

    See :func:`spot_operators.hql.compact_partition_sql`: a uniquely named staging table holds the copy,
    counts are checked before and after the overwrite, and the copy is kept if anything fails.
    """

    template_fields: Sequence[str] = ("database", "table", "hour")
    template_ext: Sequence[str] = ()

    def __init__(self, *, database: str, table: str, hour: Any, files: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.database = database
        self.table = table
        self.hour = hour
        self.files = files

    def build(self, context: Context) -> hql.HqlPlan:
        return hql.compact_partition_sql(self.database, self.table, self.hour, files=self.files)


class HiveLoadStagedCsvOperator(HiveQueryOperator):
    """Load a staged CSV folder in HDFS into ``database.table`` (partitions per row, UTC).

    Through a temporary external table named with a uuid (never shared), dropped afterwards even on
    failure. Not idempotent: a repeated run appends the rows again; reconcile before retrying.
    """

    template_fields: Sequence[str] = ("database", "table", "csv_folder")
    template_ext: Sequence[str] = ()

    def __init__(self, *, database: str, table: str, csv_folder: str, **kwargs: Any) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.database = database
        self.table = table
        self.csv_folder = csv_folder

    def build(self, context: Context) -> hql.HqlPlan:
        return hql.load_staged_csv_sql(self.database, self.table, self.csv_folder)
