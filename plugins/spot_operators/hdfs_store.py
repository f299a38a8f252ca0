"""Verified copies into HDFS: a local file counts as stored only when HDFS holds the same bytes.

Spot deleted originals after failed uploads. Here an upload goes to a temporary name, is checked
(length and HDFS's own MD5-of-CRC32C checksum, computed locally for comparison), and only then renamed
into place. A retry finds an identical copy and does nothing; a different file already holding the
name is never overwritten.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from spot_operators.hdfs_checksum import hdfs_md5_crc32c_checksum

log = logging.getLogger(__name__)


class HdfsClient(Protocol):
    """The part of ``hdfs.InsecureClient`` (WebHDFSHook.get_conn()) that is used here."""

    def status(self, hdfs_path: str, strict: bool = True) -> dict[str, Any] | None: ...
    def checksum(self, hdfs_path: str) -> dict[str, Any]: ...
    def write(self, hdfs_path: str, data: Any = None, overwrite: bool = False, **kwargs: Any) -> Any: ...
    def rename(self, hdfs_src_path: str, hdfs_dst_path: str) -> None: ...
    def delete(self, hdfs_path: str, recursive: bool = False) -> bool: ...
    def makedirs(self, hdfs_path: str, permission: str | None = None) -> None: ...


class HdfsVerificationError(RuntimeError):
    """HDFS does not hold the bytes we sent (or holds other bytes under the target name)."""


@dataclass(frozen=True)
class StoredCopy:
    """Where a file now lives in HDFS, and the evidence that it is the same file."""

    hdfs_path: str
    bytes: int
    checksum: str
    uploaded: bool  # False when an identical copy was already there (a retry)


def _compare(client: HdfsClient, hdfs_path: str, local: Path, size: int) -> tuple[bool | None, str]:
    """(None if ``hdfs_path`` is absent, else whether it holds exactly the bytes of ``local``; the
    checksum HDFS reported as ``algorithm:bytes``, or "" when none was asked for)."""
    status = client.status(hdfs_path, strict=False)
    if status is None:
        return None, ""
    if status.get("type") != "FILE" or int(status.get("length", -1)) != size:
        return False, ""
    expected = hdfs_md5_crc32c_checksum(local, block_size=int(status["blockSize"]))
    reported = client.checksum(hdfs_path)
    body = reported.get("FileChecksum", reported)
    return expected.matches(reported), f"{body['algorithm']}:{body['bytes']}"


def store_verified(client: HdfsClient, local: Path, hdfs_path: str) -> StoredCopy:
    """Copy ``local`` to ``hdfs_path`` and prove the copy; raise HdfsVerificationError otherwise.

    An existing file at ``hdfs_path`` with the same bytes is accepted as is (idempotent retries);
    one with other bytes raises, because overwriting would lose an earlier original. The content is
    proven once, under the temporary name; the rename is an atomic metadata operation, so after it
    only the name and length are checked (no second read of a possibly large local file).
    """
    size = local.stat().st_size
    existing, checksum = _compare(client, hdfs_path, local, size)
    if existing is True:
        log.info("HDFS already holds an identical %s (%d bytes); not uploading again", hdfs_path, size)
        return StoredCopy(hdfs_path, size, checksum, uploaded=False)
    if existing is False:
        raise HdfsVerificationError(
            f"{hdfs_path} already exists in HDFS with different content than {local}; not overwriting it"
        )
    parent = str(PurePosixPath(hdfs_path).parent)
    client.makedirs(parent)
    temporary = f"{parent}/.{PurePosixPath(hdfs_path).name}.{uuid.uuid4().hex[:12]}.uploading"
    try:
        with local.open("rb") as source:
            client.write(temporary, data=source, overwrite=False)
        verified, checksum = _compare(client, temporary, local, size)
        if not verified:
            raise HdfsVerificationError(
                f"the HDFS copy of {local} at {temporary} differs from the local file (length or checksum)"
            )
        client.rename(temporary, hdfs_path)
    except BaseException:
        _delete_quietly(client, temporary)
        raise
    status = client.status(hdfs_path, strict=False)
    if status is None or int(status.get("length", -1)) != size:
        raise HdfsVerificationError(f"{hdfs_path} does not match {local} after the rename")
    log.info("stored %s in HDFS at %s (%d bytes, checksum %s)", local, hdfs_path, size, checksum)
    return StoredCopy(hdfs_path, size, checksum, uploaded=True)


def _delete_quietly(client: HdfsClient, hdfs_path: str) -> None:
    try:
        client.delete(hdfs_path)
    except Exception:  # the original error matters more than the clean-up's
        log.warning("could not remove the partial upload %s", hdfs_path, exc_info=True)
