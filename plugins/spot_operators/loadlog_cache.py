"""A local cache of parsed load log files, so that reconciling does not re-read every batch ever loaded.

Why: the listeners write one load log file per micro-batch (``<hdfs_app_path>/<type>/loadlog/<listener>/
batch-<id>.jsonl``) and the load DAG's reconcile needs the whole log of the table (a file loaded twice
shows up across batches). Reading every file over WebHDFS on every run costs one HTTP round trip per
batch ever loaded; the cache keeps the parsed entries so a run only reads files that are new or changed.

Why it cannot serve stale data: a replayed batch rewrites its file in place (same name, new content), so
an entry is keyed by the file's HDFS path *and* its status as listed (``modificationTime`` and ``length``
from WebHDFS LISTSTATUS, one call per folder). An entry is used only when the listing shows exactly the
status recorded when it was read; the status recorded is the one listed *before* the read, so a file
rewritten meanwhile differs from it on the next run and is read again.

Why it can only cost speed: a missing, unreadable, corrupt or differently shaped cache file is ignored
(a warning, then everything is read), and a cache that cannot be written is a warning too. Writes go to a
temporary file in the same folder and are renamed over the cache (atomic on POSIX), so concurrent load
runs of one type each leave a whole, consistent cache (the last one wins) and readers never see half a
file.

Where: ``<local_staging of the type's first pipeline>/loadlog_cache_<type>.jsonl``
(:func:`load_log_cache_path`), next to the collect ledgers the reconcile task already reads there.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spot_operators.config import IngestConfig
from spot_operators.reconcile import LoadLogEntry

log = logging.getLogger(__name__)

CACHE_FORMAT = "spot-loadlog-cache"
CACHE_VERSION = 1

#: The entry fields in the order they are stored; a cache written with other fields is ignored, so a
#: change of :class:`LoadLogEntry` invalidates old caches without anyone bumping a version.
_FIELDS = [f.name for f in dataclasses.fields(LoadLogEntry)]
#: Each field's annotation (a string: the module uses ``from __future__ import annotations``), which
#: decides how a stored value is checked; see :func:`_valid`.
_KINDS = {f.name: str(f.type) for f in dataclasses.fields(LoadLogEntry)}


def load_log_cache_path(config: IngestConfig, data_type: str) -> Path | None:
    """``<local_staging>/loadlog_cache_<type>.jsonl`` of the type's first pipeline (config order).

    The reconcile task already reads the type's collect ledgers from the pipelines' ``local_staging``,
    so a worker that reconciles can reach (and normally write) that folder. ``None`` when the config
    has no pipeline of the type (no cache then).
    """
    pipelines = list(config.pipelines_of_type(data_type).values())
    if not pipelines:
        return None
    return Path(pipelines[0].local_staging) / f"loadlog_cache_{data_type}.jsonl"


@dataclass(frozen=True)
class CachedFile:
    """The parsed entries of one load log file, with the HDFS status it had when listed before reading."""

    modification_time: int
    length: int
    entries: tuple[LoadLogEntry, ...]

    def matches(self, modification_time: int, length: int) -> bool:
        """Whether the file still has the status these entries were read at."""
        return self.modification_time == modification_time and self.length == length


class LoadLogCache:
    """Parsed load log entries per (HDFS path, modificationTime, length), in one local JSON-lines file.

    The first line is a header (format, version, entry fields); each further line is one HDFS file:
    ``{"path", "modificationTime", "length", "entries": [[field values in _FIELDS order], ...]}``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, CachedFile]:
        """Path -> cached file; empty when there is no cache yet, or (with a warning) when it is unusable."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            log.info("load log cache %s does not exist yet: reading every load log file", self.path)
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("load log cache %s unreadable (%s): reading every load log file", self.path, exc)
            return {}
        try:
            return _decode(text)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            log.warning("load log cache %s ignored (%s): reading every load log file", self.path, exc)
            return {}

    def save(self, files: Mapping[str, CachedFile]) -> bool:
        """Replace the cache atomically with ``files``; False (with a warning) when it cannot be written."""
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(_encode(files))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            tmp = None
            return True
        except OSError as exc:
            log.warning("load log cache %s not written (%s): the next run reads more files", self.path, exc)
            return False
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def _header() -> dict[str, Any]:
    return {"format": CACHE_FORMAT, "version": CACHE_VERSION, "fields": _FIELDS}


def _encode(files: Mapping[str, CachedFile]) -> str:
    lines = [json.dumps(_header())]
    for path in sorted(files):
        cached = files[path]
        rows = [
            [list(v) if isinstance(v, tuple) else v for v in dataclasses.astuple(e)] for e in cached.entries
        ]
        lines.append(
            json.dumps(
                {
                    "path": path,
                    "modificationTime": cached.modification_time,
                    "length": cached.length,
                    "entries": rows,
                },
                separators=(",", ":"),
            )
        )
    return "\n".join(lines) + "\n"


def _decode(text: str) -> dict[str, CachedFile]:
    lines = text.splitlines()
    if not lines:
        raise ValueError("empty file")
    if json.loads(lines[0]) != _header():
        raise ValueError("written by another version or with other entry fields")
    files: dict[str, CachedFile] = {}
    for number, line in enumerate(lines[1:], 2):
        item = json.loads(line)
        path, mtime, length = item["path"], item["modificationTime"], item["length"]
        if not isinstance(path, str) or not _is_int(mtime) or not _is_int(length):
            raise ValueError(f"line {number}: bad path or status")
        entries = tuple(_decode_entry(row, number) for row in item["entries"])
        files[path] = CachedFile(mtime, length, entries)
    return files


def _decode_entry(row: Any, number: int) -> LoadLogEntry:
    if not isinstance(row, list) or len(row) != len(_FIELDS):
        raise ValueError(f"line {number}: an entry has the wrong shape")
    values = dict(zip(_FIELDS, row, strict=True))
    for name, value in values.items():
        if not _valid(_KINDS[name], value):
            raise ValueError(f"line {number}: bad {name} {value!r}")
    if values["hour"] is not None:
        values["hour"] = tuple(values["hour"])
    return LoadLogEntry(**values)


def _valid(kind: str, value: Any) -> bool:
    """Whether a stored value fits the field annotation ``kind`` (an unknown kind never fits)."""
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return _is_int(value)
    if kind == "Hour | None":
        return value is None or (
            isinstance(value, list) and len(value) == 4 and all(isinstance(v, str) for v in value)
        )
    return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
