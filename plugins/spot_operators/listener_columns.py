"""The listener's columnar fast path: a whole unit of CSV lines -> typed Arrow columns, or "cannot vouch".

Row-by-row typing (:mod:`spot_operators.listener_rows`) costs a regex, a range check and an ``int()``
per field in Python; this module types a whole unit (a CSV text, staged or a v2 INLINE message's, or a
v1 INLINE message's lines) with ``pyarrow.csv`` and ``pyarrow.compute`` instead, about ten times faster.
It never decides anything the row path would decide differently: it only handles units it can prove
clean, and returns ``None`` for anything else (a column count, a bad value, an empty line, a quoted
field spanning lines, a ``\\r``, a NUL...), so the caller types that whole unit row by row and the
quarantine reasons and line numbers stay exactly those of the row path. For a clean unit the values
equal the row path's: integers are plain ASCII decimals (Arrow's exact integer casts, hexadecimal
refused) in the Hive type's range, floats are finite decimals within float32 range, parsed to float64
then rounded to float32 as Arrow does for the row path's Python floats, and the hour partition is the
UTC hour of ``unix_tstamp`` (flow, dns) or the zero-padded ``p_date``/``p_time`` parts (proxy).

Only pyarrow and :mod:`spot_operators.listener_rows` (hence :mod:`spot_operators.tables`): the listener
ships it to executors in its small zip.
"""

from __future__ import annotations

import codecs
import io
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from spot_operators.listener_rows import _MAX_EPOCH, FLOAT_MAX, INT_RANGES, table

ARROW_TYPES: dict[str, Any] = {
    "STRING": pa.string(),
    "BIGINT": pa.int64(),
    "INT": pa.int32(),
    "SMALLINT": pa.int16(),
    "TINYINT": pa.int8(),
    "FLOAT": pa.float32(),
}
"""Hive type -> Arrow type of the listener's output columns (the same as its ``ARROW_TYPES``)."""

# A field Python's csv (strict, excel dialect) and Arrow's CSV parser both read the same way: unquoted
# without quote, comma or line break, or fully quoted with doubled quotes inside and nothing after.
_FIELD = r'(?:[^",\r\n\x00]*|"(?:[^"\r\n\x00]|"")*")'
_WELL_FORMED = rf"^{_FIELD}(?:,{_FIELD})*$"
_DECIMAL = r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIME = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"


def _all(mask: Any) -> bool:
    return bool(pc.all(mask).as_py()) if len(mask) else True


def _any(mask: Any) -> bool:
    return bool(pc.any(mask).as_py()) if len(mask) else False


def lines_body(lines: Any) -> bytes | None:
    """The lines of an INLINE message, each ended by ``\\n``, if each is one plain record on one line.

    ``None`` when a line is null, the first or last is empty, one holds a ``\\r`` or a NUL, starts with
    a byte order mark, is not UTF-8, or has quoting the two parsers could read differently: then its
    records and line numbers are the row path's business (a blank line or a line break inside a line
    makes :func:`typed_columns` refuse the body). ``lines`` is a list of UTF-8 ``bytes`` (as the
    listener decodes them), a list of strings or an Arrow string array.
    """
    if isinstance(lines, pa.Array):
        if len(lines) == 0 or lines.null_count:
            return None
        offsets = pa.array([0, len(lines)], pa.int32())
        joined = pc.binary_join(pa.ListArray.from_arrays(offsets, lines.cast(pa.string())), "\n")
        body: str | bytes = joined[0].as_py() + "\n"
    else:
        if not lines:
            return None
        try:  # a final empty item ends the last line too, in the same join
            body = b"\n".join([*lines, b""]) if isinstance(lines[0], bytes) else "\n".join([*lines, ""])
        except TypeError:  # a null line, or strings and bytes mixed
            return None
    return _plain_body(body)


def text_body(text: str | bytes) -> bytes | None:
    """A CSV text (staged, or a v2 INLINE message's) as UTF-8 ending with ``\\n``, if every physical
    line is one plain record.

    ``None`` when it is empty, starts or ends with a blank line, has a ``\\r`` (line numbering), a NUL,
    a byte order mark, or a quoted field that spans lines or is quoted ambiguously (a blank line inside
    makes :func:`typed_columns` refuse it). ``text`` may be the file's bytes as read: they are then
    neither decoded (the CSV parse checks that they are UTF-8) nor copied, as a text ending with its
    line feed is already a body (a line feed is only added to one without).
    """
    if isinstance(text, bytes):
        return _plain_body(text if text.endswith(b"\n") else text + b"\n")
    return _plain_body(text if text.endswith("\n") else text + "\n")


def _plain_body(body: str | bytes) -> bytes | None:
    """``body`` (its lines each ended by ``\\n``) as UTF-8 if each line may be one plain record, else
    ``None``.

    Whole-text searches (C speed) rather than a regex per line. The final line feed stays: Arrow's
    CSV reader ends the last record there and adds no row, so no caller copies a text to drop it. A
    blank line or a line holding a line break is left to :func:`typed_columns`: Arrow reads a blank
    line as a row of empty fields, which every table refuses (an integer column, or the proxy's date
    check), a row with too few fields fails the parse, and the row count must equal the unit's
    (scanning the body for them too cost about 6% of the typing; ``b"\\n\\n" in body`` alone takes 18 ms
    per 19 MB, line feeds being everywhere). Only a body with a quote pays for the per-line check of
    its quoting (and, as bytes, for a UTF-8 check; the CSV parse checks the others). A string holding
    surrogate escapes (bytes that were not UTF-8, see
    :func:`spot_operators.listener_rows.staged_text`) is ``None`` too: the row path names the bytes.
    """
    try:
        data = body.encode("utf-8") if isinstance(body, str) else body
    except UnicodeEncodeError:
        return None
    # Empty, a blank first or last line, or (never from the callers above) no final line feed.
    if data.startswith((b"\n", codecs.BOM_UTF8)) or data.endswith(b"\n\n") or not data.endswith(b"\n"):
        return None
    if b"\r" in data or b"\x00" in data:
        return None
    if b'"' in data:
        try:
            lines = pc.split_pattern(pa.array([data], type=pa.string()), "\n").flatten()
        except pa.ArrowInvalid:  # not UTF-8
            return None
        if not _all(pc.match_substring_regex(lines, _WELL_FORMED)):  # the final "" matches too
            return None
    return data


def _parse(body: bytes, names: list[str]) -> pa.Table | None:
    try:
        return pa_csv.read_csv(
            io.BytesIO(body),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pa_csv.ParseOptions(
                delimiter=",",
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None


def _integers(column: Any, hive_type: str, may_hold_hex: bool = True) -> Any | None:
    """``column`` cast to the Hive type's Arrow type, or ``None`` if a value is not a plain integer.

    Arrow's string to integer cast accepts exactly the row path's ``-?[0-9]+`` within the type's
    range (it refuses the others, as the row path does) plus a ``0x``/``0X`` hexadecimal form, which
    is refused here (``may_hold_hex``: the body holds an ``x`` or ``X`` somewhere); a regex per value
    would cost four times as much. Like the row path, it refuses anything longer than 21 characters
    (leading zeros).
    """
    if len(column) and pc.max(pc.binary_length(column)).as_py() > 21:
        return None
    if may_hold_hex and (_any(pc.starts_with(column, "0x")) or _any(pc.starts_with(column, "0X"))):
        return None
    try:
        return pc.cast(column, ARROW_TYPES[hive_type])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _floats(column: Any) -> Any | None:
    if not _all(pc.match_substring_regex(column, _DECIMAL)):
        return None
    numbers = pc.cast(column, pa.float64())  # then to float32, as the row path's Python floats are
    largest = pc.max(pc.abs(numbers)).as_py()
    if largest is None or not largest <= FLOAT_MAX:
        return None
    return pc.cast(numbers, pa.float32())


def _epoch_hours(epochs: Any) -> list[Any] | None:
    bounds = pc.min_max(epochs)
    if not (0 < bounds["min"].as_py() and bounds["max"].as_py() <= _MAX_EPOCH):
        return None
    times = pc.cast(epochs, pa.timestamp("s"))  # no time zone: the fields are UTC's
    return [
        pc.cast(pc.year(times), pa.int16()),
        pc.cast(pc.month(times), pa.int8()),
        pc.cast(pc.day(times), pa.int8()),
        pc.cast(pc.hour(times), pa.int8()),
    ]


def _proxy_hours(p_date: Any, p_time: Any) -> list[Any] | None:
    if not (_all(pc.match_substring_regex(p_date, _DATE)) and _all(pc.match_substring_regex(p_time, _TIME))):
        return None
    for day in pc.unique(p_date).to_pylist():  # few distinct days: check them as the row path does
        try:
            date(int(day[:4]), int(day[5:7]), int(day[8:10]))
        except ValueError:
            return None
    return [
        pc.utf8_slice_codeunits(p_date, 0, 4),
        pc.utf8_slice_codeunits(p_date, 5, 7),
        pc.utf8_slice_codeunits(p_date, 8, 10),
        pc.utf8_slice_codeunits(p_time, 0, 2),
    ]


def typed_columns(data_type: str, body: bytes, rows: int) -> pa.Table | None:
    """Typed columns and partition of ``body`` (``rows`` records, one per line, each line ended by
    ``\\n``), or ``None``.

    ``body`` comes from :func:`lines_body` or :func:`text_body`. The table has the Hive table's columns
    then its partition columns, in the listener's Arrow types; ``None`` means "type it row by row".
    """
    spec = table(data_type)
    names = list(spec.column_names)
    parsed = _parse(body, names)
    if parsed is None or parsed.num_rows != rows or parsed.num_columns != spec.width:
        return None
    columns: list[Any] = []
    # Two single-byte searches of the body (memchr) instead of two scans per integer column: most
    # bodies hold no "x" at all (searching for "0x" itself costs more than the scans).
    may_hold_hex = b"x" in body or b"X" in body
    for name, hive_type in spec.columns:
        column = parsed.column(name).combine_chunks()
        if hive_type == "STRING":
            typed = column
        elif hive_type in INT_RANGES:
            typed = _integers(column, hive_type, may_hold_hex)
        elif hive_type == "FLOAT":
            typed = _floats(column)
        else:
            return None
        if typed is None:
            return None
        columns.append(typed)
    if data_type == "proxy":
        partition = _proxy_hours(columns[0], columns[1])
    else:
        partition = _epoch_hours(columns[1])  # unix_tstamp, BIGINT, for flow and dns
    if partition is None:
        return None
    fields = [pa.field(n, ARROW_TYPES[t]) for n, t in (*spec.columns, *spec.partitions)]
    return pa.Table.from_arrays([*columns, *partition], schema=pa.schema(fields))


def typed_lines(data_type: str, lines: Any) -> pa.Table | None:
    """Typed columns of an INLINE message's lines, or ``None`` (type them row by row)."""
    body = lines_body(lines)
    return None if body is None else typed_columns(data_type, body, len(lines))


def typed_text(data_type: str, text: str | bytes) -> pa.Table | None:
    """Typed columns of a CSV text (a staged CSV's or a v2 INLINE message's; its bytes or a string),
    or ``None`` (type it with ``csv_records``).

    ``None`` too for a text holding bytes that are not UTF-8 (bytes that do not decode, or surrogate
    escapes, see :func:`spot_operators.listener_rows.staged_text`): the row path quarantines just
    their records.
    """
    body = text_body(text)
    return None if body is None else typed_columns(data_type, body, body.count(b"\n"))
