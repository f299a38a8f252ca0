"""New-file detection: what counts as a candidate, and when a candidate counts as complete."""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from spot_operators import detection
from spot_operators.config import PipelineConfig
from spot_operators.detection import (
    CollectorPathError,
    FileSnapshot,
    compile_matcher,
    is_hidden_or_in_progress,
    path_text,
    ready_files,
    scan_directory,
    snapshot_directory,
)

NFCAPD = r"nfcapd\.[0-9]{12}([0-9]{2})?"
SEC = 1_000_000_000


def everything(_name: str) -> bool:
    return True


def write(path: Path | bytes, data: bytes = b"data", age: float = 60.0) -> None:
    """Create a file whose mtime lies ``age`` seconds in the past."""
    with open(path, "wb") as handle:
        handle.write(data)
    mtime = time.time_ns() - int(age * SEC)
    os.utime(path, ns=(mtime, mtime))


def names(files: dict[str, FileSnapshot]) -> list[str]:
    return sorted(os.path.basename(p) for p in files)


# --------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        ".nfcapd.202401011200",
        ".hidden.pcap",
        "nfcapd.current.4242",
        "NFCAPD.CURRENT.1",
        "a.pcap.tmp",
        "a.pcap.TMP",
        "a.pcap.part",
        "a.pcap.partial",
        ".a.pcap.swp",
        "a.pcap.swp",
        "a.pcap~",
    ],
)
def test_hidden_and_in_progress_names(name: str) -> None:
    assert is_hidden_or_in_progress(name)


@pytest.mark.parametrize("name", ["nfcapd.202401011200", "a.pcap", "proxy.log", "partial.log", "tmp.pcap"])
def test_ordinary_names_are_not_in_progress(name: str) -> None:
    assert not is_hidden_or_in_progress(name)


def test_hidden_and_in_progress_files_are_skipped_whatever_the_patterns(tmp_path: Path) -> None:
    skipped = ["nfcapd.current.77", ".nfcapd.202401011201", "x.pcap.tmp", "x.pcap.part"]
    skipped += ["x.pcap.partial", "x.pcap.swp", "x.pcap~"]
    for name in ["nfcapd.202401011200", "x.pcap", *skipped]:
        write(tmp_path / name)
    scan = scan_directory(tmp_path, recursive=False, matches=everything)
    assert names(scan.files) == ["nfcapd.202401011200", "x.pcap"]
    assert scan.skipped_in_progress == 7
    assert scan.problems == []


def test_files_inside_dot_directories_are_skipped(tmp_path: Path) -> None:
    (tmp_path / ".staging" / "deeper").mkdir(parents=True)
    write(tmp_path / ".staging" / "nfcapd.202401011200")
    write(tmp_path / ".staging" / "deeper" / "nfcapd.202401011201")
    (tmp_path / "visible").mkdir()
    write(tmp_path / "visible" / "nfcapd.202401011202")
    files = snapshot_directory(tmp_path, recursive=True, matches=everything)
    assert names(files) == ["nfcapd.202401011202"]


def test_patterns_fullmatch_the_base_name_like_pipeline_config(tmp_path: Path) -> None:
    candidates = [
        "nfcapd.202401011200",
        "nfcapd.20240101120030",
        "nfcapd.202401011200.bak",
        "old-nfcapd.202401011200",
        "nfcapd.2024010112",
        "nfcapd.current.99",
    ]
    for name in candidates:
        write(tmp_path / name)
    pipeline = PipelineConfig(type="flow", collector_path=tmp_path, local_staging=tmp_path)
    matcher = compile_matcher([NFCAPD])
    for name in candidates:
        assert matcher(name) == pipeline.matches(name), name
        assert matcher(str(tmp_path / name)) == pipeline.matches(name), name
    expected = ["nfcapd.202401011200", "nfcapd.20240101120030"]
    assert names(snapshot_directory(tmp_path, recursive=False, matches=pipeline.matches)) == expected
    assert names(snapshot_directory(tmp_path, recursive=False, matches=matcher)) == expected


def test_matcher_tries_every_pattern() -> None:
    matches = compile_matcher([r".*\.pcap", r".*\.log"])
    assert matches("a.pcap") and matches("b.log") and not matches("c.txt")


def test_recursive_or_not(tmp_path: Path) -> None:
    write(tmp_path / "top.pcap")
    (tmp_path / "2024" / "01").mkdir(parents=True)
    write(tmp_path / "2024" / "mid.pcap")
    write(tmp_path / "2024" / "01" / "deep.pcap")
    flat = snapshot_directory(tmp_path, recursive=False, matches=everything)
    deep = snapshot_directory(tmp_path, recursive=True, matches=everything)
    assert names(flat) == ["top.pcap"]
    assert names(deep) == ["deep.pcap", "mid.pcap", "top.pcap"]
    assert str(tmp_path / "2024" / "01" / "deep.pcap") in deep


def test_snapshot_records_path_size_and_mtime(tmp_path: Path) -> None:
    write(tmp_path / "a.pcap", b"12345")
    stat = os.stat(tmp_path / "a.pcap")
    files = snapshot_directory(tmp_path, recursive=False, matches=everything)
    path = str(tmp_path / "a.pcap")
    assert files == {path: FileSnapshot(path, 5, stat.st_mtime_ns)}
    assert files[path].key == f"{path}|5|{stat.st_mtime_ns}"


def test_directories_are_not_files(tmp_path: Path) -> None:
    (tmp_path / "dir.pcap").mkdir()
    assert snapshot_directory(tmp_path, recursive=False, matches=everything) == {}


def test_symlinks_out_of_root_are_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "collector", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    write(outside / "secret.pcap")
    write(root / "own.pcap")
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)
    (root / "linked.pcap").symlink_to(outside / "secret.pcap")
    (root / "dangling.pcap").symlink_to(tmp_path / "missing.pcap")
    for recursive in (False, True):
        scan = scan_directory(root, recursive=recursive, matches=everything)
        assert names(scan.files) == ["own.pcap"]
        assert all(p.startswith(str(root) + os.sep) for p in scan.files)
    reasons = {os.path.basename(p.path): p.reason for p in scan.problems}
    assert reasons == {
        "linked_dir": "symbolic link not followed",
        "linked.pcap": "symbolic link not followed",
        "dangling.pcap": "symbolic link not followed",
    }


def test_symlinks_inside_root_do_not_list_a_file_twice_or_loop(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    write(tmp_path / "real" / "a.pcap")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real" / "loop").symlink_to(tmp_path, target_is_directory=True)
    files = snapshot_directory(tmp_path, recursive=True, matches=everything)
    assert list(files) == [str(tmp_path / "real" / "a.pcap")]


def test_collector_path_given_through_a_symlink_still_works(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    write(tmp_path / "real" / "a.pcap")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    files = snapshot_directory(tmp_path / "link", recursive=True, matches=everything)
    assert list(files) == [str(tmp_path / "link" / "a.pcap")]


def test_directory_resolving_outside_root_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: a sub-directory swapped for a link between listing and reading is not read."""
    root = tmp_path / "collector"
    (root / "sub").mkdir(parents=True)
    write(root / "sub" / "a.pcap")
    real_realpath = os.path.realpath

    def swapped(path: str) -> str:
        return "/elsewhere/sub" if path == str(root / "sub") else real_realpath(path)

    monkeypatch.setattr(detection.os.path, "realpath", swapped)
    scan = scan_directory(root, recursive=True, matches=everything)
    assert scan.files == {}
    assert [p.reason for p in scan.problems] == ["resolves outside the collector directory"]


def test_missing_or_wrong_root_raises_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(CollectorPathError, match=r"collector directory .*nope does not exist"):
        scan_directory(tmp_path / "nope", recursive=False, matches=everything)
    write(tmp_path / "file")
    with pytest.raises(CollectorPathError, match="is not a directory"):
        scan_directory(tmp_path / "file", recursive=False, matches=everything)


def test_unlistable_root_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_scandir = os.scandir

    def denied(path: str) -> Any:
        if path == str(tmp_path):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(detection.os, "scandir", denied)
    with pytest.raises(CollectorPathError, match=r"cannot list collector directory .*Permission denied"):
        scan_directory(tmp_path, recursive=False, matches=everything)


def test_unreadable_subdirectory_is_a_problem_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "locked").mkdir()
    write(tmp_path / "locked" / "a.pcap")
    write(tmp_path / "b.pcap")
    real_scandir = os.scandir

    def denied(path: str) -> Any:
        if path == str(tmp_path / "locked"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(detection.os, "scandir", denied)
    scan = scan_directory(tmp_path, recursive=True, matches=everything)
    assert names(scan.files) == ["b.pcap"]
    assert [str(p) for p in scan.problems] == [
        f"{tmp_path / 'locked'}: cannot list directory: Permission denied"
    ]


def test_unreadable_file_is_a_problem_not_a_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "locked.pcap")
    write(tmp_path / "open.pcap")
    real_access = os.access
    monkeypatch.setattr(
        detection.os, "access", lambda p, mode: not str(p).endswith("locked.pcap") and real_access(p, mode)
    )
    scan = scan_directory(tmp_path, recursive=False, matches=everything)
    assert names(scan.files) == ["open.pcap"]
    assert [p.reason for p in scan.problems] == ["not readable by this user"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything; the monkeypatched tests cover it")
def test_real_permission_denied_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "locked").mkdir()
    write(tmp_path / "locked" / "a.pcap")
    write(tmp_path / "b.pcap")
    (tmp_path / "locked").chmod(0)
    try:
        scan = scan_directory(tmp_path, recursive=True, matches=everything)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert names(scan.files) == ["b.pcap"]
    assert len(scan.problems) == 1


def test_fifo_matching_a_pattern_is_reported_not_listed(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.pcap")
    scan = scan_directory(tmp_path, recursive=False, matches=everything)
    assert scan.files == {}
    assert [p.reason for p in scan.problems] == ["not a regular file"]


def test_snapshot_directory_logs_problems(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    os.mkfifo(tmp_path / "pipe.pcap")
    with caplog.at_level("WARNING", logger="spot_operators.detection"):
        assert snapshot_directory(tmp_path, recursive=False, matches=everything) == {}
    assert "pipe.pcap: not a regular file" in caplog.text


# --------------------------------------------------------------------------------------------
# Awkward names
# --------------------------------------------------------------------------------------------

AWKWARD = [
    "with space.pcap",
    "quote'single.pcap",
    'quote"double.pcap',
    "semi;colon.pcap",
    "$(touch pwned).pcap",
    "`id`.pcap",
    "-rf.pcap",
    "line\nbreak.pcap",
    "ünïcödé.pcap",
]


def test_awkward_names_are_listed_and_openable(tmp_path: Path) -> None:
    for index, name in enumerate(AWKWARD):
        write(tmp_path / name, f"content {index}".encode())
    files = snapshot_directory(tmp_path, recursive=False, matches=compile_matcher([r"(?s).*\.pcap"]))
    assert names(files) == sorted(AWKWARD)
    for index, name in enumerate(AWKWARD):
        with open(files[str(tmp_path / name)].path, "rb") as handle:
            assert handle.read() == f"content {index}".encode()
    assert not (tmp_path / "pwned").exists()


def test_non_utf8_names_stay_usable(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/bad\xff\xfe name;$(x).pcap"
    write(raw, b"payload")
    files = snapshot_directory(tmp_path, recursive=False, matches=compile_matcher([r".*\.pcap"]))
    [snapshot] = files.values()
    assert os.fsencode(snapshot.path) == raw  # surrogate escapes map back to the exact bytes
    with open(snapshot.path, "rb") as handle:
        assert handle.read() == b"payload"

    # Airflow sends events as strict UTF-8 JSON; the event form must survive that and come back.
    event = snapshot.to_event()
    assert event["path"] == path_text(snapshot.path) == str(tmp_path) + "/bad\\xff\\xfe name;$(x).pcap"
    wire = msgspec.json.encode(event)
    json.dumps(event, ensure_ascii=False).encode("utf-8")
    back = FileSnapshot.from_event(msgspec.json.decode(wire))
    assert back == snapshot
    with open(back.path, "rb") as handle:
        assert handle.read() == b"payload"
    snapshot.key.encode("utf-8")
    assert snapshot.key.startswith(event["path"] + "|7|")


def test_utf8_names_have_no_extra_event_field(tmp_path: Path) -> None:
    snapshot = FileSnapshot(str(tmp_path / "ünï code.pcap"), 3, 42)
    assert snapshot.to_event() == {"path": snapshot.path, "size": 3, "mtime_ns": 42}
    assert FileSnapshot.from_event(snapshot.to_event()) == snapshot


# --------------------------------------------------------------------------------------------
# Readiness
# --------------------------------------------------------------------------------------------

NOW = 1_700_000_000 * SEC


def snap(path: str, size: int = 10, age: float = 60.0) -> FileSnapshot:
    return FileSnapshot(path, size, NOW - int(age * SEC))


def as_dict(*snapshots: FileSnapshot) -> dict[str, FileSnapshot]:
    return {s.path: s for s in snapshots}


def test_unchanged_and_old_enough_is_ready() -> None:
    a = snap("/c/a")
    assert ready_files(as_dict(a), as_dict(a), stable_seconds=30, now_ns=NOW) == [a]


def test_size_change_is_not_ready() -> None:
    before, after = snap("/c/a", size=10), snap("/c/a", size=20)
    assert ready_files(as_dict(before), as_dict(after), stable_seconds=30, now_ns=NOW) == []


def test_mtime_change_is_not_ready() -> None:
    before, after = snap("/c/a", age=90), snap("/c/a", age=60)
    assert ready_files(as_dict(before), as_dict(after), stable_seconds=30, now_ns=NOW) == []


def test_too_young_is_not_ready_until_it_ages() -> None:
    a = snap("/c/a", age=5)
    assert ready_files(as_dict(a), as_dict(a), stable_seconds=30, now_ns=NOW) == []
    assert ready_files(as_dict(a), as_dict(a), stable_seconds=30, now_ns=NOW + 25 * SEC) == [a]


def test_exactly_stable_seconds_old_is_ready() -> None:
    a = snap("/c/a", age=30)
    assert ready_files(as_dict(a), as_dict(a), stable_seconds=30, now_ns=NOW) == [a]
    assert ready_files(as_dict(a), as_dict(a), stable_seconds=30.000001, now_ns=NOW) == []


def test_future_mtime_is_not_ready() -> None:
    a = snap("/c/a", age=-120)
    assert ready_files(as_dict(a), as_dict(a), stable_seconds=0, now_ns=NOW) == []


def test_seen_once_is_not_ready() -> None:
    old, new = snap("/c/old"), snap("/c/new", age=3600)
    assert ready_files({}, as_dict(old), stable_seconds=0, now_ns=NOW) == []
    assert ready_files(as_dict(old), as_dict(old, new), stable_seconds=0, now_ns=NOW) == [old]


def test_file_gone_from_current_is_not_ready() -> None:
    a = snap("/c/a")
    assert ready_files(as_dict(a), {}, stable_seconds=0, now_ns=NOW) == []


def test_order_is_by_mtime_then_path() -> None:
    files = [snap("/c/b", age=100), snap("/c/a", age=100), snap("/c/z", age=500), snap("/c/m", age=50)]
    current = as_dict(*files)
    ready = ready_files(current, dict(reversed(current.items())), stable_seconds=0, now_ns=NOW)
    assert [s.path for s in ready] == ["/c/z", "/c/a", "/c/b", "/c/m"]


def test_negative_stable_seconds_is_rejected() -> None:
    with pytest.raises(ValueError, match="stable_seconds"):
        ready_files({}, {}, stable_seconds=-1, now_ns=NOW)


def test_end_to_end_on_disk_growing_then_complete(tmp_path: Path) -> None:
    """Two real scans: a growing copy waits, an nfcapd rename waits for age, an old file is ready."""
    matches = compile_matcher([NFCAPD, r".*\.pcap"])
    write(tmp_path / "old.pcap", age=600)
    write(tmp_path / "copy.pcap", b"part 1", age=600)
    write(tmp_path / "nfcapd.current.12", b"flows", age=2)
    first = snapshot_directory(tmp_path, recursive=False, matches=matches)
    assert names(first) == ["copy.pcap", "old.pcap"]

    with open(tmp_path / "copy.pcap", "ab") as handle:
        handle.write(b" part 2")
    appended = time.time_ns() - SEC
    os.utime(tmp_path / "copy.pcap", ns=(appended, appended))
    os.rename(tmp_path / "nfcapd.current.12", tmp_path / "nfcapd.202401011200")
    second = snapshot_directory(tmp_path, recursive=False, matches=matches)
    ready = ready_files(first, second, stable_seconds=30, now_ns=time.time_ns())
    assert [os.path.basename(s.path) for s in ready] == ["old.pcap"]

    later = ready_files(second, second, stable_seconds=30, now_ns=time.time_ns() + 31 * SEC)
    assert [os.path.basename(s.path) for s in later] == ["old.pcap", "nfcapd.202401011200", "copy.pcap"]


def test_invalid_pattern_is_named() -> None:
    with pytest.raises(ValueError, match=r"invalid pattern '\(unclosed'"):
        compile_matcher([r".*\.pcap", "(unclosed"])


def test_matcher_survives_pickling() -> None:
    """Airflow may copy or pickle a trigger; its matcher must come along."""
    matches = pickle.loads(pickle.dumps(compile_matcher([NFCAPD])))
    assert matches("/x/nfcapd.202401011200") and not matches("nfcapd.current.1")
