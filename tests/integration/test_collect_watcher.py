"""Event-driven collect under the stack's real dag-processor, triggerer and scheduler.

Unpausing ``spot_collect_flow_internals`` activates the watcher of its collector-folder asset (a
``CollectorFolderWatchTrigger`` running in the triggerer). A NetFlow file dropped into the folder must
produce an asset event naming it, an ``asset_triggered`` run that collects it (ledger: done), and the
run's announcement on the topic asset. A second look shows the watcher does not start another run for
the same file. Uses the stack's default config, like the UI test; the DAG is paused again afterwards.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from spot_operators.config import load_ingest_config
from spot_operators.ledger import FileLedger, State, ledger_path

from .airflow_api import AirflowApi
from .test_collect import FLOW_SAMPLE, drop_fresh_flow_capture

DAG_ID = "spot_collect_flow_internals"
PIPELINE = "flow_internals"
WAIT = 300.0


def _asset_id(api: AirflowApi, name: str, uri: str, timeout: float = 120.0) -> int:
    """The id of the asset ``name`` with ``uri``, once the dag-processor has (re)activated it.

    By name alone is not enough: a checkout at another path that used this Airflow database (a CI
    copy) registers the same name with its own folder URI, and until the dag-processor re-parses
    this checkout the API lists only that one; the watcher's events go to this checkout's asset.
    """
    deadline = time.monotonic() + timeout
    while True:
        assets = api.get("/assets", name_pattern=name, limit=50)["assets"]
        matching = [a for a in assets if a["name"] == name and a["uri"] == uri]
        if matching:
            return int(matching[0]["id"])
        seen = [(a["name"], a["uri"]) for a in assets]
        assert time.monotonic() < deadline, f"asset {name} ({uri}) is not registered: {seen}"
        time.sleep(2)


def _events(api: AirflowApi, asset_id: int, since: str) -> list[dict[str, Any]]:
    """The asset's events since ``since``.

    Airflow's api-server fails this listing while a run the event created is queued but not started
    (its ``start_date`` is None, which ``AssetEventResponse`` refuses; uvicorn drops the connection):
    seconds later the run has started, so a failed read is tried again a few times.
    """
    for attempt in range(5):
        try:
            found = api.get("/assets/events", asset_id=asset_id, timestamp_gte=since, limit=100)
            return list(found["asset_events"])
        except (httpx.TransportError, httpx.HTTPStatusError) as exc:
            if (isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code < 500) or attempt == 4:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def _announced_files(event: dict[str, Any]) -> list[str]:
    return list(((event.get("extra") or {}).get("payload") or {}).get("files") or [])


def _watcher_runs(api: AirflowApi, since: str) -> list[dict[str, Any]]:
    runs = api.get(f"/dags/{DAG_ID}/dagRuns", limit=50, order_by="-run_after")["dag_runs"]
    return [r for r in runs if r["run_type"] == "asset_triggered" and (r.get("queued_at") or "") >= since]


def _end_runs(api: AirflowApi, runs: list[dict[str, Any]]) -> None:
    for run in runs:
        if run["state"] in ("queued", "running"):
            api.client.patch(
                f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}",
                json={"state": "failed", "note": "ended by test_collect_watcher"},
            )


def test_a_dropped_file_starts_a_collect_run_through_the_folder_watcher() -> None:
    if not FLOW_SAMPLE.is_file():
        pytest.fail(f"sample {FLOW_SAMPLE} is missing")
    api = AirflowApi()
    dag = api.wait_for_dag(DAG_ID)
    was_paused = bool(dag["is_paused"])
    config = load_ingest_config()
    pipeline = config.pipelines[PIPELINE]
    folder_asset = _asset_id(api, f"spot_collector_{PIPELINE}", f"file://{pipeline.collector_path.resolve()}")
    since = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    target = pipeline.collector_path / f"nfcapd.{datetime.now(UTC):%Y%m%d%H%M%S}"
    drop_fresh_flow_capture(target)  # new bytes: a copy of ingested ones would be a duplicate
    dropped = time.monotonic()
    try:
        api.client.patch(f"/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
        deadline = dropped + WAIT
        ours: list[dict[str, Any]] = []
        while not ours:
            events = _events(api, folder_asset, since)
            ours = [
                e for e in events if target.name in (e.get("extra") or {}).get("payload", {}).get("files", [])
            ]
            assert time.monotonic() < deadline, (
                f"no watcher event for {target.name} within {WAIT:g}s: {events}"
            )
            time.sleep(3)
        (event,) = ours
        assert event["extra"]["from_trigger"] is True
        assert event["extra"]["payload"]["pipeline"] == PIPELINE
        announced = time.monotonic() - dropped

        collected = None
        while collected is None:
            for run in _watcher_runs(api, since):
                if run["state"] == "failed":
                    pytest.fail(f"{run['dag_run_id']} failed: {api.task_states(DAG_ID, run['dag_run_id'])}")
                if run["state"] == "success" and api.task_states(DAG_ID, run["dag_run_id"]).get(
                    "announce"
                ) == ("success"):
                    collected = run
            assert time.monotonic() < deadline, f"no successful watcher run: {_watcher_runs(api, since)}"
            time.sleep(3)
        summary = api.xcom(DAG_ID, collected["dag_run_id"], "announce")
        assert [f["file"] for f in summary["published"]] == [target.name], summary
        assert summary["rows"] == 3018, summary  # nfdump's count for the sample
        records = [
            r
            for r in FileLedger(ledger_path(pipeline.local_staging)).records(pipeline=PIPELINE)
            if r.version.path == str(target)
        ]
        assert [r.state for r in records] == [State.DONE], records
        print(f"watcher event {announced:.1f}s after the drop; run {collected['dag_run_id']} collected it")

        # The file stays (post_ingest: keep) but is done: the watcher starts no further run for it.
        runs_before = {r["dag_run_id"] for r in _watcher_runs(api, since)}
        time.sleep(max(3 * config.ingestion_interval, pipeline.stable_seconds) + 5)
        again = [e for e in _events(api, folder_asset, since) if e["id"] != event["id"]]
        assert not [e for e in again if target.name in _announced_files(e)], again
        assert {r["dag_run_id"] for r in _watcher_runs(api, since)} == runs_before
    finally:
        if was_paused:
            api.client.patch(f"/dags/{DAG_ID}", json={"is_paused": True})
        _end_runs(api, _watcher_runs(api, since))
        target.unlink(missing_ok=True)
