"""Blue Coat / ProxySG access-log lines -> rows of Spot's ``proxy`` table, or quarantine.

Why not Spot's parser: Spot split every line with ``shlex`` (slow) into a fixed 27-field order and
trusted it; real ProxySG logs declare their own order in ``#Fields:`` headers and do not even match
those (see ``shared/data/README.md``). Here each data line is mapped by the layout that applies to it
and anything that does not fit goes to a :class:`QuarantinedLine` with the reason. Nothing is dropped
silently: rows + quarantined lines = data lines (lines that are neither blank nor ``#`` metadata).

Layout detection, per data line, by token count:

* After a ``#Fields:`` header, the header's own field list, mapped by (case-insensitive) name. A new
  ``#Fields:`` line replaces it for the lines that follow.
* Documented header discrepancy: ProxySG's standard "main" format writes a quoted ``cs(User-Agent)``
  after ``cs(Referer)`` while its ``#Fields:`` line omits it. When the header is exactly
  :data:`PROXYSG_MAIN_WITHOUT_USER_AGENT`, a line with one more token is read as
  :data:`PROXYSG_MAIN_FIELDS`; a line with exactly the header's count is read as the header says.
* Without any header: 27 tokens = Spot's fixed Blue Coat order (:data:`SPOT_BLUECOAT_FIELDS`),
  24 tokens = ProxySG main (:data:`PROXYSG_MAIN_FIELDS`).
* Extra trailing tokens: the real sample has one main-format line with three extra fields after
  ``s-ip``. When no layout has the line's token count, or the one that has rejects the line (a
  header-less main line with three extras has 27 tokens, like Spot's order, and fails as such), the
  longest layout that ends with ``s-ip`` and has an IP address at that position is used and the extra
  tokens are ignored. The row is kept and the fact is logged (one warning per source: how many lines,
  the first line number). The IP anchor is what makes this safe: an unquoted user agent, which shifts
  every later token, does not leave an IP there. Anything else is quarantined.

Decisions (see the module constants and :func:`dissect_proxy_file`):

* Fields a layout does not log become ``"-"``: Spot emitted the token as logged, ProxySG writes
  ``-`` for "no value", Spot's schema says null user agents and content types become ``"-"``, and
  the fulluri rule already treats ``-`` as empty. ``cs-uri-extension`` is not derived from the path.
* ``time-taken``, ``sc-bytes`` and ``cs-bytes`` (Hive INT) must be ASCII digits within the signed
  32-bit range; ``-``, a missing field or an overflow quarantines the line (Hive would store NULL or
  a wrapped number). Values are written back in canonical form (``"007"`` -> ``"7"``).
* ``date``/``time`` must be ``YYYY-MM-DD`` and ``hh:mm:ss`` and a real calendar time; they are kept
  as logged in ``p_date``/``p_time``. The partition is that date and hour taken as UTC: ProxySG logs
  in UTC unless an administrator switched the access log to local time (then convert upstream).
* Quoted fields: a token starting with ``"`` runs to the next ``"`` followed by whitespace or the end
  of the line. Inside it ``""`` (W3C extended log format) and ``\\"`` (what Spot's shlex accepted)
  stand for ``"`` and ``\\\\`` for ``\\``; other backslashes are kept. A ``"`` inside an unquoted token
  is kept literally. A quote that opens and never closes properly quarantines the line.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from operator import itemgetter
from os import PathLike
from pathlib import Path
from typing import Final

from spot_operators.rows import HourPartition, QuarantinedLine, Row
from spot_operators.tables import PROXY

log = logging.getLogger(__name__)

SPOT_BLUECOAT_FIELDS: Final[tuple[str, ...]] = tuple(
    "date time time-taken c-ip cs-username cs-auth-group x-exception-id sc-filter-result cs-categories "
    "cs(Referer) sc-status s-action cs-method rs(Content-Type) cs-uri-scheme cs-host cs-uri-port "
    "cs-uri-path cs-uri-query cs-uri-extension cs(User-Agent) s-ip sc-bytes cs-bytes x-virus-id "
    "x-bluecoat-application-name x-bluecoat-application-operation".split()
)
"""Spot's fixed Blue Coat order (27 fields), used for header-less 27-token lines."""

PROXYSG_MAIN_FIELDS: Final[tuple[str, ...]] = tuple(
    "date time time-taken c-ip sc-status s-action sc-bytes cs-bytes cs-method cs-uri-scheme cs-host "
    "cs-uri-port cs-uri-path cs-uri-query cs-username cs-auth-group s-supplier-name rs(Content-Type) "
    "cs(Referer) cs(User-Agent) sc-filter-result cs-categories x-virus-id s-ip".split()
)
"""ProxySG's standard "main" access-log format (24 fields), as its data lines really are."""

PROXYSG_MAIN_WITHOUT_USER_AGENT: Final[tuple[str, ...]] = tuple(
    f for f in PROXYSG_MAIN_FIELDS if f != "cs(User-Agent)"
)
"""The 23-field ``#Fields:`` line ProxySG writes for "main" although its lines carry a user agent."""

# Source field (lower case) of each Hive column except fulluri, in PROXY's column order.
_COLUMN_SOURCES: Final[tuple[tuple[str, str], ...]] = (
    ("p_date", "date"),
    ("p_time", "time"),
    ("clientip", "c-ip"),
    ("host", "cs-host"),
    ("reqmethod", "cs-method"),
    ("useragent", "cs(user-agent)"),
    ("resconttype", "rs(content-type)"),
    ("duration", "time-taken"),
    ("username", "cs-username"),
    ("authgroup", "cs-auth-group"),
    ("exceptionid", "x-exception-id"),
    ("filterresult", "sc-filter-result"),
    ("webcat", "cs-categories"),
    ("referer", "cs(referer)"),
    ("respcode", "sc-status"),
    ("action", "s-action"),
    ("urischeme", "cs-uri-scheme"),
    ("uriport", "cs-uri-port"),
    ("uripath", "cs-uri-path"),
    ("uriquery", "cs-uri-query"),
    ("uriextension", "cs-uri-extension"),
    ("serverip", "s-ip"),
    ("scbytes", "sc-bytes"),
    ("csbytes", "cs-bytes"),
    ("virusid", "x-virus-id"),
    ("bcappname", "x-bluecoat-application-name"),
    ("bcappoper", "x-bluecoat-application-operation"),
)
if (*(c for c, _ in _COLUMN_SOURCES), "fulluri") != PROXY.column_names:  # pragma: no cover
    raise RuntimeError("proxy dissector columns are out of step with tables.PROXY")

_ABSENT: Final = "-"
_HIVE_INT_MAX: Final = 2**31 - 1
_I_DATE, _I_TIME, _I_HOST, _I_PATH, _I_QUERY = 0, 1, 3, 18, 19
_INT_COLUMNS: Final[tuple[tuple[int, str], ...]] = ((7, "time-taken"), (22, "sc-bytes"), (23, "cs-bytes"))

# The ASCII characters str.split() separates on, so the regex and the split fast path agree.
_WS: Final = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_TOKEN = re.compile(rf'"((?:[^"\\]|""|\\.)*)"(?=[{_WS}]|\Z)|([^{_WS}"][^{_WS}]*)|(")')
_UNESCAPE = re.compile(r'""|\\(["\\])')
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_FIELDS_PREFIX: Final = "#Fields:"


class ProxyFileError(Exception):
    """A proxy file that cannot give a single row: empty, or every data line quarantined.

    Raised so the caller fails the file loudly instead of recording an empty success.
    """

    def __init__(self, path: str, message: str, quarantined: int = 0) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.quarantined = quarantined


class _BadLine(Exception):
    """Internal: why a data line cannot become a row (becomes the quarantine reason)."""


@dataclass(frozen=True)
class _Layout:
    """A field list compiled to an index per Hive column; missing fields point at a ``-`` sentinel."""

    name: str
    fields: tuple[str, ...]
    getter: Callable[[list[str]], tuple[str, ...]]
    missing: tuple[str, ...]
    """Required source fields (date, time, int columns) this layout does not log."""
    anchored: bool
    """Ends with ``s-ip``: extra trailing tokens are allowed when that token is an IP address."""

    @classmethod
    def of(cls, name: str, fields: Iterable[str]) -> _Layout:
        names = tuple(f.lower() for f in fields)
        first: dict[str, int] = {}
        for i, f in enumerate(names):
            first.setdefault(f, i)
        # -1 is the "-" sentinel appended to every token list before the getter runs.
        getter = itemgetter(*(first.get(source, -1) for _, source in _COLUMN_SOURCES))
        required = ("date", "time", *(src for _, src in _INT_COLUMNS))
        missing = tuple(f for f in required if f not in first)
        return cls(name, names, getter, missing, bool(names) and names[-1] == "s-ip")

    def __len__(self) -> int:
        return len(self.fields)


SPOT_BLUECOAT: Final = _Layout.of("Spot Blue Coat 27-field order", SPOT_BLUECOAT_FIELDS)
PROXYSG_MAIN: Final = _Layout.of("ProxySG main (24 fields, with cs(User-Agent))", PROXYSG_MAIN_FIELDS)
_HEADERLESS: Final[dict[int, _Layout]] = {len(SPOT_BLUECOAT): SPOT_BLUECOAT, len(PROXYSG_MAIN): PROXYSG_MAIN}


def _layouts_for_header(fields: tuple[str, ...], line_no: int) -> dict[int, _Layout]:
    """Token count -> layout after a ``#Fields:`` line, including the main-format UA discrepancy."""
    layouts = {len(fields): _Layout.of(f"#Fields header of line {line_no}", fields)}
    if tuple(f.lower() for f in fields) == tuple(f.lower() for f in PROXYSG_MAIN_WITHOUT_USER_AGENT):
        layouts[len(PROXYSG_MAIN)] = PROXYSG_MAIN
    return layouts


def tokenize(line: str) -> list[str]:
    """Split a Blue Coat line into fields: whitespace separated, ``"..."`` may hold spaces.

    Raises ``ValueError`` on a quote that opens a field and never closes it properly. Fast path:
    ``str.split`` on the quotes (well-formed lines without escapes); anything unusual takes the regex.
    """
    if not line.isascii():
        return _tokenize_slow(line)  # str.split() would also split on non-ASCII spaces (U+00A0...)
    if '"' not in line:
        return line.split()
    parts = line.split('"')
    n = len(parts)
    if n % 2 == 0 or "\\" in line or (parts[0] and not parts[0][-1].isspace()):
        return _tokenize_slow(line)
    tokens = parts[0].split()
    for i in range(1, n, 2):
        after = parts[i + 1]
        if after:
            if not after[0].isspace() or (i + 2 < n and not after[-1].isspace()):
                return _tokenize_slow(line)
        elif i + 2 < n:  # two quoted parts touch: an escaped quote or a malformed line
            return _tokenize_slow(line)
        tokens.append(parts[i])
        tokens.extend(after.split())
    return tokens


def _tokenize_slow(line: str) -> list[str]:
    """The general tokenizer: escapes inside quotes, quotes inside bare tokens, unbalanced quotes."""
    tokens: list[str] = []
    for m in _TOKEN.finditer(line):
        quoted, bare, stray = m.groups()
        if stray is not None:
            raise ValueError(f"unbalanced double quote at column {m.start() + 1}")
        if bare is not None:
            tokens.append(bare)
        elif '"' in quoted or "\\" in quoted:
            tokens.append(_UNESCAPE.sub(lambda e: e.group(1) or '"', quoted))
        else:
            tokens.append(quoted)
    return tokens


@lru_cache(maxsize=4096)
def _hour_partition(day: str, hour: str) -> HourPartition:
    """Validated UTC hour partition of a ``YYYY-MM-DD`` date and an ``hh`` hour (cached: few distinct)."""
    m = _DATE.fullmatch(day)
    if m is None:
        raise _BadLine(f"bad date {day!r}: expected YYYY-MM-DD")
    y, mo, d = (int(g) for g in m.groups())
    try:
        date(y, mo, d)
    except ValueError as e:
        raise _BadLine(f"bad date {day!r}: {e}") from None
    return HourPartition(y, mo, d, int(hour))


def _hive_int(value: str, name: str) -> str:
    """Canonical text of a non-negative Hive INT (``"007"`` -> ``"7"``), or why not."""
    if not (value.isdigit() and value.isascii()):
        raise _BadLine(f"{name} is not an integer: {value[:40]!r}")
    if value[0] == "0":
        value = value.lstrip("0") or "0"
    if len(value) > 10 or (len(value) == 10 and int(value) > _HIVE_INT_MAX):
        raise _BadLine(f"{name} {value[:40]} exceeds Hive INT range")
    return value


def _row_fields(values: tuple[str, ...], layout: _Layout) -> tuple[tuple[str, ...], HourPartition]:
    """The 28 column values and partition of a mapped line, or :class:`_BadLine`."""
    if layout.missing:
        raise _BadLine(f"{layout.name} does not log required field(s) {', '.join(layout.missing)}")
    t = values[_I_TIME]
    if _TIME.fullmatch(t) is None:
        raise _BadLine(f"bad time {t[:40]!r}: expected hh:mm:ss")
    partition = _hour_partition(values[_I_DATE], t[:2])
    out = list(values)
    for i, name in _INT_COLUMNS:
        out[i] = _hive_int(values[i], name)
    path, query = values[_I_PATH], values[_I_QUERY]
    fulluri = values[_I_HOST] + (path if len(path) > 1 else "") + (query if len(query) > 1 else "")
    out.append(fulluri)
    return tuple(out), partition


def _with_extras(tokens: list[str], count: int, layouts: dict[int, _Layout]) -> _Layout | None:
    """The longest ``s-ip``-anchored layout that the first ``count`` tokens extend (module docstring)."""
    for layout in sorted(layouts.values(), key=len, reverse=True):
        if layout.anchored and count > len(layout):
            try:
                ipaddress.ip_address(tokens[len(layout) - 1])
            except ValueError:
                continue
            return layout
    return None


def _map_tokens(
    tokens: list[str], layouts: dict[int, _Layout]
) -> tuple[tuple[str, ...], HourPartition, bool]:
    """Fields, partition and "extra trailing tokens ignored" of a tokenized line, or :class:`_BadLine`.

    The layout with exactly this many fields is tried first. If there is none, or it rejects the
    line, an ``s-ip``-anchored shorter layout is tried (a header-less main line plus three extras
    has 27 tokens, like Spot's order, and fails as such on its non-integer byte counts).
    """
    count = len(tokens)
    tokens.append(_ABSENT)  # index -1: where a layout's missing fields point
    exact = layouts.get(count)
    if exact is not None:
        try:
            return (*_row_fields(exact.getter(tokens), exact), False)
        except _BadLine as e:
            first_error: _BadLine | None = e
    else:
        first_error = None
    shorter = _with_extras(tokens, count, layouts)
    if shorter is not None:
        try:
            return (*_row_fields(shorter.getter(tokens), shorter), True)
        except _BadLine:
            if first_error is None:
                raise
    if first_error is not None:
        raise first_error
    expected = ", ".join(f"{n} ({lay.name})" for n, lay in sorted(layouts.items()))
    raise _BadLine(f"{count} fields fit no known layout; expected {expected}")


def proxy_rows_from_lines(lines: Iterable[str], source: str) -> Iterator[Row | QuarantinedLine]:
    """Rows (and quarantine) of Spot's proxy table from log lines; line numbers count from 1.

    Pure: no I/O. Lines may keep their ``\\n``/``\\r\\n``. Blank lines and ``#`` lines are not data;
    ``#Fields:`` lines set the layout of the lines after them.
    """
    layouts: dict[int, _Layout] = _HEADERLESS
    extra_lines, first_extra = 0, 0
    for line_no, line in enumerate(lines, 1):
        text = line.rstrip("\r\n")
        if line_no == 1 and text.startswith("\ufeff"):
            text = text[1:]
        stripped = text.strip(_WS)
        if not stripped:
            continue
        if stripped[0] == "#":
            if stripped.startswith(_FIELDS_PREFIX):
                fields = tuple(stripped[len(_FIELDS_PREFIX) :].split())
                layouts = _layouts_for_header(fields, line_no)
                log.debug("%s:%d: layout now %d fields", source, line_no, len(fields))
            continue
        try:
            try:
                tokens = tokenize(text)
            except ValueError as e:
                raise _BadLine(str(e)) from None
            fields, partition, extra = _map_tokens(tokens, layouts)
        except _BadLine as e:
            yield QuarantinedLine(source=source, line_no=line_no, raw=text, reason=str(e))
            continue
        if extra:
            extra_lines += 1
            first_extra = first_extra or line_no
        yield Row(fields=fields, partition=partition, line_no=line_no)
    if extra_lines:
        log.warning(
            "%s: %d line(s) carried extra fields after s-ip beyond their layout; the extra fields "
            "were ignored (first at line %d)",
            source,
            extra_lines,
            first_extra,
        )


@dataclass
class _Latin1Notes:
    """Which lines were not UTF-8: a count, the first few for the warning, and the latest one."""

    count: int = 0
    first: list[int] = field(default_factory=list)
    last: int = 0

    def add(self, line_no: int) -> None:
        self.count += 1
        self.last = line_no
        if len(self.first) < 20:
            self.first.append(line_no)


def _decoded_lines(path: Path, notes: _Latin1Notes) -> Iterator[str]:
    """Lines of ``path`` as text: UTF-8, else latin-1 (lossless: every byte maps; line noted)."""
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                notes.add(line_no)
                yield raw.decode("latin-1")


def dissect_proxy_file(
    path: str | PathLike[str], *, fail_without_rows: bool = True
) -> Iterator[Row | QuarantinedLine]:
    """Rows and quarantine of one collector file; reads bytes and handles CRLF and non-UTF-8 lines.

    A line that is not valid UTF-8 is decoded as latin-1, not dropped and not replaced with U+FFFD:
    the text stays valid Unicode for Parquet and ``text.encode("latin-1")`` gives back the exact bytes.
    Each such line is noted: a warning lists them, and a quarantine reason says so.

    Raises :class:`ProxyFileError` for a 0-byte file (before yielding) and, when ``fail_without_rows``,
    after yielding every quarantined line of a file that gave no row at all, so the caller can store
    the quarantine and still fail the file. A file of only ``#`` headers or blank lines yields nothing
    and does not raise: it is a valid log that recorded no request. ``OSError`` (missing file...)
    propagates as is; it names the file.
    """
    p = Path(path)
    source = str(p)
    if p.stat().st_size == 0:
        raise ProxyFileError(source, "file is empty (0 bytes); expected a ProxySG access log")
    notes = _Latin1Notes()
    rows = quarantined = 0
    first_reason = ""
    # proxy_rows_from_lines yields a line's item before it reads the next line: notes.last is current.
    for item in proxy_rows_from_lines(_decoded_lines(p, notes), source):
        if isinstance(item, Row):
            rows += 1
        else:
            quarantined += 1
            if item.line_no == notes.last:
                item = QuarantinedLine(
                    item.source, item.line_no, item.raw, f"{item.reason} (not UTF-8; decoded as latin-1)"
                )
            first_reason = first_reason or f"line {item.line_no}: {item.reason}"
        yield item
    if notes.count:
        log.warning(
            "%s: %d line(s) are not valid UTF-8 and were decoded as latin-1: lines %s",
            source,
            notes.count,
            ", ".join(map(str, notes.first)) + (" ..." if notes.count > len(notes.first) else ""),
        )
    if fail_without_rows and rows == 0 and quarantined:
        raise ProxyFileError(
            source,
            f"no row in the file; all {quarantined} data line(s) quarantined (first: {first_reason})",
            quarantined,
        )
