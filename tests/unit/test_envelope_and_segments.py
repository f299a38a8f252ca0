"""Avro envelope round trips and segment cutting: hour boundaries and exact size limits."""

from __future__ import annotations

import csv
import io
import re

import fastavro
import pytest

from spot_operators.envelope import (
    MESSAGE_SCHEMA_FILE,
    IngestMessage,
    Pointer,
    csv_text_records,
    decode_message,
    decode_spot_list,
    encode_message,
    encode_spot_list,
    leading_int,
    load_schema,
)
from spot_operators.rows import HourPartition, Row
from spot_operators.segments import (
    KAFKA_RECORD_OVERHEAD,
    LARGEST_NUMBERS,
    RowTooLargeError,
    csv_line,
    inline_messages,
    should_inline,
)
from tests.unit.test_listener_job import encode_v1

TEMPLATE = IngestMessage(
    kind="INLINE",
    pipeline="flow_internals",
    data_type="flow",
    file_name="nfcapd.202301251836",
    file_digest="ab" * 32,
    segment_index=0,
    segment_count=1,
)
H1 = HourPartition(2023, 1, 25, 18)
H2 = HourPartition(2023, 1, 25, 19)


def _row(partition: HourPartition, payload: str, n: int = 0) -> Row:
    return Row(
        fields=(f"2023-01-25 {partition.h}:00:00", str(partition.start_epoch() + n), payload),
        partition=partition,
        line_no=n,
    )


def test_inline_round_trip_keeps_every_field() -> None:
    message = IngestMessage(**{**vars(TEMPLATE), "rows": ("a,b", '"x, y",z'), "first_row_epoch": 1674671760})
    assert decode_message(encode_message(message)) == message


def test_inline_rows_travel_as_one_csv_text_and_come_back_as_records() -> None:
    """v2: the rows are one CSV text; records holding a line feed, quotes or non-ASCII text come back
    whole (a record ends at a line feed outside quotes)."""
    rows = (
        csv_line(["a", "b"]),
        csv_line(["two\nlines", 'say "hi"']),
        csv_line(["\n", '"\n"', ""]),
        csv_line(["caf\u00e9", "\u2603"]),
        "",
    )
    message = IngestMessage(**{**vars(TEMPLATE), "rows": rows})
    record = message.to_record()
    assert (record["schema_version"], record["row_count"]) == (2, 5)
    assert record["csv"] == "".join(row + "\n" for row in rows).encode()
    assert "rows" not in record
    assert decode_message(encode_message(message)) == message
    assert csv_text_records(record["csv"].decode()) == rows


@pytest.mark.parametrize(
    ("text", "reason"),
    [("a,b", "does not end with a line feed"), ('a,"b\n', "ends inside a quoted field")],
)
def test_a_csv_text_that_does_not_end_a_record_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        csv_text_records(text)


def test_version_1_messages_still_decode() -> None:
    """Messages an earlier collector wrote (rows as an array of lines) decode to the same message."""
    message = IngestMessage(**{**vars(TEMPLATE), "rows": ("a,b", '"x\ny",z'), "first_row_epoch": 1674671760})
    payload = encode_v1(message)
    assert leading_int(payload) == 1
    assert decode_message(payload) == message


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"row_count": 3}, "2 CSV records, row_count 3"),
        ({"csv": b"a,b\n\xff\n"}, "its CSV text: 'utf-8' codec can't decode byte 0xff"),
        ({"csv": b"a,b"}, "its CSV text: CSV text does not end with a line feed"),
    ],
)
def test_a_v2_message_whose_text_disagrees_is_a_clear_error(change: dict[str, object], reason: str) -> None:
    record = {**IngestMessage(**{**vars(TEMPLATE), "rows": ("a,b", "c,d")}).to_record(), **change}
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, load_schema(MESSAGE_SCHEMA_FILE), record)
    with pytest.raises(ValueError, match=re.escape(f"not a Spot ingest message (schema v2): {reason}")):
        decode_message(buffer.getvalue())


@pytest.mark.parametrize(
    ("value", "expected"), [(0, b"\x00"), (1, b"\x02"), (2, b"\x04"), (-1, b"\x01"), (64, b"\x80\x01")]
)
def test_leading_int_reads_avro_zigzag_varints(value: int, expected: bytes) -> None:
    assert leading_int(expected + b"rest") == value
    assert leading_int(b"") is None
    assert leading_int(b"\x80" * 5) is None


def test_pointer_round_trip() -> None:
    pointer = Pointer(
        hdfs_path="/user/spot/flow/stage/20230125/18/f.csv", bytes=5_000_000, rows=40_000, sha256="cd" * 32
    )
    message = IngestMessage(**{**vars(TEMPLATE), "kind": "POINTER", "pointer": pointer})
    assert decode_message(encode_message(message)) == message


@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff\x0f", b"\x06garbage", b"\x04garbage", b""])
def test_garbage_payload_is_a_clear_error(payload: bytes) -> None:
    with pytest.raises(ValueError, match="not a Spot ingest message"):
        decode_message(payload)


def test_headers_name_pipeline_type_version_and_segment() -> None:
    headers = dict(IngestMessage(**{**vars(TEMPLATE), "segment_index": 2, "segment_count": 5}).headers())
    assert headers == {
        "spot.pipeline": b"flow_internals",
        "spot.type": b"flow",
        "spot.schema_version": b"2",
        "spot.kind": b"INLINE",
        "spot.segment": b"3/5",
    }


def test_spot_list_format_round_trip() -> None:
    assert decode_spot_list(encode_spot_list(["1,2", "3,4"])) == ["1,2", "3,4"]


def test_csv_line_quotes_commas_and_quotes() -> None:
    fields = ("Sep  8, 2017 11:00:00", 'say "hi"', "plain")
    line = csv_line(fields)
    assert next(csv.reader(io.StringIO(line))) == list(fields)


def test_csv_line_quotes_newlines_so_the_record_reads_back_whole() -> None:
    fields = ("two\nlines", "carriage\rreturn", "crlf\r\nend", "plain")
    line = csv_line(fields)
    assert line == '"two\nlines","carriage\rreturn","crlf\r\nend",plain'
    assert list(csv.reader(io.StringIO(line + "\n", newline=""))) == [list(fields)]


def test_segments_cut_at_hour_boundaries() -> None:
    rows = [_row(H1, "a", 0), _row(H1, "b", 1), _row(H2, "c", 2), _row(H2, "d", 3)]
    messages = inline_messages(rows, template=TEMPLATE, max_request_size=1 << 20)
    assert [m.rows for m in messages] == [
        (csv_line(rows[0].fields), csv_line(rows[1].fields)),
        (csv_line(rows[2].fields), csv_line(rows[3].fields)),
    ]
    assert [(m.segment_index, m.segment_count) for m in messages] == [(0, 2), (1, 2)]
    assert [m.first_row_epoch for m in messages] == [H1.start_epoch(), H2.start_epoch() + 2]


@pytest.mark.parametrize("limit", [4096, 5000, 65536])
def test_segments_never_exceed_the_limit_and_keep_every_row_in_order(limit: int) -> None:
    rows = [_row(H1, "x" * (i % 200), i) for i in range(2000)]
    messages = inline_messages(rows, template=TEMPLATE, max_request_size=limit)
    assert len(messages) > 1
    sizes = [len(encode_message(m)) for m in messages]
    assert max(sizes) <= limit - KAFKA_RECORD_OVERHEAD
    # Tight packing: each segment but the last could not have taken the next row.
    assert min(sizes[:-1]) > limit - KAFKA_RECORD_OVERHEAD - 300
    assert [line for m in messages for line in m.rows] == [csv_line(r.fields) for r in rows]


def test_a_row_bigger_than_a_message_is_refused() -> None:
    with pytest.raises(RowTooLargeError, match="does not fit"):
        inline_messages([_row(H1, "y" * 5000)], template=TEMPLATE, max_request_size=4096)


def test_exact_fit_edges() -> None:
    """A segment of exactly the budget is accepted; one byte more splits it."""
    budget_limit = 4096
    base = len(encode_message(IngestMessage(**{**vars(TEMPLATE), **LARGEST_NUMBERS})))
    budget = budget_limit - KAFKA_RECORD_OVERHEAD
    fixed = _row(H1, "")
    prefix_len = len(csv_line(fixed.fields))
    # One row whose encoding fills the budget exactly: the empty CSV text and row count 0 of ``base``
    # (a byte each) become row count 1 (a byte), the text's 2-byte length varint (128..8191 bytes) and
    # the text (the line and its line feed).
    text = budget - base - 1
    payload = text - 1 - prefix_len
    row = _row(H1, "z" * payload)
    [message] = inline_messages([row], template=TEMPLATE, max_request_size=budget_limit)
    at_max = IngestMessage(**{**vars(message), **LARGEST_NUMBERS})
    assert len(encode_message(at_max)) == budget
    with pytest.raises(RowTooLargeError):
        inline_messages([_row(H1, "z" * (payload + 1))], template=TEMPLATE, max_request_size=budget_limit)


@pytest.mark.parametrize(("size", "inline"), [(1048575, True), (1048576, False), (1048577, False)])
def test_routing_threshold_edges(size: int, inline: bool) -> None:
    assert should_inline(size, 1048576) is inline
