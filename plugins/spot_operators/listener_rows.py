"""The listener's row typing: one CSV line of a Kafka message -> typed Hive values and its UTC hour.

Pure Python (csv, datetime), no Spark: the PySpark listener (``include/jobs/spot_listener.py``) calls it
inside its Arrow UDFs, and unit tests call it directly. It depends only on :mod:`spot_operators.tables`
(and the standard library) so the listener can ship it to executors in a small zip.

A line becomes either a tuple ``(column values in the table's order..., y, m, d, h)`` or a
:class:`Quarantine` that says why not; it never raises for bad data (Spot failed whole batches on one
bad row). Rules:

* the line is exactly one RFC 4180 record (``csv`` with ``strict=True``) with exactly the table's
  column count;
* STRING is kept as is; INT, BIGINT, SMALLINT, TINYINT must be a plain ASCII decimal integer
  (optional ``-``) within the signed range of the Hive type (Hive would store NULL or wrap otherwise);
* FLOAT must parse as a finite number within float32 range;
* the partition is computed per row in UTC: from ``unix_tstamp`` for flow and dns (must be > 0: a zero
  receive time means a damaged record, not 1970), from ``p_date``/``p_time`` for proxy, whose partition
  values are zero-padded strings (``m='03'``) as Spot's proxy table has them.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from spot_operators.tables import TABLES, HiveTable


@dataclass(frozen=True)
class Quarantine:
    """Why a line cannot become a row (short, for an operator to read)."""

    reason: str


INT_RANGES: dict[str, tuple[int, int]] = {
    "TINYINT": (-(2**7), 2**7 - 1),
    "SMALLINT": (-(2**15), 2**15 - 1),
    "INT": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
}
FLOAT_MAX = 3.4028234663852886e38
_INTEGER = re.compile(r"-?[0-9]+")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")
# Hive SMALLINT y: years up to 9999 fit; datetime cannot go further anyway.
_MAX_EPOCH = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


class _Bad(Exception):
    pass


def _clip(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _integer(name: str, hive_type: str, value: str) -> int:
    if not (value.isascii() and _INTEGER.fullmatch(value)):
        raise _Bad(f"{name} is not an integer: {_clip(value)}")
    low, high = INT_RANGES[hive_type]
    if len(value) > 21:  # longer than any BIGINT: do not even convert
        raise _Bad(f"{name} {_clip(value)} is out of {hive_type} range")
    number = int(value)
    if not low <= number <= high:
        raise _Bad(f"{name} {_clip(value)} is out of {hive_type} range")
    return number


def _float(name: str, value: str) -> float:
    try:
        number = float(value) if value.isascii() and value.strip() == value else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise _Bad(f"{name} is not a finite number: {_clip(value)}")
    if abs(number) > FLOAT_MAX:
        raise _Bad(f"{name} {_clip(value)} is out of FLOAT range")
    return number


def _converter(name: str, hive_type: str) -> Any:
    if hive_type == "STRING":
        return None
    if hive_type in INT_RANGES:
        return lambda value: _integer(name, hive_type, value)
    if hive_type == "FLOAT":
        return lambda value: _float(name, value)
    raise ValueError(f"unsupported Hive type {hive_type} of column {name}")


_CONVERTERS: dict[str, tuple[Any, ...]] = {
    t.name: tuple(_converter(name, hive_type) for name, hive_type in t.columns) for t in TABLES.values()
}


def _epoch_partition(epoch: int) -> tuple[int, int, int, int]:
    if not 0 < epoch <= _MAX_EPOCH:
        raise _Bad(f"unix_tstamp {epoch} is not a usable time")
    t = datetime.fromtimestamp(epoch, tz=UTC)
    return (t.year, t.month, t.day, t.hour)


def _proxy_partition(p_date: str, p_time: str) -> tuple[str, str, str, str]:
    m = _DATE.fullmatch(p_date)
    if m is None:
        raise _Bad(f"bad p_date {_clip(p_date)}: expected YYYY-MM-DD")
    y, mo, d = m.groups()
    try:
        date(int(y), int(mo), int(d))
    except ValueError as exc:
        raise _Bad(f"bad p_date {_clip(p_date)}: {exc}") from None
    t = _TIME.fullmatch(p_time)
    if t is None:
        raise _Bad(f"bad p_time {_clip(p_time)}: expected hh:mm:ss")
    return (y, mo, d, t.group(1))


def table(data_type: str) -> HiveTable:
    try:
        return TABLES[data_type]
    except KeyError:
        raise ValueError(f"unknown data type {data_type!r}: expected one of {sorted(TABLES)}") from None


def typed_fields(data_type: str, fields: Sequence[str]) -> tuple[Any, ...] | Quarantine:
    """Typed values of already split ``fields`` plus the partition, or why not."""
    spec = table(data_type)
    if len(fields) != spec.width:
        return Quarantine(f"expected {spec.width} fields for {data_type}, got {len(fields)}")
    try:
        values = [
            value if convert is None else convert(value)
            for value, convert in zip(fields, _CONVERTERS[data_type], strict=True)
        ]
        if data_type == "proxy":
            partition: tuple[Any, ...] = _proxy_partition(values[0], values[1])
        else:
            partition = _epoch_partition(int(values[1]))  # unix_tstamp, BIGINT, for flow and dns
    except _Bad as exc:
        return Quarantine(str(exc))
    return (*values, *partition)


def split_line(csv_line: str) -> list[str] | Quarantine:
    """The fields of one RFC 4180 record without terminator, or why it is not exactly one record."""
    if not csv_line:
        return Quarantine("empty line")
    try:
        records = list(csv.reader(io.StringIO(csv_line, newline=""), strict=True))
    except csv.Error as exc:
        return Quarantine(f"not a CSV record: {exc}")
    if len(records) != 1:
        return Quarantine(f"{len(records)} CSV records in one line")
    return records[0]


def typed_row(data_type: str, csv_line: str) -> tuple[Any, ...] | Quarantine:
    """``(values..., y, m, d, h)`` of one CSV line of ``data_type`` (flow, dns, proxy), or why not."""
    fields = split_line(csv_line)
    if isinstance(fields, Quarantine):
        return fields
    return typed_fields(data_type, fields)


def staged_text(data: bytes) -> str:
    """A staged CSV's bytes as text for :func:`csv_records`.

    Bytes that are not UTF-8 (a damaged or foreign file: collect itself stages UTF-8) are kept as
    surrogate escapes, so that the records holding them are quarantined one by one instead of the
    whole text failing its batch.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape")


def inline_records(lines: Sequence[bytes | str | None]) -> Iterator[tuple[int, Any, list[str] | Quarantine]]:
    """``(line number, raw line, fields or why not)`` of an INLINE message's lines, for the row path.

    A line is ``bytes`` as the listener reads it (or a string). One that is not UTF-8 (Spot's edge
    collectors do not check) is quarantined alone, its first bad byte named, like a staged CSV's
    record (:func:`staged_text`); the message's other lines are typed as usual.
    """
    for line_no, line in enumerate(lines, 1):
        raw = staged_text(line) if isinstance(line, bytes) else line
        if raw and (utf8_error := _utf8_error(raw)) is not None:
            yield line_no, _printable(raw), Quarantine(utf8_error)
        else:
            yield line_no, raw, split_line(raw or "")


def _utf8_error(raw: str) -> str | None:
    """Why a record is not UTF-8 (it holds surrogate escapes, see :func:`staged_text`), or ``None``."""
    if raw.isascii():
        return None
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = ord(raw[exc.start]) - 0xDC00  # surrogateescape keeps byte b as U+DC00 + b
        return f"not UTF-8: byte 0x{byte:02x} at character {exc.start + 1}"
    return None


def _printable(raw: str) -> str:
    """``raw`` with its surrogate escapes shown as ``\\xNN``: quarantine stores UTF-8 text."""
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def csv_records(text: str | bytes) -> Iterator[tuple[int, str, list[str] | Quarantine]]:
    """``(first line number, raw record text, fields or why not)`` of every record of a CSV text (a
    staged CSV, or a v2 INLINE message's).

    Line numbers are 1-based physical lines; a quoted field may span lines. A quoting error quarantines
    the rest of the text from that record on (the reader cannot resynchronise reliably), as one entry.
    ``text`` may be the file's bytes (decoded here with :func:`staged_text`, as :func:`inline_records`
    decodes a line): a record with bytes that are not UTF-8 is quarantined with the first one named.
    """
    if isinstance(text, bytes):
        text = staged_text(text)
    consumed: list[str] = []

    def physical_lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):  # splits at \n, \r\n and \r only, keeps them
            consumed.append(line)
            yield line

    source = physical_lines()
    reader = csv.reader(source, strict=True)
    line_no = 1
    while True:
        consumed.clear()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            rest = "".join(consumed) + "".join(source)
            yield line_no, _printable(rest.rstrip("\r\n")), Quarantine(f"not a CSV record: {exc}")
            return
        raw = "".join(consumed).rstrip("\r\n")
        utf8_error = _utf8_error(raw)
        if utf8_error is not None:
            yield line_no, _printable(raw), Quarantine(utf8_error)
        elif fields or raw:
            yield line_no, raw, fields if fields else Quarantine("empty line")
        line_no += len(consumed)
