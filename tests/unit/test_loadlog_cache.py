"""Reading the load log with the local cache: only new or rewritten batch files are read over WebHDFS.

A fake client stands in for the ``hdfs`` library's WebHDFS client (``status``, ``list`` with
``status=True`` giving ``modificationTime`` and ``length``, ``read``), counting the files it reads.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from spot_operators.config import IngestConfig
from spot_operators.loadlog_cache import CachedFile, LoadLogCache, load_log_cache_path
from spot_operators.operators.reconcile import read_load_log
from spot_operators.reconcile import LoadLogError, load_log_entries

ROOT = "/user/spot/flow/loadlog"


def _line(
    digest: str, batch: int, rows: int, listener: str = "abc", hour: Any = ("2023", "1", "25", "18")
) -> str:
    item: dict[str, Any] = {
        "listener": listener,
        "batch_id": batch,
        "pipeline": "flow_internals",
        "file_name": f"nfcapd.{digest}",
        "file_digest": digest,
        "segment_index": 0,
        "segment_count": 1,
        "expected_rows": rows,
        "rows": rows,
        "quarantined": 0,
        "y": hour[0] if hour else None,
        "m": hour[1] if hour else None,
        "d": hour[2] if hour else None,
        "h": hour[3] if hour else None,
    }
    return json.dumps(item, sort_keys=True)


class FakeHdfs:
    """Files by absolute path; folders are implied by the paths. Each write bumps the clock."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, int]] = {}
        self.clock = 1_700_000_000_000
        self.reads: list[str] = []
        self.lists = 0

    def write(self, path: str, text: str) -> None:
        self.clock += 1
        self.files[path] = (text, self.clock)

    def batch(self, listener: str, batch: int, *lines: str) -> str:
        path = f"{ROOT}/{listener}/batch-{batch:010d}.jsonl"
        self.write(path, "\n".join(lines) + "\n")
        return path

    def _children(self, folder: str) -> dict[str, dict[str, Any]]:
        prefix = folder.rstrip("/") + "/"
        children: dict[str, dict[str, Any]] = {}
        for path, (text, mtime) in self.files.items():
            if not path.startswith(prefix):
                continue
            name, _, rest = path[len(prefix) :].partition("/")
            if rest:
                children[name] = {"type": "DIRECTORY", "length": 0, "modificationTime": 0}
            else:
                children[name] = {"type": "FILE", "length": len(text.encode()), "modificationTime": mtime}
        return children

    def status(self, path: str, strict: bool = True) -> dict[str, Any] | None:
        if path in self.files or self._children(path):
            return {"type": "FILE" if path in self.files else "DIRECTORY"}
        return None

    def list(self, path: str, status: bool = False) -> list[Any]:
        self.lists += 1
        children = self._children(path)
        return [(n, {**s, "pathSuffix": n}) for n, s in children.items()] if status else list(children)

    @contextmanager
    def read(self, path: str, encoding: str | None = None) -> Iterator[StringIO]:
        self.reads.append(path)
        yield StringIO(self.files[path][0])


@pytest.fixture
def hdfs() -> FakeHdfs:
    fake = FakeHdfs()
    fake.batch("abc", 0, _line("d0", 0, 10))
    fake.batch("abc", 1, _line("d1", 1, 20), _line("d2", 1, 5, hour=None))
    fake.batch("xyz", 0, _line("d3", 0, 7, listener="xyz"))
    return fake


def _cold(hdfs: FakeHdfs) -> list[Any]:
    """What reading every file without a cache gives (the reference)."""
    return read_load_log(hdfs, ROOT)


def test_first_run_reads_everything_then_serves_unchanged_files_from_the_cache(
    hdfs: FakeHdfs, tmp_path: Path
) -> None:
    cache = LoadLogCache(tmp_path / "cache.jsonl")
    expected = _cold(hdfs)
    hdfs.reads.clear()
    assert read_load_log(hdfs, ROOT, cache) == expected
    assert len(hdfs.reads) == 3
    hdfs.reads.clear()
    assert read_load_log(hdfs, ROOT, cache) == expected
    assert hdfs.reads == []
    assert hdfs.lists == 3 * 3  # one LISTSTATUS per folder and run, no per-file status


def test_a_new_batch_file_is_the_only_one_read(hdfs: FakeHdfs, tmp_path: Path) -> None:
    cache = LoadLogCache(tmp_path / "cache.jsonl")
    read_load_log(hdfs, ROOT, cache)
    new = hdfs.batch("abc", 2, _line("d4", 2, 3))
    hdfs.reads.clear()
    entries = read_load_log(hdfs, ROOT, cache)
    assert hdfs.reads == [new]
    assert entries == _cold(hdfs)
    assert "d4" in {e.file_digest for e in entries}


def test_a_replayed_batch_rewritten_in_place_is_read_again(hdfs: FakeHdfs, tmp_path: Path) -> None:
    cache = LoadLogCache(tmp_path / "cache.jsonl")
    read_load_log(hdfs, ROOT, cache)
    path = hdfs.batch("abc", 1, _line("d1", 1, 21))  # other content and length
    hdfs.reads.clear()
    entries = read_load_log(hdfs, ROOT, cache)
    assert hdfs.reads == [path]
    assert {e.file_digest: e.rows for e in entries if e.batch_id == 1} == {"d1": 21}


def test_same_length_but_new_modification_time_is_read_again(hdfs: FakeHdfs, tmp_path: Path) -> None:
    cache = LoadLogCache(tmp_path / "cache.jsonl")
    read_load_log(hdfs, ROOT, cache)
    path = hdfs.batch("abc", 0, _line("d0", 0, 11))  # "10" -> "11": same length
    hdfs.reads.clear()
    entries = read_load_log(hdfs, ROOT, cache)
    assert hdfs.reads == [path]
    assert [e.rows for e in entries if e.file_digest == "d0"] == [11]


def test_a_removed_file_is_dropped_from_the_log_and_the_cache(hdfs: FakeHdfs, tmp_path: Path) -> None:
    cache = LoadLogCache(tmp_path / "cache.jsonl")
    read_load_log(hdfs, ROOT, cache)
    gone = f"{ROOT}/xyz/batch-0000000000.jsonl"
    del hdfs.files[gone]
    hdfs.reads.clear()
    entries = read_load_log(hdfs, ROOT, cache)
    assert hdfs.reads == []
    assert "d3" not in {e.file_digest for e in entries}
    assert gone not in cache.load()
    assert set(cache.load()) == set(hdfs.files)


@pytest.mark.parametrize(
    "content",
    [
        "not json at all\n",
        "",
        '{"format": "spot-loadlog-cache", "version": 1, "fields": ["listener"]}\n',
        "\x00\x01\x02",
        b"\xff\xfe garbage",
    ],
    ids=["garbage", "empty", "other-fields", "binary", "not-utf8"],
)
def test_a_corrupt_cache_only_costs_speed(
    hdfs: FakeHdfs, tmp_path: Path, content: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "cache.jsonl"
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)
    cache = LoadLogCache(target)
    with caplog.at_level(logging.WARNING):
        assert read_load_log(hdfs, ROOT, cache) == _cold(hdfs)
    assert "ignored" in caplog.text or "unreadable" in caplog.text
    assert len(cache.load()) == 3  # rewritten whole


def test_a_tampered_entry_or_truncated_line_discards_the_whole_cache(hdfs: FakeHdfs, tmp_path: Path) -> None:
    cache = LoadLogCache(tmp_path / "cache.jsonl")
    read_load_log(hdfs, ROOT, cache)
    lines = cache.path.read_text().splitlines()
    item = json.loads(lines[1])
    item["entries"][0][1] = "zero"  # batch_id no longer an int
    cache.path.write_text("\n".join([lines[0], json.dumps(item), *lines[2:]]) + "\n")
    assert cache.load() == {}
    cache.path.write_text("\n".join(lines)[:-20])  # a cut-off last line
    assert cache.load() == {}
    expected = _cold(hdfs)
    hdfs.reads.clear()
    assert read_load_log(hdfs, ROOT, cache) == expected
    assert len(hdfs.reads) == 3


def test_an_unwritable_cache_only_costs_speed(
    hdfs: FakeHdfs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = LoadLogCache(blocker / "cache.jsonl")
    with caplog.at_level(logging.WARNING):
        assert read_load_log(hdfs, ROOT, cache) == _cold(hdfs)
        assert read_load_log(hdfs, ROOT, cache) == _cold(hdfs)
    assert "not written" in caplog.text


def test_a_bad_line_names_file_and_line_and_keeps_what_was_read(hdfs: FakeHdfs, tmp_path: Path) -> None:
    cache = LoadLogCache(tmp_path / "cache.jsonl")
    bad = hdfs.batch("abc", 1, _line("d1", 1, 20), '{"listener": "abc"')
    with pytest.raises(LoadLogError, match=r"abc/batch-0000000001\.jsonl line 2"):
        read_load_log(hdfs, ROOT, cache)
    assert set(cache.load()) == {f"{ROOT}/abc/batch-0000000000.jsonl"}
    hdfs.batch("abc", 1, _line("d1", 1, 20))
    expected = _cold(hdfs)
    hdfs.reads.clear()
    assert read_load_log(hdfs, ROOT, cache) == expected
    assert sorted(hdfs.reads) == sorted([bad, f"{ROOT}/xyz/batch-0000000000.jsonl"])


def test_other_files_and_an_absent_folder(hdfs: FakeHdfs, tmp_path: Path) -> None:
    cache = LoadLogCache(tmp_path / "cache.jsonl")
    hdfs.write(f"{ROOT}/README", "not a listener folder")
    hdfs.write(f"{ROOT}/abc/_tmp.crc", "not a load log file")
    assert read_load_log(hdfs, ROOT, cache) == _cold(hdfs)
    assert len(_cold(hdfs)) == 4
    assert read_load_log(hdfs, "/user/spot/dns/loadlog", cache) == []


def test_entries_survive_the_round_trip_through_the_cache_file(tmp_path: Path) -> None:
    text = "\n".join(
        [_line("a", 3, 9), _line("b", 4, 0, hour=None), _line("c", 5, 1, hour=("2023", "01", "02", "03"))]
    )
    entries = tuple(load_log_entries(text, "x.jsonl"))
    cache = LoadLogCache(tmp_path / "sub" / "cache.jsonl")
    assert cache.save({"/p/x.jsonl": CachedFile(12, 345, entries)})
    assert cache.load() == {"/p/x.jsonl": CachedFile(12, 345, entries)}
    assert [p.name for p in cache.path.parent.iterdir()] == ["cache.jsonl"]  # no temporary file left


def test_concurrent_writers_never_leave_a_broken_cache(tmp_path: Path) -> None:
    entries = tuple(load_log_entries(_line("a", 0, 1), "x.jsonl"))
    cache = LoadLogCache(tmp_path / "cache.jsonl")
    cache.save({})
    problems: list[str] = []

    def writer(n: int) -> None:
        for i in range(40):
            files = {f"/p/{n}-{j}.jsonl": CachedFile(i, j, entries) for j in range(50)}
            LoadLogCache(cache.path).save(files)

    def reader() -> None:
        for _ in range(200):
            loaded = LoadLogCache(cache.path).load()
            if loaded and len(loaded) != 50:
                problems.append(f"{len(loaded)} files")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)] + [
        threading.Thread(target=reader)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert len(cache.load()) == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.jsonl"]


def test_the_cache_lives_in_the_first_pipeline_staging_of_the_type(tmp_path: Path) -> None:
    def pipeline(kind: str, name: str) -> dict[str, Any]:
        return {
            "type": kind,
            "collector_path": str(tmp_path / "c" / name),
            "local_staging": str(tmp_path / name),
        }

    config = IngestConfig.model_validate(
        {
            "dbname": "spot",
            "kafka": {"kafka_server": "127.0.0.1", "kafka_port": 9092},
            "pipelines": {
                "f1": pipeline("flow", "f1"),
                "f2": pipeline("flow", "f2"),
                "d1": pipeline("dns", "d1"),
            },
        }
    )
    assert load_log_cache_path(config, "flow") == tmp_path / "f1" / "loadlog_cache_flow.jsonl"
    assert load_log_cache_path(config, "dns") == tmp_path / "d1" / "loadlog_cache_dns.jsonl"
    assert load_log_cache_path(config, "proxy") is None
