"""Unit tests of ``spot_operators.hdfs_checksum``: the local HDFS file checksum must equal WebHDFS's.

Golden values: every ``GOLDEN`` row was produced against the real local stack (HDFS 3.4.1, one
DataNode, default ``dfs.bytes-per-checksum`` 512 and ``dfs.checksum.type`` CRC32C) by writing
``hashlib.shake_256(name.encode()).digest(size)`` with the ``hdfs`` client
(``InsecureClient("http://127.0.0.1:9870").write(path, data, blocksize=block_size)``; the
"1000_default_bs" row without ``blocksize``, i.e. the 128 MiB default) and copying verbatim the
``algorithm`` and ``bytes`` that ``client.checksum(path)`` (WebHDFS GETFILECHECKSUM) returned,
including Hadoop's four trailing zero bytes of padding. They are not computed by the code under test.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

from spot_operators.hdfs_checksum import (
    CHECKSUM_LENGTH,
    DEFAULT_BLOCK_SIZE,
    EMPTY_FILE_CHECKSUM,
    HdfsChecksum,
    hdfs_md5_crc32c_checksum,
)

MiB = 1 << 20

# (name = shake_256 seed, size in bytes, block size written with, algorithm, bytes) from real WebHDFS.
GOLDEN: list[tuple[str, int, int, str, str]] = [
    ("empty", 0, MiB, "MD5-of-0MD5-of-0CRC32",
     "00000000000000000000000070bc8f4b72a86921468bf8e8441dce5100000000"),
    ("one_byte", 1, MiB, "MD5-of-0MD5-of-512CRC32C",
     "000002000000000000000000b9d0621a8af03781a4a4aa6b01f0a85600000000"),
    ("511", 511, MiB, "MD5-of-0MD5-of-512CRC32C",
     "000002000000000000000000a8bd14da9d38d3034f992203d0cee58d00000000"),
    ("512", 512, MiB, "MD5-of-0MD5-of-512CRC32C",
     "000002000000000000000000643716591e793251638d60304c00f93100000000"),
    ("513", 513, MiB, "MD5-of-0MD5-of-512CRC32C",
     "000002000000000000000000eb1e68ea487b595df6ae6bac15f5124800000000"),
    ("1000_default_bs", 1000, DEFAULT_BLOCK_SIZE, "MD5-of-0MD5-of-512CRC32C",
     "00000200000000000000000052a4f15639550956af9086ef69b5413900000000"),
    # exactly one block: still a single-block file, crcPerBlock 0
    ("1MiB", MiB, MiB, "MD5-of-0MD5-of-512CRC32C",
     "00000200000000000000000012d026758e8ffb44382dac1383f8dceb00000000"),
    # one byte over the block boundary: two blocks, crcPerBlock = 1 MiB / 512
    ("1MiB+1", MiB + 1, MiB, "MD5-of-2048MD5-of-512CRC32C",
     "0000020000000000000008002fef6dbf77f871059d44ca8d32986b2800000000"),
    ("2MiB", 2 * MiB, MiB, "MD5-of-2048MD5-of-512CRC32C",
     "000002000000000000000800ca66ccfa646356dc01a72dcce4c3b81a00000000"),
    ("3MiB", 3 * MiB, MiB, "MD5-of-2048MD5-of-512CRC32C",
     "0000020000000000000008005fa23c12fc09cf70b68f2ed05783e74f00000000"),
    ("3.5MiB", 3 * MiB + MiB // 2, MiB, "MD5-of-2048MD5-of-512CRC32C",
     "000002000000000000000800a44b256fea9524a7f26072e8438df93300000000"),
    ("4MiB", 4 * MiB, MiB, "MD5-of-2048MD5-of-512CRC32C",
     "0000020000000000000008004ed301069c9af87acd6152e1453c750100000000"),
    ("5MiB+100", 5 * MiB + 100, MiB, "MD5-of-2048MD5-of-512CRC32C",
     "000002000000000000000800cfc955ec31a24b1a7fff0e7f5301730b00000000"),
    ("9MiB+1", 9 * MiB + 1, MiB, "MD5-of-2048MD5-of-512CRC32C",
     "000002000000000000000800b0611f170daee293fc9d4b7c94cdc00e00000000"),
    ("17MiB+3", 17 * MiB + 3, MiB, "MD5-of-2048MD5-of-512CRC32C",
     "000002000000000000000800fbe1ec9e894bc41e8b513f86f4a9ef9600000000"),
    ("33MiB", 33 * MiB, MiB, "MD5-of-2048MD5-of-512CRC32C",
     "0000020000000000000008001356e13070a92d94730a560f6c87d1d400000000"),
    ("2MiB_bs2MiB+7", 2 * MiB + 7, 2 * MiB, "MD5-of-4096MD5-of-512CRC32C",
     "0000020000000000000010001ee5137d37a25f3b9ade9965376e9c1000000000"),
]  # fmt: skip


def _data(name: str, size: int) -> bytes:
    return hashlib.shake_256(name.encode()).digest(size) if size else b""


def _reported(algorithm: str, hex_bytes: str) -> dict[str, Any]:
    """What ``hdfs.InsecureClient.checksum()`` returns (the inner WebHDFS FileChecksum object)."""
    return {"algorithm": algorithm, "bytes": hex_bytes, "length": CHECKSUM_LENGTH}


@pytest.mark.parametrize(
    ("name", "size", "block_size", "algorithm", "hex_bytes"), GOLDEN, ids=[g[0] for g in GOLDEN]
)
def test_matches_real_webhdfs(name: str, size: int, block_size: int, algorithm: str, hex_bytes: str) -> None:
    local = hdfs_md5_crc32c_checksum(_data(name, size), block_size=block_size)

    assert local.algorithm == algorithm
    assert local.bytes_hex == hex_bytes[: 2 * CHECKSUM_LENGTH]
    assert local.length == CHECKSUM_LENGTH
    assert local.matches(_reported(algorithm, hex_bytes))
    assert local.matches({"FileChecksum": _reported(algorithm, hex_bytes)})


def test_empty_file_is_hdfs_magic_value_whatever_the_block_size() -> None:
    for block_size in (512, MiB, DEFAULT_BLOCK_SIZE):
        assert hdfs_md5_crc32c_checksum(b"", block_size=block_size) == EMPTY_FILE_CHECKSUM
    assert EMPTY_FILE_CHECKSUM.algorithm == "MD5-of-0MD5-of-0CRC32"
    assert EMPTY_FILE_CHECKSUM.bytes_per_crc == 0
    assert EMPTY_FILE_CHECKSUM.crc_per_block == 0
    assert EMPTY_FILE_CHECKSUM.md5_hex == hashlib.md5(bytes(32)).hexdigest()


def test_single_block_file_does_not_depend_on_block_size() -> None:
    data = _data("1MiB", MiB)
    expected = hdfs_md5_crc32c_checksum(data, block_size=MiB)
    assert hdfs_md5_crc32c_checksum(data) == expected
    assert hdfs_md5_crc32c_checksum(data, block_size=2 * MiB) == expected
    assert expected.crc_per_block == 0


def test_multi_block_depends_on_block_size() -> None:
    data = _data("2MiB_bs2MiB+7", 2 * MiB + 7)
    two_mib = hdfs_md5_crc32c_checksum(data, block_size=2 * MiB)
    one_mib = hdfs_md5_crc32c_checksum(data, block_size=MiB)
    assert two_mib != one_mib
    assert (two_mib.crc_per_block, one_mib.crc_per_block) == (4096, 2048)
    assert two_mib.bytes_per_crc == one_mib.bytes_per_crc == 512


def test_block_boundary_and_one_byte_over_differ_in_block_count() -> None:
    data = _data("1MiB+1", MiB + 1)
    assert hdfs_md5_crc32c_checksum(data[:MiB], block_size=MiB).crc_per_block == 0
    assert hdfs_md5_crc32c_checksum(data, block_size=MiB).crc_per_block == 2048


def test_path_fileobj_and_bytes_give_the_same_result(tmp_path: Path) -> None:
    name, size, block_size, algorithm, hex_bytes = next(g for g in GOLDEN if g[0] == "3.5MiB")
    data = _data(name, size)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    reported = _reported(algorithm, hex_bytes)

    assert hdfs_md5_crc32c_checksum(path, block_size=block_size).matches(reported)
    assert hdfs_md5_crc32c_checksum(str(path), block_size=block_size).matches(reported)
    with path.open("rb") as fh:
        assert hdfs_md5_crc32c_checksum(fh, block_size=block_size).matches(reported)
        assert not fh.closed
    assert hdfs_md5_crc32c_checksum(bytearray(data), block_size=block_size).matches(reported)
    assert hdfs_md5_crc32c_checksum(memoryview(data), block_size=block_size).matches(reported)


class _TrickleReader(io.RawIOBase):
    """Returns at most ``step`` bytes per read (like a pipe or socket) and records read sizes."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step
        self.requested: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.requested.append(size)
        n = self._step if size < 0 else min(size, self._step)
        chunk = bytes(self._data[self._pos : self._pos + n])
        self._pos += len(chunk)
        return chunk


def test_short_reads_and_bounded_read_size() -> None:
    name, size, block_size, algorithm, hex_bytes = next(g for g in GOLDEN if g[0] == "2MiB_bs2MiB+7")
    reader = _TrickleReader(_data(name, size), step=777)  # short reads straddling chunk boundaries

    result = hdfs_md5_crc32c_checksum(reader, block_size=block_size)  # type: ignore[arg-type]

    assert result.matches(_reported(algorithm, hex_bytes))
    assert all(0 < n <= MiB for n in reader.requested), "reads must be bounded, never the whole file"


def test_mismatches_are_detected() -> None:
    name, size, block_size, algorithm, hex_bytes = next(g for g in GOLDEN if g[0] == "1MiB+1")
    data = _data(name, size)
    reported = _reported(algorithm, hex_bytes)

    flipped = bytearray(data)
    flipped[-1] ^= 1
    assert not hdfs_md5_crc32c_checksum(bytes(flipped), block_size=block_size).matches(reported)
    assert not hdfs_md5_crc32c_checksum(data[:-1], block_size=block_size).matches(reported)
    assert not hdfs_md5_crc32c_checksum(data + b"\0", block_size=block_size).matches(reported)
    local = hdfs_md5_crc32c_checksum(data, block_size=block_size)
    assert not local.matches(_reported("MD5-of-2048MD5-of-512CRC32", hex_bytes))


def test_properties_and_round_trip() -> None:
    _, _, _, algorithm, hex_bytes = next(g for g in GOLDEN if g[0] == "9MiB+1")
    parsed = HdfsChecksum.from_webhdfs(_reported(algorithm, hex_bytes))
    assert parsed.bytes_per_crc == 512
    assert parsed.crc_per_block == 2048
    assert parsed.md5_hex == "b0611f170daee293fc9d4b7c94cdc00e"
    assert len(parsed.bytes_hex) == 2 * CHECKSUM_LENGTH
    assert HdfsChecksum.from_webhdfs(parsed.to_webhdfs()) == parsed


@pytest.mark.parametrize(
    "reported",
    [
        {},
        {"FileChecksum": None},
        {"algorithm": "MD5-of-0MD5-of-512CRC32C", "length": 28},
        {"algorithm": "MD5-of-0MD5-of-512CRC32C", "bytes": "zz", "length": 28},
        {"algorithm": "MD5-of-0MD5-of-512CRC32C", "bytes": "00" * 27, "length": 28},
        {"algorithm": "MD5-of-0MD5-of-512CRC32C", "bytes": "00" * 28 + "01000000", "length": 28},
        {"algorithm": "MD5-of-0MD5-of-512CRC32C", "bytes": "00" * 32, "length": 32},
        {"algorithm": "MD5-of-0MD5-of-512CRC32C", "bytes": "00" * 28, "length": "28"},
        {"algorithm": None, "bytes": "00" * 28, "length": 28},
    ],
)
def test_malformed_webhdfs_answers_raise(reported: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EMPTY_FILE_CHECKSUM.matches(reported)


@pytest.mark.parametrize(
    ("block_size", "bytes_per_crc"),
    [(0, 512), (MiB, 0), (MiB + 1, 512), (-MiB, 512), (MiB, -512), (True, 512)],
)
def test_invalid_parameters_raise(block_size: int, bytes_per_crc: int) -> None:
    with pytest.raises(ValueError):
        hdfs_md5_crc32c_checksum(b"x", block_size=block_size, bytes_per_crc=bytes_per_crc)
