"""The Airflow UI in a real browser: trigger a collect run with the form, see it succeed, read Ingest.

Debian's chromium (``/usr/bin/chromium``, installed by ``scripts/setup.sh``) driven by Playwright's
Python package; no browser download. The test uses the stack's default config, so it drops a copy
of the NetFlow sample under a new name into ``flow_internals``' collector folder (a new file to the
ledger), triggers ``spot_collect_flow_internals`` through the trigger form with its params, waits
until the run page shows "Success", opens "Ingest" from the nav and checks that the numbers on the
page equal ``/spot-ingest/api/summary`` and grew by the file. Screenshots go to
``.stack/test-artifacts/ui/``. The DAG is paused again afterwards if it was paused before.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from spot_operators.config import load_ingest_config

from .airflow_api import AirflowApi, all_admins, base_url, credentials
from .test_collect import drop_fresh_flow_capture

ROOT = Path(__file__).resolve().parents[2]
FLOW_SAMPLE = ROOT.parent / "shared" / "data" / "flow" / "nfcapd.202301251836"
CHROMIUM = Path(os.environ.get("SPOT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("SPOT_STACK_DIR", ROOT / ".stack")) / "test-artifacts" / "ui"
DAG_ID = "spot_collect_flow_internals"
PIPELINE = "flow_internals"
COMPARED = (
    "files_today",
    "files_total",
    "rows_today",
    "rows_total",
    "bytes_total",
    "quarantined_total",
    "failed_segments_pending",
)
CELL = {
    "files_today": "files-today",
    "files_total": "files-total",
    "rows_today": "rows-today",
    "rows_total": "rows-total",
    "bytes_total": "bytes-total",
    "quarantined_total": "quarantined-total",
    "failed_segments_pending": "failed-segments",
}
RUN_TIMEOUT = float(os.environ.get("SPOT_UI_TEST_RUN_TIMEOUT", "600"))


def _base() -> str:
    return base_url()


def _summary(api: AirflowApi) -> dict[str, Any]:
    response = api.client.get(f"{_base()}/spot-ingest/api/summary")
    response.raise_for_status()
    return dict(response.json())


def _pipeline(summary: dict[str, Any], name: str = PIPELINE) -> dict[str, Any]:
    return next(p for p in summary["pipelines"] if p["name"] == name)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    """A chromium page (1400x1000); fails, not skips, when the browser or Playwright is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed in the venv: run scripts/setup.sh (requirements-dev.txt)")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(90_000)
            yield context.new_page()
        finally:
            browser.close()


def _shot(page: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _open_ui(page: Any) -> None:
    """Open the UI; log in through the auth manager's form if it asks (all-admins mode does not)."""
    page.goto(f"{_base()}/", wait_until="domcontentloaded")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=nav-sidebar]') || "
        "document.querySelector('input[type=password]')"
    )
    password_field = page.locator("input[type=password]")
    if not all_admins():
        assert password_field.count(), "the stack requires a login, but the UI showed no login form"
        _shot(page, "00-login")
    if password_field.count():
        user, password = credentials("admin")
        page.locator("input:not([type=password]):not([type=hidden])").first.fill(user)
        password_field.fill(password)
        page.get_by_role("button", name=re.compile(r"sign in|log ?in", re.IGNORECASE)).click()
    page.get_by_test_id("nav-sidebar").wait_for()


def _fill_number_param(dialog: Any, name: str, value: str) -> None:
    """Fill the form field of a number Param (Chakra's number input, found by its param name)."""
    control = dialog.locator(f'[id="number-input:element_{name}:inc"]')
    field = dialog.locator(f'[id="{control.get_attribute("aria-controls")}"]')
    field.fill(value)
    field.press("Tab")
    assert field.input_value() == value, f"param {name} shows {field.input_value()!r}, not {value!r}"


def _trigger_with_form(page: Any, api: AirflowApi, run_id: str, params: dict[str, str]) -> None:
    """Trigger through the form with its "Unpause on trigger" box ticked (a paused DAG runs nothing).

    Unpausing also starts the folder watcher, whose run may collect the file before ours (then ours
    finds nothing and ends skipped, still a success): the test checks the file through the ledger
    numbers, whichever run collected it (test_collect_watcher covers the watcher's own run).
    """
    page.goto(f"{_base()}/dags/{DAG_ID}", wait_until="domcontentloaded")
    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Run Parameters").wait_for()
    unpause = dialog.get_by_role("checkbox")
    if unpause.count() == 1 and not unpause.is_checked():
        dialog.get_by_text(re.compile(r"^Unpause .* on trigger$")).click()
    for name, value in params.items():
        _fill_number_param(dialog, name, value)
    dialog.get_by_role("button", name="Advanced Options").click()
    run_id_field = dialog.locator("input[name=dagRunId]")
    run_id_field.fill(run_id)
    _shot(page, "02-trigger-form")
    dialog.get_by_test_id("trigger-dag-submit").click()
    try:
        dialog.wait_for(state="hidden", timeout=60_000)
    except Exception:  # the form stays open with the API's error message
        _shot(page, "02-trigger-error")
        pytest.fail(f"the trigger form did not close: {dialog.inner_text()[-600:]}")
    deadline = time.monotonic() + 60
    while api.get(f"/dags/{DAG_ID}")["is_paused"]:
        assert time.monotonic() < deadline, "the trigger form did not unpause the DAG"
        page.wait_for_timeout(1_000)


def _wait_for_success_in_ui(page: Any, api: AirflowApi, run_id: str) -> None:
    """Reload the run's page until it shows Success; the REST API confirms the same state."""
    url = f"{_base()}/dags/{DAG_ID}/runs/{run_id}"
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        page.goto(url, wait_until="domcontentloaded")
        main = page.get_by_test_id("main-content")
        main.get_by_text(run_id).first.wait_for()
        state = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        if state == "success":
            main.get_by_text("Success", exact=True).first.wait_for(timeout=30_000)
            return
        if state == "failed":
            _shot(page, "03-run-failed")
            pytest.fail(f"{DAG_ID}/{run_id} failed: {api.task_states(DAG_ID, run_id)}")
        if time.monotonic() > deadline:
            _shot(page, "03-run-timeout")
            pytest.fail(f"{DAG_ID}/{run_id} still {state} after {RUN_TIMEOUT:g}s")
        page.wait_for_timeout(5_000)


def _end_leftover_runs(api: AirflowApi, ours: str, *, others: bool) -> None:
    """End our run if the test gave up on it, and (``others``) the idle runs unpausing started.

    Unpausing lets the folder watcher start runs; once the DAG is paused again they would only hold
    a slot until their wait ends.
    """
    runs = api.get(f"/dags/{DAG_ID}/dagRuns", limit=50, order_by="-run_after")["dag_runs"]
    for run in runs:
        if run["state"] not in ("queued", "running"):
            continue
        mine = run["dag_run_id"] == ours
        started_by_unpausing = others and run["run_type"] == "asset_triggered"
        if not (mine or started_by_unpausing):
            continue
        api.client.patch(
            f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}",
            json={"state": "failed", "note": "ended by test_ui_browser"},
        )


def _check_asset_graph(page: Any, api: AirflowApi) -> None:
    """The collector folder's asset page draws the whole path: folder -> collect -> topic -> load -> table."""
    config = load_ingest_config()
    pipeline = config.pipelines[PIPELINE]
    name = f"spot_collector_{PIPELINE}"
    (asset,) = [a for a in api.get("/assets", name_pattern=name)["assets"] if a["name"] == name]
    page.goto(f"{_base()}/assets/{asset['id']}", wait_until="domcontentloaded")
    topic = pipeline.topic or f"spot-{PIPELINE}"
    for node in (name, DAG_ID, f"spot_topic_{topic}", f"spot_load_{pipeline.type}", f"{config.dbname}.flow"):
        page.locator(".react-flow").get_by_text(node, exact=True).first.wait_for(timeout=60_000)
    _shot(page, "05-asset-graph")


def _read_page_numbers(frame: Any, name: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for key, cell in CELL.items():
        raw = frame.get_by_test_id(f"{cell}-{name}").get_attribute("data-value")
        assert raw is not None, f"{cell}-{name} has no data-value"
        values[key] = int(raw)
    return values


def test_trigger_collect_in_the_ui_and_read_the_ingest_page(browser_page: Any) -> None:
    if not FLOW_SAMPLE.is_file():
        pytest.fail(f"sample {FLOW_SAMPLE} is missing")
    page = browser_page
    api = AirflowApi()
    dag = api.wait_for_dag(DAG_ID)
    if dag.get("is_stale"):
        errors = api.get("/importErrors")["import_errors"]
        pytest.fail(f"{DAG_ID} is deactivated by import errors: {[e['filename'] for e in errors]}")
    was_paused = bool(dag["is_paused"])
    started = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    before = _pipeline(_summary(api))

    # The sample's flows in a new file under a new, valid nfcapd name.
    collector = load_ingest_config().pipelines[PIPELINE].collector_path
    target = collector / f"nfcapd.{datetime.now(UTC):%Y%m%d%H%M%S}"
    drop_fresh_flow_capture(target)  # new bytes: a copy of ingested ones would be a duplicate
    run_id = f"ui_test__{uuid.uuid4().hex[:12]}"
    try:
        _open_ui(page)
        _shot(page, "01-home")
        _trigger_with_form(page, api, run_id, {"max_wait_seconds": "60", "stable_seconds": "2"})
        _wait_for_success_in_ui(page, api, run_id)
        _shot(page, "03-run-success")

        page.get_by_role("link", name="Ingest").click()
        page.wait_for_url(re.compile(r"/plugin/spot-ingest"))
        frame = page.frame_locator("iframe[title=Ingest]")
        frame.locator("[data-testid=status][data-state=ready]").wait_for(state="attached")
        assert frame.get_by_test_id(f"pipeline-row-{PIPELINE}").is_visible()
        shown = _read_page_numbers(frame, PIPELINE)
        hive_badge = frame.get_by_test_id("hive-status")
        hive_text = hive_badge.inner_text()
        _shot(page, "04-ingest-page")
        # The JSON the page was drawn from, fetched with the browser's own session.
        response = page.request.get(f"{_base()}/spot-ingest/api/summary")
        assert response.ok, response.status
        document = response.json()
        _check_asset_graph(page, api)
    finally:
        target.unlink(missing_ok=True)
        if was_paused:
            api.client.patch(f"/dags/{DAG_ID}", json={"is_paused": True})
        _end_leftover_runs(api, run_id, others=was_paused)

    api_numbers = _pipeline(document)
    assert shown == {key: api_numbers[key] for key in COMPARED}, (shown, api_numbers)
    assert shown["files_total"] > 0 and shown["rows_total"] > 0
    assert shown["files_total"] >= before["files_total"] + 1, "the dropped file is not counted"
    assert shown["rows_total"] > before["rows_total"]
    if datetime.now(UTC).date().isoformat() == started[:10]:  # "today" restarts at 00:00 UTC
        assert shown["files_today"] >= 1 and shown["rows_today"] > 0
    assert api_numbers["last_success"] is not None
    # Hive is either counted or reported unavailable, never silently missing.
    assert ("Hive available" in hive_text) == document["hive"]["available"], hive_text
    assert len(api_numbers["rows_per_hour"]) == document["chart_hours"]
    charted = sum(bucket["rows"] for bucket in api_numbers["rows_per_hour"])
    assert charted >= shown["rows_total"] - before["rows_total"], "the new rows must be in the chart"
