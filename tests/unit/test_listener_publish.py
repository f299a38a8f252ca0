"""The listener's publish is idempotent per batch: an attempt that dies at any file system call, then a
replay, leave exactly what one clean attempt leaves.

The file system is an in-memory one with Hadoop's semantics where the publish relies on them (a rename
refuses an existing target or a missing parent folder; a glob pattern escapes its metacharacters). An
attempt is what the listener does for a batch: delete the staging folder, write the staged files, then
:func:`publish_batch`. A crash makes that call and every later one fail, as a dead process would. The
pool runs the concurrent calls at once (the manifest written before the folders are cleared), or only
when their results are waited for (the folders cleared first; a call nobody waits for runs last). The
real HDFS run of the same protocol, with the listener killed mid-batch, is
tests/integration/test_listener.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

import pytest

from spot_operators.listener_publish import glob_escaped, part_prefix, publish_batch, staging_folder

LOCATION = "/user/sp[o]t/flow/hive"  # glob characters: the clearing must match them literally
TAG, OTHER_TAG, BATCH = "a1b2c3d4e5", "ffffffffff", 7
HOURS = ("y=2023/m=1/d=25/h=18", "y=2023/m=1/d=25/h=19", "y=2023/m=1/d=26/h=0")


class Crash(Exception):
    """The attempt's process died."""


class MemoryFs:
    """Files (path -> content) and folders in memory; absolute paths, no trailing slash."""

    def __init__(self) -> None:
        self.contents: dict[str, str] = {}
        self.folders: set[str] = {"/"}

    @staticmethod
    def _parent(path: str) -> str:
        return path.rsplit("/", 1)[0] or "/"

    def _make_parents(self, path: str) -> None:
        parent = self._parent(path)
        while parent not in self.folders:
            self.folders.add(parent)
            parent = self._parent(parent)

    def _under(self, folder: str) -> Iterator[str]:
        return (p for p in [*self.contents, *self.folders] if p.startswith(folder.rstrip("/") + "/"))

    def copy(self) -> MemoryFs:
        twin = MemoryFs()
        twin.contents, twin.folders = dict(self.contents), set(self.folders)
        return twin

    def qualified(self, path: str) -> str:
        return path

    def exists(self, path: str) -> bool:
        return path in self.contents or path in self.folders

    def read_text(self, path: str) -> str:
        if path not in self.contents:
            raise FileNotFoundError(path)
        return self.contents[path]

    def write_text(self, path: str, content: str) -> None:
        if path in self.folders:
            raise OSError(f"{path} is a folder")
        self._make_parents(path)
        self.contents[path] = content

    def children(self, folder: str) -> list[str]:
        return sorted(p for p in self._under(folder) if self._parent(p) == folder)

    def files(self, folder: str) -> list[str]:
        return sorted(p for p in self._under(folder) if p in self.contents)

    def glob(self, pattern: str) -> list[str]:
        regex = ""
        for escaped, char in re.findall(r"\\(.)|(.)", pattern):
            if escaped:
                regex += re.escape(escaped)
            elif char == "*":
                regex += "[^/]*"
            elif char in "?[]{}":
                raise NotImplementedError(f"glob {pattern!r}: unescaped {char!r}")
            else:
                regex += re.escape(char)
        return sorted(p for p in [*self.contents, *self.folders] if re.fullmatch(regex, p))

    def delete(self, path: str, recursive: bool = False) -> None:
        if path in self.contents:
            del self.contents[path]
        elif path in self.folders:
            inside = list(self._under(path))
            if inside and not recursive:
                raise OSError(f"{path} is not empty")
            for p in inside:
                self.contents.pop(p, None)
                self.folders.discard(p)
            self.folders.discard(path)

    def mkdirs(self, path: str) -> None:
        if path in self.contents:
            raise OSError(f"{path} is a file")
        self._make_parents(path)
        self.folders.add(path)

    def rename(self, source: str, target: str) -> None:
        if source not in self.contents or self.exists(target) or self._parent(target) not in self.folders:
            raise OSError(f"rename {source} -> {target} refused")
        self.contents[target] = self.contents.pop(source)


class Dying:
    """``fs`` for one attempt that dies at call number ``at`` (1-based): that call and every later
    one raise :class:`Crash`; a write it dies in leaves the first half of the file (HDFS truncates a
    file it overwrites when it opens it). ``at=0`` never dies; ``calls`` counts the calls made."""

    def __init__(self, fs: MemoryFs, at: int) -> None:
        self.fs, self.at, self.calls = fs, at, 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.fs, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.at and self.calls >= self.at:
                if self.calls == self.at and name == "write_text":
                    path, content = args
                    method(path, content[: len(content) // 2])
                raise Crash(f"died at call {self.calls} ({name})")
            return method(*args, **kwargs)

        return call


class _Late(Future[Any]):
    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__()
        self.call = call

    def run(self) -> None:
        if not self.done():
            try:
                self.set_result(self.call())
            except BaseException as exc:
                self.set_exception(exc)

    def result(self, timeout: float | None = None) -> Any:
        self.run()
        return super().result(timeout)


class Late(Executor):
    """Runs a submitted call only when its result is asked for, or at :meth:`finish` (the pool's
    threads getting to it later): a call nobody waits for runs after everything else."""

    def __init__(self) -> None:
        self.submitted: list[_Late] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = _Late(lambda: fn(*args, **kwargs))
        self.submitted.append(future)
        return future

    def finish(self) -> None:
        for future in self.submitted:
            future.run()


class Inline(Executor):
    """Runs a submitted call at once: in submission order."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = _Late(lambda: fn(*args, **kwargs))
        future.run()
        return future


POOLS: dict[str, Callable[[], Executor]] = {"inline": Inline, "late": Late}


def _world() -> MemoryFs:
    """What is there before batch 7: another listener's batch 7, this listener's batch 6 and its
    manifest, a file Hive or a user put in a target folder."""
    fs = MemoryFs()
    fs.write_text(f"{LOCATION}/{HOURS[0]}/{part_prefix(OTHER_TAG, BATCH)}00000.parquet", "other listener")
    fs.write_text(f"{LOCATION}/{HOURS[0]}/{part_prefix(TAG, BATCH - 1)}00000.parquet", "batch 6")
    fs.write_text(f"{LOCATION}/_staging/{TAG}/manifests/b{BATCH - 1}.txt", f"{HOURS[0]}\n")
    fs.write_text(f"{LOCATION}/{HOURS[1]}/000000_0", "hive's")
    return fs


def _attempt(fs: Any, pool: Executor, hours: tuple[str, ...], listed: bool) -> None:
    """One attempt at batch 7, as the listener makes it: staging replaced, then the publish."""
    staging = staging_folder(LOCATION, TAG, BATCH)
    fs.delete(staging, recursive=True)
    staged: dict[str, list[str]] = {}
    for n, hour in enumerate(hours):
        for task in range(2):  # two tasks each wrote a file for every hour
            path = f"{staging}/t/{hour}/part-{2 * n + task:05d}.parquet"
            fs.write_text(path, f"rows of {hour} from task {task}")
            staged.setdefault(hour, []).append(path)
    publish_batch(fs, pool, LOCATION, TAG, BATCH, staging, None if listed else staged)
    if isinstance(pool, Late):
        pool.finish()  # the attempt lived on: calls nobody waited for run now


def _published(fs: MemoryFs) -> dict[str, str]:
    """Every file readers can see (outside ``_staging``), with its content."""
    return {p: c for p, c in fs.contents.items() if "/_staging/" not in p}


def _clean(hours: tuple[str, ...], listed: bool) -> tuple[MemoryFs, int]:
    fs = _world()
    counting = Dying(fs, 0)
    _attempt(counting, Inline(), hours, listed)
    return fs, counting.calls


def test_one_attempt_moves_each_staged_file_to_its_name_and_leaves_the_rest() -> None:
    fs, _ = _clean(HOURS, listed=False)
    published = _published(fs)
    prefix = part_prefix(TAG, BATCH)
    ours = {p: c for p, c in published.items() if f"/{prefix}" in p}
    assert ours == {
        f"{LOCATION}/{hour}/{prefix}{n:05d}.parquet": f"rows of {hour} from task {n}"
        for hour in HOURS
        for n in range(2)
    }
    assert set(published) - set(ours) == set(_published(_world()))  # nobody else's file touched
    (manifest,) = fs.files(f"{LOCATION}/_staging")  # staging gone, batch 6's manifest too
    manifests = re.escape(f"{LOCATION}/_staging/{TAG}/manifests")
    assert re.fullmatch(rf"{manifests}/b{BATCH}\.[0-9a-f]{{12}}\.txt", manifest)
    assert fs.read_text(manifest) == "\n".join(HOURS) + "\n"


@pytest.mark.parametrize("listed", [False, True], ids=["staged-given", "staged-listed"])
@pytest.mark.parametrize("pool", sorted(POOLS))
def test_a_replay_after_a_crash_at_any_call_leaves_what_one_attempt_leaves(pool: str, listed: bool) -> None:
    want, calls = _clean(HOURS, listed)
    assert calls > 10
    for crash_at in range(1, calls + 1):
        fs = _world()
        with pytest.raises(Crash):
            _attempt(Dying(fs, crash_at), POOLS[pool](), HOURS, listed)
        _attempt(fs, POOLS[pool](), HOURS, listed)
        assert _published(fs) == _published(want), f"crash at call {crash_at}"
        left = [p for p in fs.files(f"{LOCATION}/_staging") if "/manifests/" not in p]
        assert left == [], f"crash at {crash_at}: staging left {left}"
        manifests = fs.files(f"{LOCATION}/_staging/{TAG}/manifests")
        assert manifests and all(f"/b{BATCH}." in m for m in manifests), f"crash at {crash_at}"


@pytest.mark.parametrize("pool", sorted(POOLS))
def test_a_replay_clears_a_folder_only_the_crashed_attempt_wrote(pool: str) -> None:
    """The manifest holds the union: files an attempt moved into an hour the replay does not write go."""
    want, _ = _clean(HOURS[:2], listed=False)
    _, calls = _clean(HOURS, listed=False)
    for crash_at in range(1, calls + 1):
        fs = _world()
        with pytest.raises(Crash):
            _attempt(Dying(fs, crash_at), POOLS[pool](), HOURS, False)
        _attempt(fs, POOLS[pool](), HOURS[:2], False)
        assert _published(fs) == _published(want), f"crash at call {crash_at}"


@pytest.mark.parametrize("replay_hours", [HOURS, HOURS[:2]], ids=["same-hours", "fewer-hours"])
@pytest.mark.parametrize("pool", sorted(POOLS))
def test_two_crashes_in_a_row_then_a_replay_leave_what_one_attempt_leaves(
    pool: str, replay_hours: tuple[str, ...]
) -> None:
    """Attempt 1 dies anywhere, attempt 2 dies anywhere (in the middle of writing its manifest too),
    then the replay. With fewer hours, the replay must still clear what attempt 1 moved into the
    third: the manifests of both attempts hold it."""
    want, _ = _clean(replay_hours, listed=False)
    _, calls = _clean(HOURS, listed=False)
    for first in range(1, calls + 1):
        fs = _world()
        with pytest.raises(Crash):
            _attempt(Dying(fs, first), POOLS[pool](), HOURS, False)
        second_calls = Dying(fs.copy(), 0)
        _attempt(second_calls, Inline(), HOURS, False)  # how many calls the second attempt makes
        for second in range(1, second_calls.calls + 1):
            fs2 = fs.copy()
            with pytest.raises(Crash):
                _attempt(Dying(fs2, second), POOLS[pool](), HOURS, False)
            _attempt(fs2, POOLS[pool](), replay_hours, False)
            assert _published(fs2) == _published(want), f"crashes at calls {first} then {second}"


def test_the_crash_points_cover_a_half_published_batch() -> None:
    """Some crash leaves part of the batch visible (the replay's case that matters), none deletes
    another listener's or an earlier batch's file."""
    want, calls = _clean(HOURS, listed=False)
    ours = {p for p in _published(want) if f"/{part_prefix(TAG, BATCH)}" in p}
    partial = 0
    for crash_at in range(1, calls + 1):
        fs = _world()
        with pytest.raises(Crash):
            _attempt(Dying(fs, crash_at), Inline(), HOURS, False)
        visible = {p for p in _published(fs) if f"/{part_prefix(TAG, BATCH)}" in p}
        partial += 0 < len(visible) < len(ours)
        assert set(_published(_world())) <= set(_published(fs))
    assert partial


def test_glob_escaped_matches_only_itself() -> None:
    fs = MemoryFs()
    for path in ("/s/x[1]{a,b}*?.csv", "/s/x1a.csv", "/s/x[1]{a,b}zz.csv"):
        fs.write_text(path, "")
    assert fs.glob(glob_escaped("/s/x[1]{a,b}*?.csv")) == ["/s/x[1]{a,b}*?.csv"]
