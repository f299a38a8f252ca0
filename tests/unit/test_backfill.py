"""Backfill source confinement, the row-time window and the idempotency keys (pure logic)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from spot_operators.backfill import (
    BackfillSourceError,
    Roots,
    TimeWindow,
    backfill_version,
    is_hdfs_source,
    parse_utc,
    resolve_hdfs_source,
    resolve_local_source,
    row_epoch,
    select_rows,
)


@pytest.fixture
def roots(tmp_path: Path) -> Roots:
    staging = tmp_path / "staging"
    (staging / "failed" / "x.log.0123456789abcdef").mkdir(parents=True)
    (staging / "failed" / "x.log.0123456789abcdef" / "segment-00000.avro").write_bytes(b"a")
    (staging / "failed" / "x.log.0123456789abcdef" / "segment-00000.json").write_text("{}")
    (staging / "csv").mkdir()
    (staging / "csv" / "a.csv").write_text("1\n")
    (staging / "csv" / "b.csv").write_text("2\n")
    (staging / "ledger.sqlite3").write_bytes(b"")
    return Roots(staging, PurePosixPath("/user/spot/flow/stage"))


def test_local_file_folder_and_glob(roots: Roots) -> None:
    one = resolve_local_source(str(roots.local / "csv" / "a.csv"), roots)
    assert [(i.kind, Path(i.path).name) for i in one] == [("csv", "a.csv")]
    everything = resolve_local_source(str(roots.local), roots)
    assert sorted(i.kind for i in everything) == ["csv", "csv", "segments"]
    globbed = resolve_local_source(str(roots.local / "csv" / "*.csv"), roots)
    assert [Path(i.path).name for i in globbed] == ["a.csv", "b.csv"]
    segment = resolve_local_source(str(roots.local / "failed" / "*" / "segment-00000.avro"), roots)
    assert [i.kind for i in segment] == ["segments"]


@pytest.mark.parametrize(
    "bad", ["/etc/passwd", "relative.csv", "", "{root}/../outside.csv", "{root}/csv/../../x"]
)
def test_outside_or_tricky_sources_are_refused(roots: Roots, bad: str) -> None:
    source = bad.format(root=roots.local)
    with pytest.raises(BackfillSourceError) as info:
        resolve_local_source(source, roots)
    assert "allowed roots" in str(info.value) and str(roots.local) in str(info.value)


def test_symlink_leading_out_is_refused(roots: Roots, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("x\n")
    os.symlink(outside, roots.local / "csv" / "link.csv")
    with pytest.raises(BackfillSourceError, match="outside the staging root"):
        resolve_local_source(str(roots.local / "csv" / "link.csv"), roots)
    with pytest.raises(BackfillSourceError, match="outside the staging root"):
        resolve_local_source(str(roots.local / "csv"), roots)


def test_non_csv_file_is_refused(roots: Roots) -> None:
    with pytest.raises(BackfillSourceError, match="neither a staged CSV"):
        resolve_local_source(str(roots.local / "ledger.sqlite3"), roots)


class FakeHdfs:
    def __init__(self, files: dict[str, int]) -> None:
        self.files = files

    def status(self, path: str, strict: bool = True) -> dict[str, Any] | None:
        if path in self.files:
            return {"type": "FILE", "length": self.files[path]}
        if any(f.startswith(path.rstrip("/") + "/") for f in self.files):
            return {"type": "DIRECTORY"}
        return None

    def list(self, path: str, status: bool = False) -> Any:
        prefix = path.rstrip("/") + "/"
        names = sorted({f[len(prefix) :].split("/")[0] for f in self.files if f.startswith(prefix)})
        return [(n, self.status(prefix + n)) for n in names] if status else names


def test_hdfs_sources_stay_under_stage(roots: Roots) -> None:
    hdfs = FakeHdfs(
        {"/user/spot/flow/stage/20230125/18/a.csv": 10, "/user/spot/flow/stage/20230125/19/b.csv": 5}
    )
    assert is_hdfs_source("/user/spot/flow/stage/20230125", roots)
    assert is_hdfs_source("hdfs:///user/spot/flow/stage", roots)
    items = resolve_hdfs_source("hdfs://nn:8020/user/spot/flow/stage/20230125/*/*.csv", roots, hdfs)
    assert [i.path for i in items] == [
        "/user/spot/flow/stage/20230125/18/a.csv",
        "/user/spot/flow/stage/20230125/19/b.csv",
    ]
    assert len(resolve_hdfs_source("/user/spot/flow/stage", roots, hdfs)) == 2
    for bad in ("hdfs:///user/spot/flow/hive", "hdfs:///user/spot/flow/stage/../binary/x"):
        with pytest.raises(BackfillSourceError, match="refused"):
            resolve_hdfs_source(bad, roots, hdfs)


def test_row_time_per_type() -> None:
    assert row_epoch("flow", ["2023-01-25 18:36:00", "1674671760"]) == 1674671760
    assert row_epoch("proxy", ["2023-01-25", "18:36:00"]) == 1674671760
    assert row_epoch("proxy", ["25/01/2023", "18:36:00"]) is None
    assert row_epoch("dns", ["x"]) is None


def test_window_keeps_since_inclusive_until_exclusive() -> None:
    text = "a,1674669600\nb,1674673199\nc,1674673200\nd,notatime\n"
    window = TimeWindow(parse_utc("2023-01-25T18:00:00Z", "since"), parse_utc("2023-01-25T19:00:00", "until"))
    chosen = select_rows("flow", text, window)
    assert [line.split(",")[0] for line in chosen.lines] == ["a", "b"]
    assert chosen.filtered_out == 1 and chosen.untimed == [4]
    everything = select_rows("flow", text, TimeWindow())
    assert everything.rows == 4 and everything.bytes == len(text.encode())
    assert everything.digest() == select_rows("flow", text, TimeWindow()).digest()


def test_quoted_fields_survive_selection() -> None:
    text = '"x, with comma",1674669600,"say ""hi"""\n'
    assert select_rows("flow", text, TimeWindow()).text == text


def test_hive_target_refuses_a_record_with_a_line_break_and_names_it(tmp_path: Path) -> None:
    """Hive reads staged CSV one record per line: a quoted line break would split the row, so the
    backfill stops before staging anything and says which record and what to do instead."""
    from spot_operators.backfill_run import run_backfill
    from spot_operators.config import load_ingest_config

    text = '"a",1674669600\n"line\nbreak",1674669601\n"c",1674669602\n'
    selection = select_rows("flow", text, TimeWindow())
    assert selection.records == [1, 2, 3] and selection.line_break_record() == 2
    assert select_rows("flow", '"a",1674669600\n', TimeWindow()).line_break_record() is None

    source = tmp_path / "rows.csv"
    source.write_text(text)
    config = load_ingest_config()
    pipeline = config.pipelines["flow_internals"].model_copy(update={"local_staging": tmp_path})
    items = resolve_local_source(str(source), Roots(tmp_path, PurePosixPath("/user/spot/flow/stage")))
    common: dict[str, Any] = {"window": TimeWindow(), "hdfs_factory": None, "producer_factory": None}
    with pytest.raises(ValueError, match=rf"{source}: record 2 holds a line break.*target=kafka"):
        run_backfill(config, pipeline, items, target="hive", dry_run=True, **common)
    assert run_backfill(config, pipeline, items, target="kafka", dry_run=True, **common).rows == 3


def test_bad_window_and_times_are_explained() -> None:
    with pytest.raises(ValueError, match=r"since=.*ISO 8601"):
        parse_utc("yesterday", "since")
    with pytest.raises(ValueError, match="must be before"):
        TimeWindow(datetime(2023, 1, 2, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC))
    assert parse_utc("", "until") is None


def test_keys_depend_on_bytes_target_and_window() -> None:
    digest = "a" * 64
    window = TimeWindow(parse_utc("2023-01-25T18:00:00Z", "since"))
    key = backfill_version("flow_internals", "kafka", window, digest, 10)
    assert key == backfill_version("flow_internals", "kafka", window, digest, 10)
    assert key != backfill_version("flow_internals", "hive", window, digest, 10)
    assert key != backfill_version("flow_internals", "kafka", TimeWindow(), digest, 10)
