"""Staged CSV pieces: bounded size, whole records, every byte once, in order."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from spot_operators.rows import HourPartition
from spot_operators.segments import csv_line
from spot_operators.staged_csv import CsvPieceWriter, staged_piece_path, write_csv_pieces

H18 = HourPartition(2023, 1, 25, 18)
H19 = HourPartition(2023, 1, 25, 19)


def _records(n: int) -> list[tuple[str, HourPartition]]:
    """``n`` records, some with quoted commas and newlines, the second half in the next hour."""
    out = []
    for i in range(n):
        fields = [
            f"2023-01-25 18:{i % 60:02d}:00",
            str(i),
            "a,b" if i % 3 == 0 else "x",
            "two\nlines" if i % 7 == 0 else "",
        ]
        out.append((csv_line(fields) + "\n", H18 if i < n // 2 else H19))
    return out


def test_pieces_hold_whole_records_within_the_limit_and_every_byte_once(tmp_path: Path) -> None:
    records = _records(200)
    limit = 1000
    pieces = write_csv_pieces(tmp_path / "csv", records, limit)

    assert len(pieces) > 3
    assert all(p.bytes <= limit for p in pieces)
    assert [p.path.name for p in pieces] == [f"rows-{i:05d}.csv" for i in range(len(pieces))]
    joined = b"".join(p.path.read_bytes() for p in pieces)
    assert joined == "".join(r for r, _ in records).encode()
    assert sum(p.rows for p in pieces) == 200
    offset = 0
    for piece in pieces:
        data = piece.path.read_bytes()
        assert len(data) == piece.bytes
        # Each piece parses on its own into exactly its records: no record was cut.
        parsed = list(csv.reader(io.StringIO(data.decode(), newline="")))
        assert len(parsed) == piece.rows
        assert piece.first_partition == records[offset][1]
        offset += piece.rows
    assert pieces[0].first_partition == H18
    assert pieces[-1].first_partition == H19


def test_a_record_longer_than_the_limit_is_a_piece_alone(tmp_path: Path) -> None:
    big = csv_line(["x" * 500]) + "\n"
    small = csv_line(["y"]) + "\n"
    pieces = write_csv_pieces(tmp_path, [(small, H18), (big, H18), (small, H19)], 100)
    assert [(p.rows, p.bytes) for p in pieces] == [(1, len(small)), (1, len(big)), (1, len(small))]


def test_a_small_csv_is_one_piece_and_no_rows_is_no_piece(tmp_path: Path) -> None:
    assert write_csv_pieces(tmp_path / "none", [], 100) == []
    pieces = write_csv_pieces(tmp_path / "one", _records(5), 1 << 20)
    assert len(pieces) == 1
    assert pieces[0].rows == 5


def test_non_ascii_records_are_measured_in_bytes(tmp_path: Path) -> None:
    record = csv_line(["é" * 40]) + "\n"  # 81 bytes, 41 characters
    pieces = write_csv_pieces(tmp_path, [(record, H18)] * 3, 170)
    assert [p.rows for p in pieces] == [2, 1]
    assert pieces[0].bytes == 162


def test_the_writer_refuses_a_limit_that_is_not_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive size limit, not 0"):
        CsvPieceWriter(tmp_path, 0)


def test_staged_names_keep_a_whole_csv_as_before_and_number_pieces() -> None:
    base = "/user/spot/flow/stage/20230125/18/nfcapd.202301251800.0123456789ab"
    assert staged_piece_path(base, 0, 1) == f"{base}.csv"
    assert staged_piece_path(base, 0, 3) == f"{base}.part-00001-of-00003.csv"
    assert staged_piece_path(base, 2, 3) == f"{base}.part-00003-of-00003.csv"
