"""HDFS's file checksum (``MD5-of-<n>MD5-of-<m>CRC32C``) computed locally, in pure Python.

Why: the ingest deletes a local original only after its HDFS copy is verified (architecture.md,
"Nothing is deleted before its copy is verified"). Comparing sizes is not enough and reading the copy
back over WebHDFS doubles the traffic, so we compute locally the exact value the DataNodes compute
over the bytes they stored, and compare it with what WebHDFS ``GETFILECHECKSUM`` reports. The local
side never trusts the upload: it hashes the local file itself, streaming it in bounded chunks.

What HDFS computes (Hadoop 3.x ``FileChecksumHelper`` + ``BlockChecksumHelper``, combine mode
``MD5MD5CRC``; checked against the source and a real Hadoop 3.4.1 cluster, whose WebHDFS answered
in this form even with ``dfs.checksum.combine.mode=COMPOSITE_CRC`` in hdfs-site.xml, while an
RPC ``FileSystem.getFileChecksum`` client with that setting would get a ``COMPOSITE-CRC32C`` value):

* The file is cut into blocks of ``dfs.blocksize`` bytes (the block size the file was *written*
  with), each block into chunks of ``dfs.bytes-per-checksum`` (512) bytes; the last chunk of the
  last block may be short.
* Per block: MD5 over the CRC32C of every chunk, each as 4 big-endian bytes.
* File: MD5 over the concatenated 16-byte block MD5s **followed by zero padding**: Hadoop digests
  ``DataOutputBuffer.getData()``, the whole backing array, not just the bytes written. That array
  starts at 32 bytes and doubles when full, so one block is hashed as 16 bytes + 16 zero bytes,
  three blocks as 48 + 16 zero bytes, five as 80 + 48, and so on.
* ``crcPerBlock`` is ``block_size / bytes_per_crc`` taken from the first block only when the file
  has more than one block; a single-block file reports 0.
* An empty file has no blocks and gets a fixed magic value: ``MD5-of-0MD5-of-0CRC32`` (CRC32, not
  CRC32C, bytesPerCRC 0) with the MD5 of 32 zero bytes.
* WebHDFS returns ``{"algorithm", "bytes", "length"}`` where ``bytes`` is the hex of bytesPerCRC
  (int32 BE) + crcPerBlock (int64 BE) + MD5 (16 bytes) and ``length`` is 28, the length of that
  checksum, **not** the file's length (check the size separately, e.g. with GETFILESTATUS). Hadoop
  3.4 pads ``bytes`` with four zero bytes to 32 (the same ``getData()`` effect); Hadoop's own
  WebHDFS client reads the first 28 bytes and ignores the rest; :meth:`HdfsChecksum.matches`
  compares the first 28 and accepts only zeros after them.

The result depends on the block size the file was written with, so compare against the
``blockSize`` of the uploaded file (GETFILESTATUS), not the cluster default. Files written with
CRC32 checksums (``dfs.checksum.type=CRC32``) or erasure coding produce other values, not supported
here. This module imports nothing from Airflow or HDFS clients so triggers, operators and tests can
use it cheaply.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import crc32c

__all__ = [
    "CHECKSUM_LENGTH",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_BYTES_PER_CRC",
    "EMPTY_FILE_CHECKSUM",
    "HdfsChecksum",
    "hdfs_md5_crc32c_checksum",
]

DEFAULT_BLOCK_SIZE = 134_217_728
"""``dfs.blocksize`` default (128 MiB)."""

DEFAULT_BYTES_PER_CRC = 512
"""``dfs.bytes-per-checksum`` default."""

CHECKSUM_LENGTH = 28
"""Length of the serialized checksum: int32 bytesPerCRC + int64 crcPerBlock + 16-byte MD5."""

_READ_CHUNKS = 2048
"""CRC chunks read per I/O call (1 MiB at 512 bytes per CRC): bounded memory on any file size."""

_HADOOP_BUFFER_INITIAL = 32
"""Initial capacity of Hadoop's ``DataOutputBuffer``; it doubles when full (see module docstring)."""

_HEADER = struct.Struct(">iq")

PathOrFile = str | os.PathLike[str] | BinaryIO | bytes | bytearray | memoryview


@dataclass(frozen=True)
class HdfsChecksum:
    """A file checksum as WebHDFS reports it, normalised to the 28 significant bytes.

    ``bytes_hex`` is lowercase hex of exactly :data:`CHECKSUM_LENGTH` bytes (no trailing padding),
    ``length`` is the checksum's length (always 28), not the file's.
    """

    algorithm: str
    bytes_hex: str
    length: int = CHECKSUM_LENGTH

    @property
    def bytes_per_crc(self) -> int:
        """``dfs.bytes-per-checksum`` the file was written with (0 for an empty file)."""
        return int(_HEADER.unpack_from(bytes.fromhex(self.bytes_hex))[0])

    @property
    def crc_per_block(self) -> int:
        """CRCs per block as HDFS reports it: 0 unless the file spans more than one block."""
        return int(_HEADER.unpack_from(bytes.fromhex(self.bytes_hex))[1])

    @property
    def md5_hex(self) -> str:
        """The file-level MD5 (of the block MD5s), hex."""
        return self.bytes_hex[2 * _HEADER.size :]

    @classmethod
    def from_webhdfs(cls, reported: Mapping[str, Any]) -> HdfsChecksum:
        """Parse a WebHDFS ``GETFILECHECKSUM`` answer.

        Accepts the whole JSON body (``{"FileChecksum": {...}}``) or its inner object (what the
        ``hdfs`` client's ``checksum()`` returns). Trailing zero padding of ``bytes`` beyond
        ``length`` is dropped, as Hadoop's own client does; non-zero trailing bytes, a wrong length
        or a missing key raise :class:`ValueError`, since a verification must not pass on a reply it
        cannot read.
        """
        inner = reported.get("FileChecksum", reported)
        if not isinstance(inner, Mapping):
            raise ValueError(f"not a WebHDFS FileChecksum object: {reported!r}")
        try:
            algorithm = inner["algorithm"]
            hex_bytes = inner["bytes"]
            length = inner["length"]
        except KeyError as err:
            raise ValueError(f"WebHDFS FileChecksum lacks {err.args[0]!r}: {reported!r}") from None
        if not isinstance(algorithm, str) or not isinstance(hex_bytes, str):
            raise ValueError(f"malformed WebHDFS FileChecksum: {reported!r}")
        if isinstance(length, bool) or not isinstance(length, int) or length != CHECKSUM_LENGTH:
            raise ValueError(f"unsupported checksum length {length!r} (expected {CHECKSUM_LENGTH})")
        try:
            raw = bytes.fromhex(hex_bytes)
        except ValueError:
            raise ValueError(f"WebHDFS checksum bytes are not hex: {hex_bytes!r}") from None
        if len(raw) < length or any(raw[length:]):
            raise ValueError(f"WebHDFS checksum bytes do not hold {length} bytes: {hex_bytes!r}")
        return cls(algorithm=algorithm, bytes_hex=raw[:length].hex(), length=length)

    def matches(self, reported: Mapping[str, Any]) -> bool:
        """True when a WebHDFS ``GETFILECHECKSUM`` answer equals this checksum.

        ``reported`` as for :meth:`from_webhdfs` (malformed answers raise :class:`ValueError`).
        """
        return self == HdfsChecksum.from_webhdfs(reported)

    def to_webhdfs(self) -> dict[str, Any]:
        """The inner ``FileChecksum`` object, unpadded, e.g. for logs and XCom."""
        return {"algorithm": self.algorithm, "bytes": self.bytes_hex, "length": self.length}


def _empty_file_checksum() -> HdfsChecksum:
    # FileChecksumHelper.compute(): no located blocks -> MD5MD5CRC32GzipFileChecksum(0, 0,
    # MD5(32 zero bytes)), "the magic entry that matches what previous hdfs versions return".
    md5 = hashlib.md5(bytes(_HADOOP_BUFFER_INITIAL), usedforsecurity=False).digest()
    return HdfsChecksum(algorithm="MD5-of-0MD5-of-0CRC32", bytes_hex=(_HEADER.pack(0, 0) + md5).hex())


EMPTY_FILE_CHECKSUM = _empty_file_checksum()
"""What HDFS reports for a zero-length file, whatever its block size."""


def _hadoop_buffer_capacity(used: int) -> int:
    """Capacity of a Hadoop ``DataOutputBuffer`` after ``used`` bytes were written in 16-byte writes."""
    capacity = _HADOOP_BUFFER_INITIAL
    while capacity < used:
        capacity *= 2
    return capacity


def _read_full(stream: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes, or fewer only at end of file (file objects may return short reads)."""
    data = stream.read(size)
    if data is None:  # non-blocking stream with no data: not supported
        raise OSError("non-blocking streams are not supported")
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = stream.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _checksum_stream(stream: BinaryIO, block_size: int, bytes_per_crc: int) -> HdfsChecksum:
    block_md5s = bytearray()
    read_size = bytes_per_crc * _READ_CHUNKS
    block_md5 = hashlib.md5(usedforsecurity=False)
    block_used = 0
    while True:
        # Never read across a block boundary, so each read feeds exactly one block's MD5.
        wanted = min(read_size, block_size - block_used)
        data = _read_full(stream, wanted)
        if data:
            view = memoryview(data)
            crcs = [crc32c.crc32c(view[i : i + bytes_per_crc]) for i in range(0, len(view), bytes_per_crc)]
            block_md5.update(struct.pack(f">{len(crcs)}I", *crcs))
            block_used += len(data)
        at_eof = len(data) < wanted
        if block_used == block_size or (at_eof and block_used):
            block_md5s += block_md5.digest()
            block_md5 = hashlib.md5(usedforsecurity=False)
            block_used = 0
        if at_eof:
            break

    blocks = len(block_md5s) // 16
    if blocks == 0:
        return EMPTY_FILE_CHECKSUM
    padded = bytes(block_md5s) + bytes(_hadoop_buffer_capacity(len(block_md5s)) - len(block_md5s))
    file_md5 = hashlib.md5(padded, usedforsecurity=False).digest()
    crc_per_block = block_size // bytes_per_crc if blocks > 1 else 0
    return HdfsChecksum(
        algorithm=f"MD5-of-{crc_per_block}MD5-of-{bytes_per_crc}CRC32C",
        bytes_hex=(_HEADER.pack(bytes_per_crc, crc_per_block) + file_md5).hex(),
    )


def hdfs_md5_crc32c_checksum(
    source: PathOrFile,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    bytes_per_crc: int = DEFAULT_BYTES_PER_CRC,
) -> HdfsChecksum:
    """Compute locally the checksum HDFS (WebHDFS ``GETFILECHECKSUM``) reports for these bytes.

    ``source`` is a local path, a binary file object open for reading (read from its current
    position to EOF, not closed), or bytes-like data. Files are streamed 1 MiB at a time (at the
    default ``bytes_per_crc``), so memory stays bounded whatever the size. ``block_size`` must be the
    block size the HDFS copy was written with (its GETFILESTATUS ``blockSize``) and a multiple of
    ``bytes_per_crc``, as HDFS itself requires.
    """
    if isinstance(bytes_per_crc, bool) or not isinstance(bytes_per_crc, int) or bytes_per_crc <= 0:
        raise ValueError(f"bytes_per_crc must be a positive int, got {bytes_per_crc!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size <= 0:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if block_size % bytes_per_crc:
        raise ValueError(f"block_size {block_size} is not a multiple of bytes_per_crc {bytes_per_crc}")
    if isinstance(source, bytes | bytearray | memoryview):
        return _checksum_stream(io.BytesIO(source), block_size, bytes_per_crc)
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            return _checksum_stream(stream, block_size, bytes_per_crc)
    return _checksum_stream(source, block_size, bytes_per_crc)
