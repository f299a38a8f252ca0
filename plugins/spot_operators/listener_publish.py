"""The listener's idempotent publish: a batch's staged files -> deterministic names in the table's folders.

Spark runs a batch again, with the same ``batch_id`` and offsets, when the listener died before it
committed the batch; so the effect of publishing batch ``id`` must be the same however many attempts
ran and wherever they stopped. :func:`publish_batch` gets there with HDFS's atomic file rename:

1. the target folders are recorded in a new ``<location>/_staging/<tag>/manifests/b<id>.<attempt>.txt``
   with those of every earlier attempt's manifest (the union; a manifest is never overwritten, so an
   attempt that dies writing its own loses nothing an earlier one recorded), and older batches'
   manifests are deleted (Spark commits batch N-1 before it starts batch N: they can no longer be
   replayed);
2. in each of those folders every ``part-<tag>-b<id>-*`` file (what an earlier attempt moved) is
   deleted, at the same time as the manifest is written;
3. once the staged files are closed, the manifest durable and the folders cleared, each staged file is
   renamed to ``part-<tag>-b<id>-<n>.parquet`` in its folder; then the staging folder is deleted.

A replay therefore removes whatever a crashed attempt moved, even into folders the replay does not
write, before it moves its own files: every row ends up in place once. ``<tag>`` tells listeners
(one per checkpoint) sharing a location apart, so none deletes another's files.

The file system is anything with :class:`FileSystem`'s calls: the listener's Hadoop client through
the JVM gateway, or an in-memory one in the unit tests, which crash an attempt at every call.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Protocol

PARQUET_SUFFIX = ".parquet"
MANIFEST_SUFFIX = ".txt"
AFTER_STAGING = "after-staging"
"""Point of :func:`publish_batch`: staged files closed, manifest durable, folders cleared; nothing moved."""
AFTER_MOVE = "after-move"
"""Point of :func:`publish_batch`: the first file moved, the others not yet."""
PUBLISH_POINTS = (AFTER_STAGING, AFTER_MOVE)


class FileSystem(Protocol):
    """The file system calls the publish makes (paths as strings; Hadoop's semantics)."""

    def qualified(self, path: str) -> str: ...

    def read_text(self, path: str) -> str: ...

    def write_text(self, path: str, content: str) -> None:
        """Write (replace) a small file durably (``hsync``) before returning."""
        ...

    def children(self, folder: str) -> list[str]:
        """Qualified paths of the folder's entries (empty if it does not exist)."""
        ...

    def files(self, folder: str) -> list[str]:
        """Qualified paths of all files under ``folder``, recursively (empty if it does not exist)."""
        ...

    def glob(self, pattern: str) -> list[str]: ...

    def delete(self, path: str, recursive: bool = False) -> None: ...

    def mkdirs(self, path: str) -> None: ...

    def rename(self, source: str, target: str) -> None:
        """Atomic rename of one file; raises ``OSError`` when the file system refuses it."""
        ...


def glob_escaped(path: str) -> str:
    """``path`` as a Hadoop glob pattern that matches just itself (its metacharacters escaped)."""
    return re.sub(r"([\\{}\[\]*?])", r"\\\1", path)


def staging_folder(location: str, tag: str, batch_id: int) -> str:
    """Where batch ``batch_id`` of listener ``tag`` stages its files under ``location`` (hidden: ``_``)."""
    return f"{location}/_staging/{tag}/batch={batch_id}"


def part_prefix(tag: str, batch_id: int) -> str:
    """The name prefix of every file batch ``batch_id`` of listener ``tag`` publishes."""
    return f"part-{tag}-b{batch_id}-"


def staged_by_folder(fs: FileSystem, staging: str) -> dict[str, list[str]]:
    """The Parquet files under ``staging/<pass>/<target folder>/``, by target folder (``.``: the root).

    For a staging tree written by Spark (the quarantine rows); the typing passes' own files are known
    to the listener without a listing (a NameNode call per folder).
    """
    staging_q = fs.qualified(staging)
    staged: dict[str, list[str]] = {}
    for file in sorted(fs.files(staging_q)):
        name = file.rsplit("/", 1)[1]
        if not name.endswith(PARQUET_SUFFIX) or name.startswith(("_", ".")):
            continue
        # <staging>/<pass>/<y=../m=../...>/<name>: the folder below the pass is the target folder
        relative = file[len(staging_q) + 1 : -len(name)].rstrip("/").partition("/")[2] or "."
        staged.setdefault(relative, []).append(file)
    return staged


def _is_manifest_of(path: str, batch_id: int) -> bool:
    """``b<id>.<attempt>.txt`` (or ``b<id>.txt``, one attempt's manifest before they had names)."""
    name = path.rsplit("/", 1)[1]
    return name.startswith(f"b{batch_id}.") and name.endswith(MANIFEST_SUFFIX)


def publish_batch(
    fs: FileSystem,
    pool: Executor,
    location: str,
    tag: str,
    batch_id: int,
    staging: str,
    staged: dict[str, list[str]] | None = None,
    wait_staged: Callable[[], None] = lambda: None,
    at: Callable[[str], None] = lambda point: None,
) -> list[str]:
    """Move batch ``batch_id``'s files staged under ``staging`` to their deterministic names (module doc).

    ``staged``: the staged files per target folder (relative to ``location``), in numbering order, when
    the caller wrote them; else they are listed (:func:`staged_by_folder`). ``pool`` runs the calls a
    few at a time (each is a NameNode round trip); ``wait_staged`` returns once every staged file is
    closed (raising a failed write's error); ``at`` is called at each of ``PUBLISH_POINTS``: the
    listener's timing and its test hook. Returns the target folders written, relative to ``location``.
    """
    root = f"{location}/_staging/{tag}"
    if staged is None:
        staged = staged_by_folder(fs, staging)

    # One manifest per attempt, never overwritten: an attempt that dies while writing its own leaves
    # the earlier attempts' intact (and it moved nothing: moves wait for the manifest).
    manifests = f"{root}/manifests"
    listed = fs.children(manifests)
    earlier = [m for m in listed if _is_manifest_of(m, batch_id)]
    folders = set(staged)
    for manifest in earlier:
        folders |= {line for line in fs.read_text(manifest).splitlines() if line.strip()}
    manifest = f"{manifests}/b{batch_id}.{uuid.uuid4().hex[:12]}{MANIFEST_SUFFIX}"

    def record_manifest() -> None:
        for old in listed:
            if old not in earlier:
                fs.delete(old)
        fs.write_text(manifest, "\n".join(sorted(folders)) + "\n")

    prefix = part_prefix(tag, batch_id)

    def target_of(folder: str) -> str:
        return location if folder == "." else f"{location}/{folder}"

    def clear(folder: str) -> None:
        for existing in fs.glob(f"{glob_escaped(target_of(folder))}/{prefix}*"):
            fs.delete(existing)
        if folder in staged:
            fs.mkdirs(target_of(folder))

    def move(folder: str, n: int) -> None:
        fs.rename(staged[folder][n], f"{target_of(folder)}/{prefix}{n:05d}{PARQUET_SUFFIX}")

    # Folders are independent: clear them all (while the manifest and the staged files are written: a
    # deletion is safe before the manifest, a move is not), then move into them. Every staged file is
    # closed, every deletion done and the manifest durable before the first move.
    recorded = pool.submit(record_manifest)
    cleared = [pool.submit(clear, folder) for folder in sorted(folders)]
    wait_staged()
    for future in (*cleared, recorded):
        future.result()
    at(AFTER_STAGING)
    ordered = sorted(staged)
    if ordered:
        # One file first (the test hook's crash point), then every other file at once.
        move(ordered[0], 0)
        at(AFTER_MOVE)
        rest = [(folder, n) for folder in ordered for n in range(len(staged[folder]))][1:]
        list(pool.map(lambda item: move(*item), rest))
    fs.delete(fs.qualified(staging), recursive=True)
    return ordered
