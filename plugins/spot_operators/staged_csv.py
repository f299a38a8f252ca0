"""The POINTER route: a file's CSV staged in HDFS as pieces of bounded size, one pointer message each.

The listener reads each staged file whole into one Spark task, and that costs about 13 times the
file's size of heap (measured: with 1g, a 75 MB file loads and a 100 MB one fails with
``OutOfMemoryError``, and the batch then fails on every retry). So a big CSV is cut between records
into pieces of at most ``kafka.staged_csv_max_bytes``; each piece is a segment of the file
(``segment_index``/``segment_count``), which the listener loads and reconcile counts like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from spot_operators.envelope import IngestMessage, Pointer
from spot_operators.hdfs_store import HdfsClient, store_verified
from spot_operators.ledger import file_digest
from spot_operators.rows import HourPartition


@dataclass
class CsvPiece:
    """One local piece of a file's CSV: whole records only."""

    path: Path
    bytes: int = 0
    rows: int = 0
    first_partition: HourPartition | None = None


class CsvPieceWriter:
    """Writes CSV records into ``<folder>/rows-NNNNN.csv``, starting a new piece before one would
    grow past ``max_bytes``. A record is never cut: one longer than ``max_bytes`` is a piece alone."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"staged CSV pieces need a positive size limit, not {max_bytes}")
        self.folder = folder
        self.max_bytes = max_bytes
        self.pieces: list[CsvPiece] = []
        self._out: IO[bytes] | None = None

    def write(self, record: str, partition: HourPartition) -> int:
        """Append one record (with its line terminator); returns its size in bytes."""
        data = record.encode("utf-8")
        piece = self.pieces[-1] if self.pieces else None
        if piece is None or (piece.rows and piece.bytes + len(data) > self.max_bytes):
            piece = self._start_piece()
        assert self._out is not None
        self._out.write(data)
        piece.bytes += len(data)
        piece.rows += 1
        if piece.first_partition is None:
            piece.first_partition = partition
        return len(data)

    def _start_piece(self) -> CsvPiece:
        self.close()
        piece = CsvPiece(self.folder / f"rows-{len(self.pieces):05d}.csv")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._out = piece.path.open("wb")
        self.pieces.append(piece)
        return piece

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> CsvPieceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_csv_pieces(
    folder: Path, records: Iterable[tuple[str, HourPartition]], max_bytes: int
) -> list[CsvPiece]:
    """Every ``(record, partition)`` into pieces (see :class:`CsvPieceWriter`)."""
    with CsvPieceWriter(folder, max_bytes) as writer:
        for record, partition in records:
            writer.write(record, partition)
    return writer.pieces


def staged_piece_path(base: str, index: int, count: int) -> str:
    """``<base>.csv`` for a CSV staged whole, ``<base>.part-00002-of-00005.csv`` for a piece of it."""
    if count == 1:
        return f"{base}.csv"
    return f"{base}.part-{index + 1:05d}-of-{count:05d}.csv"


def stage_pointer_messages(
    hdfs: HdfsClient,
    pieces: list[CsvPiece],
    template: IngestMessage,
    staged_base: str,
) -> list[IngestMessage]:
    """Store each piece verified in HDFS and make its POINTER message (segment ``i`` of ``n``).

    ``template`` gives the envelope's file fields; ``staged_base`` is the HDFS path without ``.csv``.
    A message's ``first_row_epoch`` is the start of its piece's first hour.
    """
    messages = []
    count = len(pieces)
    for index, piece in enumerate(pieces):
        staged = store_verified(hdfs, piece.path, staged_piece_path(staged_base, index, count))
        first_epoch = piece.first_partition.start_epoch() if piece.first_partition else None
        pointer = Pointer(staged.hdfs_path, staged.bytes, piece.rows, file_digest(piece.path))
        fields = {
            **vars(template),
            "kind": "POINTER",
            "segment_index": index,
            "segment_count": count,
            "rows": (),
            "pointer": pointer,
            "first_row_epoch": first_epoch,
        }
        messages.append(IngestMessage(**fields))
    return messages
