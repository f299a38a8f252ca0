"""Reconciling published rows, the listeners' load log and Hive's counts (pure logic)."""

from __future__ import annotations

import json

import pytest

from spot_operators.reconcile import LoadLogError, PublishedFile, load_log_entries, reconcile

HOUR = ("2023", "1", "25", "18")
NEXT = ("2023", "1", "25", "19")


def _line(digest: str, segment: int, rows: int, hour: tuple[str, ...] | None = HOUR, **extra: object) -> str:
    item: dict[str, object] = {
        "listener": "abc",
        "batch_id": 0,
        "pipeline": "flow_internals",
        "file_name": f"nfcapd.{digest}",
        "file_digest": digest,
        "segment_index": segment,
        "segment_count": 2,
        "expected_rows": 10,
        "rows": rows,
        "quarantined": 0,
    }
    if hour:
        item.update(zip(("y", "m", "d", "h"), hour, strict=True))
    else:
        item.update(y=None, m=None, d=None, h=None)
    item.update(extra)
    return json.dumps(item)


def _entries(*lines: str) -> list:
    return load_log_entries("\n".join(lines) + "\n", "loadlog/abc/batch-0000000000.jsonl")


def test_complete_file_and_matching_hour() -> None:
    entries = _entries(_line("d1", 0, 10), _line("d1", 1, 6, NEXT), _line("d1", 1, 4))
    result = reconcile(["d1"], entries, {"d1": PublishedFile("d1", "nfcapd.1", 20)}, {HOUR: 14, NEXT: 6})
    assert [f.status for f in result.files] == ["complete"]
    assert result.failed == [] and result.pending == []
    assert result.summary()["rows"] == 20
    assert "complete" in result.text()


def test_missing_segment_is_pending_not_failed() -> None:
    result = reconcile(["d1"], _entries(_line("d1", 0, 10)), {}, {HOUR: 10})
    assert result.pending and "1 of 2 segment(s)" in result.pending[0]
    assert result.failed == []


def test_file_never_seen_is_pending() -> None:
    result = reconcile(["nope"], [], {"nope": PublishedFile("nope", "x.log", 3)}, {})
    assert result.files[0].status == "pending"
    assert "x.log" in result.pending[0]


def test_rows_lost_between_publish_and_load_fail() -> None:
    entries = _entries(_line("d1", 0, 10), _line("d1", 1, 9))
    result = reconcile(["d1"], entries, {"d1": PublishedFile("d1", "nfcapd.1", 20)}, {HOUR: 19})
    assert result.failed and "19 rows loaded + 0 quarantined != 20 published" in result.failed[0]


def test_quarantined_rows_count_as_accounted_for() -> None:
    entries = _entries(_line("d1", 0, 10), _line("d1", 1, 0, None, quarantined=10))
    result = reconcile(["d1"], entries, {"d1": PublishedFile("d1", "f", 20)}, {HOUR: 10})
    assert result.failed == [] and result.files[0].quarantined == 10


def test_segment_loaded_by_two_batches_is_a_duplicate() -> None:
    entries = _entries(_line("d1", 0, 10), _line("d1", 1, 10), _line("d1", 0, 10, batch_id=7))
    result = reconcile(["d1"], entries, {}, {HOUR: 30})
    assert result.failed and "loaded by more than one batch" in result.failed[0]


def test_hive_count_differs_from_the_load_log() -> None:
    entries = _entries(_line("d1", 0, 10), _line("d1", 1, 10), _line("other", 0, 5))
    result = reconcile(["d1"], entries, {}, {HOUR: 20})
    assert result.failed == ["hour 2023/1/25/18: Hive has 20 rows, the load log 25"]


def test_without_publisher_counts_the_messages_announced_rows_are_used() -> None:
    entries = _entries(_line("d1", 0, 10), _line("d1", 1, 8))
    result = reconcile(["d1"], entries, {}, {HOUR: 18})
    assert "(rows announced by its messages)" in result.failed[0]


def test_bad_load_log_line_names_file_and_line() -> None:
    with pytest.raises(
        LoadLogError,
        match=r"jsonl line 2: missing keys \['file_name', 'file_digest', 'segment_index', 'rows'\]",
    ):
        _entries(_line("d1", 0, 10), json.dumps({k: 1 for k in ("listener", "batch_id", "pipeline")}))
    with pytest.raises(LoadLogError, match="line 1"):
        load_log_entries("{not json\n", "x.jsonl")
