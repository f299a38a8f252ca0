"""Cutting a file's rows into Kafka messages: one UTC hour per message, never over the size limit.

Spot's Distributed Collector cut segments when the hour changed or the size reached
``max_request_size``. Sizes here are exact encoded Avro sizes (computed, not estimated), so a
segment can never be refused by the broker for its size.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from spot_operators.envelope import IngestMessage, encode_message
from spot_operators.rows import HourPartition, Row

# Headroom for the Kafka record's own framing (key, headers, batch header) inside max_request_size.
KAFKA_RECORD_OVERHEAD = 1024
LARGEST_NUMBERS = {"segment_index": 2**31 - 1, "segment_count": 2**31 - 1, "first_row_epoch": 2**63 - 1}
"""Envelope numbers with their longest Avro encodings (a segment's size is reckoned with them)."""


def csv_line(fields: Iterable[str]) -> str:
    """One RFC 4180 CSV record without terminator (quotes fields holding commas, quotes, newlines).

    The writer quotes a field for the characters of its own line terminator, so it is written with
    ``\r\n`` and that is cut off: with an empty terminator a field holding ``\n`` went out unquoted,
    and its record read back as two.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(fields)
    return buffer.getvalue()[:-2]


def _varint_len(value: int) -> int:
    """Bytes of Avro's zig-zag varint for ``value``."""
    n = (value << 1) ^ (value >> 63)
    length = 1
    while n > 0x7F:
        n >>= 7
        length += 1
    return length


def csv_record_size(line: str) -> int:
    """Bytes ``line`` adds to a v2 message's CSV text: its UTF-8 bytes and its line feed."""
    return len(line.encode("utf-8")) + 1


class RowTooLargeError(ValueError):
    """A single row does not fit in one message; the file must travel as an HDFS pointer."""


@dataclass(frozen=True)
class Segment:
    """Rows of one hour that fit in one message."""

    partition: HourPartition
    lines: tuple[str, ...]
    first_row_epoch: int | None


def segment_rows(
    rows: Iterable[tuple[HourPartition, str, int | None]],
    *,
    template: IngestMessage,
    max_request_size: int,
) -> Iterator[Segment]:
    """Group consecutive (partition, csv line, epoch) rows into segments within the size limit.

    ``template`` supplies the envelope fields; its encoded size is taken with the largest segment
    numbers and first-row time so the final ones can only make messages smaller.
    """
    base = len(encode_message(IngestMessage(**{**vars(template), **LARGEST_NUMBERS, "rows": ()})))
    budget = max_request_size - KAFKA_RECORD_OVERHEAD
    lines: list[str] = []
    items_size = 0
    current: HourPartition | None = None
    first_epoch: int | None = None

    def size_with(count: int, items: int) -> int:
        # ``base`` holds row_count 0 and an empty csv (one byte each); with rows they are the count's
        # varint and the text's length varint followed by the text.
        return base - 2 + _varint_len(count) + _varint_len(items) + items

    for partition, line, epoch in rows:
        item = csv_record_size(line)
        if size_with(1, item) > budget:
            raise RowTooLargeError(
                f"a row of {item} bytes does not fit in a message of at most {max_request_size} bytes"
            )
        if lines and (partition != current or size_with(len(lines) + 1, items_size + item) > budget):
            assert current is not None
            yield Segment(current, tuple(lines), first_epoch)
            lines, items_size = [], 0
        if not lines:
            current, first_epoch = partition, epoch
        lines.append(line)
        items_size += item
    if lines:
        assert current is not None
        yield Segment(current, tuple(lines), first_epoch)


def _row_epoch(row: Row, epoch_column: int | None) -> int:
    """The row's unix_tstamp column when it has one (flow, dns), else the start of its hour (proxy)."""
    if epoch_column is not None and row.fields[epoch_column].lstrip("-").isdigit():
        return int(row.fields[epoch_column])
    return row.partition.start_epoch()


def inline_messages(
    rows: Iterable[Row],
    *,
    template: IngestMessage,
    max_request_size: int,
    epoch_column: int | None = 1,
) -> list[IngestMessage]:
    """The INLINE messages of a file, numbered ``i/n``; each encodes to at most the budget."""
    triples = (
        (
            row.partition,
            csv_line(row.fields),
            int(row.fields[epoch_column])
            if epoch_column is not None and row.fields[epoch_column].isdigit()
            else None,
        )
        for row in rows
    )
    segments = list(segment_rows(triples, template=template, max_request_size=max_request_size))
    count = len(segments)
    return [
        IngestMessage(
            **{
                **vars(template),
                "kind": "INLINE",
                "segment_index": index,
                "segment_count": count,
                "first_row_epoch": segment.first_row_epoch,
                "rows": segment.lines,
            }
        )
        for index, segment in enumerate(segments)
    ]


def should_inline(csv_bytes: int, inline_limit_bytes: int) -> bool:
    """Spot's documented routing: data under the limit rides in Kafka, the rest goes via HDFS."""
    return csv_bytes < inline_limit_bytes
