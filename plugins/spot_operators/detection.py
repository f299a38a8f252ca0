"""New-file detection in a collector directory: snapshot it, then decide which files are complete.

Spot's collector reacted to inotify "close/move" events. Files already in the directory when it
started, or arriving while it was down, were never seen (spot-reference.md, "What Spot got wrong" 1),
and its distributed collector could pick up half-written ``nfcapd.current.*`` files (item 10).
Here detection is a comparison of two directory snapshots instead of an event stream, so start-up
files are found like any others, and a file counts as ready only when it has stopped changing:

* nfcapd writes ``nfcapd.current.<pid>`` and renames it to ``nfcapd.YYYYMMDDhhmm`` when the
  interval closes; the temporary name is never a candidate, whatever the configured patterns say.
* Copies (scp, cp, NFS or SMB writes) land in pieces under the final name; the size and mtime keep
  changing until the last piece, so a file must look the same in two snapshots and its mtime must be
  ``stable_seconds`` old.
* rsync, editors and download tools write to dot-files or ``*.tmp``/``*.part``/``*.partial``/
  ``*.swp``/``*~`` names and rename when done; those names are skipped too.

Pure standard library, no Airflow: the triggerer runs it in a worker thread and tests call it
directly. Paths are ``str`` as :func:`os.fsdecode` makes them (undecodable bytes become
surrogate escapes), so they can be passed straight back to ``open``; :meth:`FileSnapshot.to_event`
turns them into JSON-safe form for trigger events and XComs, which must be valid UTF-8.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "IN_PROGRESS_PREFIXES",
    "IN_PROGRESS_SUFFIXES",
    "CollectorPathError",
    "DirectoryScan",
    "FileSnapshot",
    "PatternMatcher",
    "ScanProblem",
    "compile_matcher",
    "is_hidden_or_in_progress",
    "path_text",
    "ready_files",
    "scan_directory",
    "snapshot_directory",
]

log = logging.getLogger(__name__)

IN_PROGRESS_PREFIXES: tuple[str, ...] = (".", "nfcapd.current.")
"""Base names starting like this are hidden or still being written (dot-files: rsync, editors)."""

IN_PROGRESS_SUFFIXES: tuple[str, ...] = (".tmp", ".part", ".partial", ".swp", "~")
"""Base names ending like this (any case) are temporary names of transfers and editors."""


class CollectorPathError(OSError):
    """The collector directory itself is missing, not a directory, or unreadable.

    Raised (not collected as a :class:`ScanProblem`) because nothing can be detected at all: the
    caller must fail loudly with this message, which names the path.
    """


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    """What one scan saw of one file; equal snapshots of the same path mean "it did not change".

    ``path`` is absolute, under the collector directory as configured (not symlink-resolved), and
    may hold surrogate escapes for bytes that are not UTF-8.
    """

    path: str
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        """``path|size|mtime_ns`` with the path in :func:`path_text` form (UTF-8 safe).

        A file rewritten in place under the same name gets a new key, so it is ingested again.
        """
        return f"{path_text(self.path)}|{self.size}|{self.mtime_ns}"

    def to_event(self) -> dict[str, Any]:
        """JSON-safe form for trigger events and XComs.

        Airflow sends events as UTF-8 JSON and fails on surrogate escapes, so ``path`` is the
        readable :func:`path_text`; when that differs from the real name, ``path_b64`` carries the
        exact bytes and :meth:`from_event` restores the real path from it.
        """
        data: dict[str, Any] = {"path": path_text(self.path), "size": self.size, "mtime_ns": self.mtime_ns}
        if not _is_utf8_clean(self.path):
            data["path_b64"] = base64.b64encode(os.fsencode(self.path)).decode("ascii")
        return data

    @classmethod
    def from_event(cls, data: Mapping[str, Any]) -> FileSnapshot:
        """Inverse of :meth:`to_event`: a path that ``open`` accepts, whatever bytes the name holds."""
        encoded = data.get("path_b64")
        path = os.fsdecode(base64.b64decode(encoded)) if encoded else str(data["path"])
        return cls(path=path, size=int(data["size"]), mtime_ns=int(data["mtime_ns"]))


@dataclass(frozen=True, slots=True)
class ScanProblem:
    """An entry the scan could not judge (unreadable, not a regular file, a symlink not followed)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{path_text(self.path)}: {self.reason}"


@dataclass(slots=True)
class DirectoryScan:
    """Result of :func:`scan_directory`.

    ``skipped_in_progress`` counts hidden and in-progress names, so a caller can log that files
    are arriving even though none is a candidate yet.
    """

    files: dict[str, FileSnapshot] = field(default_factory=dict)
    problems: list[ScanProblem] = field(default_factory=list)
    skipped_in_progress: int = 0


def path_text(path: str) -> str:
    """The path as valid UTF-8 text: undecodable bytes shown as ``\\xNN`` (for logs, keys, events)."""
    if _is_utf8_clean(path):
        return path
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_utf8_clean(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_hidden_or_in_progress(name: str) -> bool:
    """Whether a base name is hidden or a temporary name of a file still being written.

    Applied before the pipeline patterns, so a broad pattern such as ``^.*\\.pcap$`` cannot let
    ``.x.pcap`` (an rsync temporary) or ``nfcapd.current.123`` through.
    """
    lowered = name.lower()
    return lowered.startswith(IN_PROGRESS_PREFIXES) or lowered.endswith(IN_PROGRESS_SUFFIXES)


class PatternMatcher:
    """``matches(file_name)``: some pattern fullmatches the base name (picklable, unlike a closure)."""

    __slots__ = ("_compiled",)

    def __init__(self, patterns: Iterable[str]) -> None:
        compiled: list[re.Pattern[str]] = []
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise ValueError(f"invalid pattern {pattern!r}: {exc}") from None
        self._compiled = tuple(compiled)

    def __call__(self, file_name: str) -> bool:
        base = os.path.basename(file_name)
        return any(p.fullmatch(base) for p in self._compiled)

    def __reduce__(self) -> tuple[type[PatternMatcher], tuple[list[str]]]:
        return (PatternMatcher, ([p.pattern for p in self._compiled],))


def compile_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A ``matches(file_name)`` for regex strings: some pattern fullmatches the base name.

    The same rule as ``PipelineConfig.matches``, for callers (the trigger) that only have the
    pattern strings. An invalid pattern raises ``ValueError`` naming it, before any scan.
    """
    return PatternMatcher(patterns)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _open_root(root: Path | str) -> tuple[str, str]:
    """Absolute and resolved forms of the collector directory, or :class:`CollectorPathError`."""
    root_abs = os.path.abspath(os.fspath(root))
    root_real = os.path.realpath(root_abs)
    shown = path_text(root_abs)
    if not os.path.exists(root_real):
        raise CollectorPathError(f"collector directory {shown} does not exist")
    if not os.path.isdir(root_real):
        raise CollectorPathError(f"collector directory {shown} is not a directory")
    if not os.access(root_real, os.R_OK | os.X_OK):
        raise CollectorPathError(f"collector directory {shown} is not readable by this user")
    return root_abs, root_real


def scan_directory(root: Path | str, *, recursive: bool, matches: Callable[[str], bool]) -> DirectoryScan:
    """List the candidate files under ``root``: regular, matching, not hidden or in progress.

    * ``matches`` gets the base name (``PipelineConfig.matches`` or :func:`compile_matcher`).
    * Hidden and in-progress names are skipped before ``matches`` (see the module docstring),
      and dot-directories are not entered.
    * Symbolic links are never followed, neither to files nor to directories: a link out of
      ``root`` would ingest files outside the configured root, and a link inside it would list
      the same file twice (ingested twice) or loop. Each directory is also resolved and checked
      to lie inside the resolved root before it is read. Links that look like candidates are
      reported as problems so an operator can see why they are ignored.
    * Entries that cannot be read are reported in ``problems``; they never abort the scan. A file
      that vanishes between listing and ``stat`` (renamed away) is silently left out.

    Raises :class:`CollectorPathError` when ``root`` itself is missing, not a directory or unreadable.
    """
    root_abs, root_real = _open_root(root)
    result = DirectoryScan()
    pending = [root_abs]
    while pending:
        directory = pending.pop()
        if directory != root_abs:
            real = os.path.realpath(directory)
            if not _inside(real, root_real):
                result.problems.append(ScanProblem(directory, "resolves outside the collector directory"))
                continue
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except FileNotFoundError:
            if directory == root_abs:
                raise CollectorPathError(
                    f"collector directory {path_text(root_abs)} disappeared during the scan"
                ) from None
            continue
        except OSError as exc:
            if directory == root_abs:
                raise CollectorPathError(
                    f"cannot list collector directory {path_text(root_abs)}: {exc.strerror or exc}"
                ) from None
            result.problems.append(ScanProblem(directory, f"cannot list directory: {exc.strerror or exc}"))
            continue
        for entry in listed:
            try:
                _visit(entry, recursive=recursive, matches=matches, pending=pending, result=result)
            except OSError as exc:
                result.problems.append(ScanProblem(entry.path, f"cannot inspect: {exc.strerror or exc}"))
    result.files = dict(sorted(result.files.items()))
    return result


def _visit(
    entry: os.DirEntry[str],
    *,
    recursive: bool,
    matches: Callable[[str], bool],
    pending: list[str],
    result: DirectoryScan,
) -> None:
    """Sort one directory entry into candidates, sub-directories to scan, skips and problems."""
    name = entry.name
    if is_hidden_or_in_progress(name):
        result.skipped_in_progress += 1
        return
    if entry.is_symlink():
        if matches(name) or (recursive and entry.is_dir()):
            result.problems.append(ScanProblem(entry.path, "symbolic link not followed"))
        return
    if entry.is_dir(follow_symlinks=False):
        if recursive:
            pending.append(entry.path)
        return
    if not matches(name):
        return
    if not entry.is_file(follow_symlinks=False):
        result.problems.append(ScanProblem(entry.path, "not a regular file"))
        return
    try:
        stat = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return
    if not os.access(entry.path, os.R_OK):
        result.problems.append(ScanProblem(entry.path, "not readable by this user"))
        return
    result.files[entry.path] = FileSnapshot(entry.path, stat.st_size, stat.st_mtime_ns)


def snapshot_directory(
    root: Path, *, recursive: bool, matches: Callable[[str], bool]
) -> dict[str, FileSnapshot]:
    """Candidate files under ``root`` keyed by path (see :func:`scan_directory`); problems are logged."""
    scan = scan_directory(root, recursive=recursive, matches=matches)
    for problem in scan.problems:
        log.warning("skipped %s", problem)
    return scan.files


def ready_files(
    previous: Mapping[str, FileSnapshot],
    current: Mapping[str, FileSnapshot],
    *,
    stable_seconds: float,
    now_ns: int,
) -> list[FileSnapshot]:
    """Files that are complete: unchanged between two snapshots and ``stable_seconds`` old.

    Both conditions are needed. Size and mtime must be equal in ``previous`` and ``current``
    because a copy grows under its final name. The mtime must be at least ``stable_seconds``
    before ``now_ns`` because a writer can pause between pieces longer than the gap between two
    scans, and because a file just renamed into place (nfcapd's rotation) keeps the mtime of its
    last write: a young mtime means "may still be touched". A file seen only once waits for the
    next scan. A file whose mtime lies in the future (clock skew) waits until it is old enough.

    Sorted by mtime, then path: oldest data first, and the same order on every run.
    """
    if stable_seconds < 0:
        raise ValueError(f"stable_seconds must be >= 0, got {stable_seconds}")
    stable_ns = round(stable_seconds * 1_000_000_000)
    ready = [
        snapshot
        for path, snapshot in current.items()
        if previous.get(path) == snapshot and now_ns - snapshot.mtime_ns >= stable_ns
    ]
    ready.sort(key=lambda s: (s.mtime_ns, s.path))
    return ready
