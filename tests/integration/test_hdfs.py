"""HDFS through the Airflow WebHDFS hook and the ``spot_webhdfs`` connection, on the real NameNode.

The collect DAG stores each original in HDFS and deletes the local file only once the copy is
verified (size and checksum) without trusting the upload. These tests upload with ``load_file``, list,
read back byte for byte, and check that the checksum WebHDFS reports equals
``spot_operators.hdfs_checksum`` computed from the local file, for an empty, a small and a
multi-block file; and that a different local file does not match.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

from spot_operators.hdfs_checksum import DEFAULT_BLOCK_SIZE, HdfsChecksum, hdfs_md5_crc32c_checksum

WEBHDFS_CONN_ID = "spot_webhdfs"
MiB = 1 << 20


@pytest.fixture
def hook() -> WebHDFSHook:
    return WebHDFSHook(webhdfs_conn_id=WEBHDFS_CONN_ID)


@pytest.fixture
def hdfs_dir(hook: WebHDFSHook, unique_name: str) -> Iterator[str]:
    """A new folder under /tmp in HDFS, removed (and checked gone) afterwards."""
    client = hook.get_conn()
    folder = f"/tmp/{unique_name}"
    assert client.status(folder, strict=False) is None, f"{folder} already exists"
    client.makedirs(folder)
    yield folder
    assert client.delete(folder, recursive=True), f"{folder} was not deleted"
    assert client.status(folder, strict=False) is None


@pytest.mark.parametrize(
    ("size", "block_size"),
    [
        pytest.param(0, None, id="empty"),
        pytest.param(70_003, None, id="small-default-blocksize"),
        pytest.param(3 * MiB + MiB // 2 + 123, MiB, id="multi-block-1MiB-blocks"),
    ],
)
def test_upload_list_read_back_and_checksum(
    hook: WebHDFSHook, hdfs_dir: str, tmp_path: Path, size: int, block_size: int | None
) -> None:
    data = os.urandom(size)
    local = tmp_path / "original.bin"
    local.write_bytes(data)
    remote = f"{hdfs_dir}/original.bin"
    # load_file forwards extra kwargs to hdfs.Client.upload, which forwards them to write().
    upload_kwargs: dict[str, Any] = {"blocksize": block_size} if block_size else {}

    hook.load_file(str(local), remote, overwrite=False, **upload_kwargs)

    assert hook.check_for_path(remote)
    client = hook.get_conn()
    listing = dict(client.list(hdfs_dir, status=True))
    assert list(listing) == ["original.bin"]
    status = listing["original.bin"]
    assert status["type"] == "FILE"
    assert status["length"] == size
    assert status["blockSize"] == (block_size or DEFAULT_BLOCK_SIZE)

    assert hook.read_file(remote) == data

    reported = client.checksum(remote)
    expected = hdfs_md5_crc32c_checksum(local, block_size=status["blockSize"])
    assert expected.matches(reported), (expected.to_webhdfs(), reported)
    parsed = HdfsChecksum.from_webhdfs(reported)
    if size == 0:
        assert parsed.algorithm == "MD5-of-0MD5-of-0CRC32"
    elif block_size and size > block_size:
        assert parsed.crc_per_block == block_size // 512, "expected a multi-block checksum"
        # The block size the file was written with is part of the checksum.
        assert not hdfs_md5_crc32c_checksum(local).matches(reported)
    else:
        assert parsed.crc_per_block == 0

    # Negative control: a local file that differs in one byte (or one byte longer) must not match.
    tampered = bytearray(data or b"\0")
    tampered[-1] ^= 0x01
    assert not hdfs_md5_crc32c_checksum(bytes(tampered), block_size=status["blockSize"]).matches(reported)
    assert not hdfs_md5_crc32c_checksum(data + b"\0", block_size=status["blockSize"]).matches(reported)
