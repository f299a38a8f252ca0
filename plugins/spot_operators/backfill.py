"""Backfill logic without Airflow: which files a ``source`` names, which rows a time window keeps,
and the keys that make a repeated backfill a no-op.

Why so strict about paths: ``source`` comes from a DAG param that anyone allowed to trigger the DAG
types in a form. It may only name staged data of the chosen pipeline (its ``local_staging``, which
holds ``failed/``, and ``<hdfs_app_path>/<type>/stage`` in HDFS); ``..`` and symlinks that lead out of
those roots are refused before anything is read.

Idempotency: every selected file is one ledger entry (the collect :class:`FileLedger` model, in a
ledger file of its own) keyed by the file's sha256, the target and the time window. A file already
``done`` for the same target and window is skipped; the messages of a Kafka backfill carry a file
digest computed from the rows sent, so a repeat that slipped through anyway is recognised downstream
(the listener drops it within a batch, the load reconcile reports it across batches).
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import hashlib
import io
import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

from spot_operators.config import IngestConfig, PipelineConfig
from spot_operators.envelope import csv_text
from spot_operators.layout import hdfs_type_root
from spot_operators.ledger import FileVersion
from spot_operators.rows import HourPartition
from spot_operators.segments import csv_record_size

Target = Literal["kafka", "hive"]
ItemKind = Literal["csv", "segments"]

#: The backfill ledger of a pipeline (same schema as the collect ledger, separate file).
BACKFILL_LEDGER = "backfill_ledger.sqlite3"
_SEGMENT_RE = re.compile(r"segment-[0-9]{5}\.avro")
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})")


class BackfillSourceError(ValueError):
    """The ``source`` param names something outside the staging roots, or nothing at all."""


class HdfsLister(Protocol):
    """The part of the WebHDFS client that resolving an HDFS source needs."""

    def status(self, hdfs_path: str, strict: bool = True) -> dict[str, Any] | None: ...
    def list(self, hdfs_path: str, status: bool = False) -> Any: ...


@dataclass(frozen=True)
class Roots:
    """Where a backfill of one pipeline may read: local staging and the type's HDFS stage folder."""

    local: Path
    hdfs: PurePosixPath

    def describe(self) -> str:
        return f"local {self.local} (incl. {self.local / 'failed'}) and HDFS {self.hdfs}"


def roots_of(config: IngestConfig, pipeline: PipelineConfig) -> Roots:
    """The allowed roots of ``pipeline``."""
    return Roots(
        Path(os.path.abspath(pipeline.local_staging)), hdfs_type_root(config, pipeline.type) / "stage"
    )


@dataclass(frozen=True)
class SourceItem:
    """One unit of a backfill: a staged CSV file, or the failed-segment folder of one file."""

    kind: ItemKind
    location: Literal["local", "hdfs"]
    path: str  # local path or HDFS path; for segments the folder
    size: int

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/"))


def _refuse(source: str, roots: Roots, reason: str) -> BackfillSourceError:
    return BackfillSourceError(f"source {source!r} refused: {reason}; allowed roots: {roots.describe()}")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def is_hdfs_source(source: str, roots: Roots) -> bool:
    """``hdfs://...`` or a path under the HDFS stage root; everything else is local."""
    if source.startswith("hdfs:"):
        return True
    return _inside(posixpath.normpath(source), str(roots.hdfs))


def _hdfs_path(source: str) -> str:
    """``hdfs://host:port/x`` or ``hdfs:///x`` -> ``/x``."""
    if source.startswith("hdfs://"):
        rest = source[len("hdfs://") :]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if source.startswith("hdfs:"):
        return source[len("hdfs:") :]
    return source


def _check_text(source: str, roots: Roots) -> None:
    if not source or not source.strip():
        raise _refuse(source, roots, "empty")
    if "\x00" in source:
        raise _refuse(source, roots, "contains a NUL byte")
    if ".." in PurePosixPath(_hdfs_path(source)).parts:
        raise _refuse(source, roots, "'..' is not allowed in a source")


def _segment_folder_item(folder: Path) -> SourceItem:
    size = sum(p.stat().st_size for p in folder.glob("segment-*.avro"))
    return SourceItem("segments", "local", str(folder), size)


def resolve_local_source(source: str, roots: Roots) -> list[SourceItem]:
    """Files a local ``source`` (file, folder or glob) names, each checked to stay in the root.

    Symlinks are followed and then judged by where they lead. In folders, ``*.csv`` files are staged
    CSV and folders holding ``segment-NNNNN.avro`` are failed segments; everything else (ledgers,
    quarantine, work files) is ignored.
    """
    _check_text(source, roots)
    if not os.path.isabs(source):
        raise _refuse(source, roots, "must be an absolute path")
    root = os.path.realpath(roots.local)
    if not _inside(os.path.normpath(source), str(roots.local)) and not _inside(
        os.path.realpath(source), root
    ):
        raise _refuse(source, roots, "not under a staging root")
    matches = sorted(glob.glob(source)) if glob.has_magic(source) else [source]
    if not matches or not any(os.path.lexists(m) for m in matches):
        raise _refuse(source, roots, "nothing there")
    items: dict[str, SourceItem] = {}
    for match in matches:
        real = os.path.realpath(match)
        if not _inside(real, root):
            raise _refuse(source, roots, f"{match} leads to {real}, outside the staging root")
        for item in _local_items(Path(real), root, source, roots):
            items.setdefault(item.path, item)
    return sorted(items.values(), key=lambda i: i.path)


def _local_items(path: Path, root: str, source: str, roots: Roots) -> Iterator[SourceItem]:
    if path.is_file():
        if _SEGMENT_RE.fullmatch(path.name):
            yield _segment_folder_item(path.parent)
        elif path.suffix == ".csv":
            yield SourceItem("csv", "local", str(path), path.stat().st_size)
        else:
            raise _refuse(source, roots, f"{path} is neither a staged CSV (*.csv) nor a failed segment")
        return
    if not path.is_dir():
        return
    for current, dirs, files in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        folder = Path(current)
        if any(_SEGMENT_RE.fullmatch(f) for f in files):
            yield _segment_folder_item(folder)
            continue
        for name in sorted(files):
            file = folder / name
            if name.endswith(".csv") and not name.startswith("."):
                real = os.path.realpath(file)
                if not _inside(real, root):
                    raise _refuse(source, roots, f"{file} leads to {real}, outside the staging root")
                yield SourceItem("csv", "local", real, os.stat(real).st_size)


def resolve_hdfs_source(source: str, roots: Roots, client: HdfsLister) -> list[SourceItem]:
    """CSV files an HDFS ``source`` (file, folder or glob in the last components) names, under the
    type's stage folder only."""
    _check_text(source, roots)
    path = posixpath.normpath(_hdfs_path(source))
    if not _inside(path, str(roots.hdfs)):
        raise _refuse(source, roots, "not under the HDFS stage root")
    relative = PurePosixPath(path).relative_to(roots.hdfs).parts
    candidates = [str(roots.hdfs)]
    for part in relative:
        step: list[str] = []
        for base in candidates:
            if glob.has_magic(part):
                status = client.status(base, strict=False)
                if status is None or status.get("type") != "DIRECTORY":
                    continue
                step += [f"{base}/{n}" for n in sorted(client.list(base)) if fnmatch.fnmatchcase(n, part)]
            else:
                step.append(f"{base}/{part}")
        candidates = step
    items: list[SourceItem] = []
    for candidate in candidates:
        items += _hdfs_items(candidate, client)
    if not items:
        raise _refuse(source, roots, "no staged CSV there")
    return sorted({i.path: i for i in items}.values(), key=lambda i: i.path)


def _hdfs_items(path: str, client: HdfsLister) -> list[SourceItem]:
    status = client.status(path, strict=False)
    if status is None:
        return []
    if status.get("type") == "FILE":
        name = posixpath.basename(path)
        if name.startswith((".", "_")):
            return []
        return [SourceItem("csv", "hdfs", path, int(status.get("length", 0)))]
    items: list[SourceItem] = []
    for name, child in sorted(client.list(path, status=True)):
        if name.startswith((".", "_")):
            continue
        full = f"{path}/{name}"
        if child.get("type") == "DIRECTORY":
            items += _hdfs_items(full, client)
        elif name.endswith(".csv"):
            items.append(SourceItem("csv", "hdfs", full, int(child.get("length", 0))))
    return items


# ---------------------------------------------------------------------------------------- time window


def parse_utc(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 param as an aware UTC datetime (naive means UTC); blank means not set."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an ISO 8601 time such as 2023-01-25T18:00:00Z") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def row_epoch(data_type: str, fields: Sequence[str]) -> int | None:
    """The row's own time as epoch seconds: ``unix_tstamp`` (flow, dns), ``p_date``+``p_time`` (proxy)."""
    try:
        if data_type == "proxy":
            date_m, time_m = _DATE_RE.fullmatch(fields[0]), _TIME_RE.fullmatch(fields[1])
            if not date_m or not time_m:
                return None
            y, mo, d = (int(v) for v in date_m.groups())
            h, mi, s = (int(v) for v in time_m.groups())
            return int(datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp())
        value = fields[1].strip()
        return int(value) if value.lstrip("-").isdigit() else None
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class TimeWindow:
    """``since`` (inclusive) to ``until`` (exclusive) on the row's time, UTC; None means open."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ValueError(f"since {self.since.isoformat()} must be before until {self.until.isoformat()}")

    @property
    def active(self) -> bool:
        return self.since is not None or self.until is not None

    def label(self) -> str:
        """A stable text of the window for keys and logs."""
        since = self.since.strftime("%Y%m%dT%H%M%SZ") if self.since else "-"
        until = self.until.strftime("%Y%m%dT%H%M%SZ") if self.until else "-"
        return f"{since}..{until}"

    def keeps(self, epoch: int) -> bool:
        if self.since is not None and epoch < self.since.timestamp():
            return False
        return not (self.until is not None and epoch >= self.until.timestamp())


@dataclass
class Selection:
    """The rows of one CSV the window keeps, as CSV text in the Hive column order, and the counts."""

    lines: list[str] = field(default_factory=list)
    partitions: list[HourPartition] = field(default_factory=list)
    epochs: list[int | None] = field(default_factory=list)
    records: list[int] = field(default_factory=list)  # the source record number of each line
    rows_in: int = 0
    filtered_out: int = 0
    untimed: list[int] = field(default_factory=list)  # record numbers without a usable time

    @property
    def rows(self) -> int:
        return len(self.lines)

    @property
    def text(self) -> str:
        return csv_text(self.lines)

    @property
    def bytes(self) -> int:
        return sum(map(csv_record_size, self.lines))

    def line_break_record(self) -> int | None:
        """The source record number of the first row with a line break in a (quoted) field, if any.

        Hive reads staged CSV as a text table, one record per physical line, so such a row cannot go
        to the Hive target; the Kafka target carries it (the listener reads RFC 4180 records).
        """
        return next(
            (n for n, line in zip(self.records, self.lines, strict=True) if "\n" in line or "\r" in line),
            None,
        )

    def digest(self) -> str:
        """sha256 of the rows sent: the same rows always give the same file digest downstream."""
        sha = hashlib.sha256()
        for line in self.lines:
            sha.update(line.encode("utf-8") + b"\n")
        return sha.hexdigest()


def select_rows(data_type: str, text: str, window: TimeWindow) -> Selection:
    """Keep the CSV records of ``text`` whose time lies in ``window``.

    Records are re-emitted exactly as csv writes them (quoted where needed). Without a window every
    record is kept, timed or not (the listener quarantines bad ones, nothing is lost here); with one,
    a record without a usable time cannot be placed and is left out, counted in ``untimed``.
    """
    from spot_operators.segments import csv_line

    selection = Selection()
    previous = HourPartition(1970, 1, 1, 0)
    for number, fields in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
        if not fields:
            continue
        selection.rows_in += 1
        epoch = row_epoch(data_type, fields)
        if window.active:
            if epoch is None:
                selection.untimed.append(number)
                continue
            if not window.keeps(epoch):
                selection.filtered_out += 1
                continue
        partition = HourPartition.of_epoch(epoch) if epoch is not None and epoch > 0 else previous
        previous = partition
        selection.lines.append(csv_line(fields))
        selection.partitions.append(partition)
        selection.epochs.append(epoch)
        selection.records.append(number)
    return selection


# ----------------------------------------------------------------------------------- idempotency keys


def backfill_version(
    pipeline: str, target: Target, window: TimeWindow, source_digest: str, size: int
) -> FileVersion:
    """The ledger identity of one backfilled file: its bytes, the target and the window.

    The path part is synthetic (``/<target>/<window>/<sha256>``) so that the same bytes reached
    through another path or glob are still recognised as done.
    """
    return FileVersion(pipeline, f"/{target}/{window.label()}/{source_digest}", size, 0, source_digest)


def run_key(versions: Iterable[FileVersion]) -> str:
    """A short key of a set of ledger entries: names the HDFS folder a Hive backfill stages into."""
    payload = json.dumps(sorted(v.path for v in versions)).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def hive_stage_folder(config: IngestConfig, data_type: str, key: str) -> str:
    """``<hdfs_app_path>/<type>/stage/_backfill/<key>``: unique per set of files (``_`` hides it from
    a load of the whole stage folder and from the backfill's own HDFS source listing)."""
    return str(hdfs_type_root(config, data_type) / "stage" / "_backfill" / key)


def kafka_stage_base(config: IngestConfig, data_type: str, name: str, digest: str) -> str:
    """Where a Kafka backfill stages rows too big to travel inline, without ``.csv`` (the pieces'
    names end there, see :func:`spot_operators.staged_csv.staged_piece_path`); deterministic, so a
    rerun reuses it."""
    return str(hdfs_type_root(config, data_type) / "stage" / "_backfill" / "kafka" / f"{name}.{digest[:16]}")
