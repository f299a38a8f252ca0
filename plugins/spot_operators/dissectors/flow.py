"""NetFlow dissector: an nfcapd file -> Spot ``flow`` rows, through stock nfdump 1.7.1.

Spot ran a patched nfdump whose CSV had exactly its 27 fields. This runs Debian's stock nfdump with an
explicit ``-o fmt:`` string (the default ``-o csv`` column set changes between releases) and validates
every line it prints: nfdump writes warnings such as ``Skip unknown record type 9`` on stdout, between
the flows. A line becomes a :class:`Row` (the 28 FLOW columns, partitioned by its own UTC hour) or a
:class:`QuarantinedLine` with the reason; nothing is dropped silently.

Choices, all checked against nfdump 1.7.1 itself (see tests/unit/test_flow_dissector.py):

* treceived is ``%trr``, the time the collector received the flow (Spot's patched nfdump printed
  ``r->received``), read as epoch seconds so no time zone is involved; ``%ts`` is first seen, not it.
  Spot floored it to whole seconds (``received / 1000``); so does this. A record with receive time 0
  (damaged, or written without the receive-time extension) is quarantined, not put in 1970.
* tdur is last seen minus first seen, in milliseconds, from ``%ts``/``%te`` printed in UTC. nfdump's own
  ``%td`` subtracts unsigned integers and prints ``18446744073709540.000`` when an exporter reports
  last < first (668 of the 3018 flows of the reference sample), and ``%ter`` prints wrong
  milliseconds; so neither is used. Such a duration comes out negative, as the record says.
* dir: nfdump 1.7.1 prints ``%dir`` as ``I`` (ingress, NetFlow v9 DIRECTION 0) or ``E`` (egress, 1);
  Spot's column holds the number, so ``I`` -> 0 and ``E`` -> 1. nfdump's own ``-o csv`` agrees.
* proto: ``-N`` makes ``%pr`` numeric; the name comes from nfdump 1.7.1's own table (``TCP``,
  ``UDP``, ``ICMP``, ``ICMP6``, ``GRE`` ...), and numbers it has no name for stay numbers.
* dport: for ICMP and ICMPv6 nfdump prints ``type.code``; the column gets ``type * 256 + code``, the
  NetFlow convention that Spot's nfdump and nfdump's ``-o csv`` print.
* flag: nfdump 1.7.1's 8-character string (``CEUAPRSF`` or ``.``), e.g. ``...AP.S.``; Spot's 1.6-based
  nfdump printed 6 characters (no C and E).
* Numbers must fit their Hive column (INT is signed 32-bit): a 32-bit AS number above 2147483647
  is quarantined rather than wrapped.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from spot_operators.rows import HourPartition, QuarantinedLine, Row
from spot_operators.tables import FLOW
from spot_operators.tools import ToolError, run_tool, stream_tool

SEPARATOR = "|"
"""Field separator in the fmt string: no nfdump field value (numbers, addresses, flags) contains it."""

NFDUMP_TOKENS: tuple[str, ...] = (
    "%trr",  # received by the collector, epoch seconds with ms  -> treceived, unix_tstamp, tr*
    "%ts",  # first seen, UTC (TZ=UTC)                           -> tdur (with %te)
    "%te",  # last seen, UTC                                     -> tdur
    "%sa",  # source address (full IPv6 with -6)                 -> sip
    "%da",  # destination address                                -> dip
    "%sp",  # source port                                        -> sport
    "%dp",  # destination port, or ICMP type.code                -> dport
    "%pr",  # protocol number (with -N)                          -> proto
    "%flg",  # TCP flags string                                  -> flag
    "%fwd",  # forwarding status                                 -> fwd
    "%stos",  # source ToS                                       -> stos
    "%ipkt",  # input packets                                    -> ipkt
    "%ibyt",  # input bytes                                      -> ibyt
    "%opkt",  # output packets                                   -> opkt
    "%obyt",  # output bytes                                     -> obyt
    "%in",  # input SNMP interface                               -> input
    "%out",  # output SNMP interface                             -> output
    "%sas",  # source AS                                         -> sas
    "%das",  # destination AS                                    -> das
    "%dtos",  # destination ToS                                  -> dtos
    "%dir",  # direction, I or E                                 -> dir
    "%ra",  # router (exporter) address                          -> rip
)

NFDUMP_FORMAT = "fmt:" + SEPARATOR.join(NFDUMP_TOKENS)
"""``fmt:%trr|%ts|%te|%sa|%da|%sp|%dp|%pr|%flg|%fwd|%stos|%ipkt|%ibyt|%opkt|%obyt|%in|%out|%sas|%das|%dtos|%dir|%ra``"""

NFDUMP_ENV: dict[str, str] = {"TZ": "UTC"}
"""nfdump prints %ts/%te in local time; pinning UTC keeps durations right across DST changes."""

DIRECTIONS: dict[str, int] = {"I": 0, "E": 1}
"""nfdump 1.7.1's %dir letter -> Spot's dir number (NetFlow v9 DIRECTION: 0 ingress, 1 egress)."""

NFFILE_MAGIC = b"\x0c\xa5"
"""The first two bytes of every nfcapd file (0xA50C, little-endian), then the layout version."""

_HEADER_SIZES = {1: 140, 2: 40}  # nfdump's file_header_t (1.6 "v1" layout) and fileHeaderV2_t (1.7 "v2")

NO_FLOWS_NOTICE = "No matching flows"
"""What nfdump prints (even with -q) when a file holds no flow: a readable empty file's whole output."""

# nfdump 1.7.1's protocol names (output_util.c protoList), index = IP protocol number. Entries that are
# numbers are printed as numbers by nfdump too; protocols 138..255 have no name.
_PROTOCOL_NAMES: tuple[str, ...] = tuple(
    "0 ICMP IGMP GGP IPIP ST TCP CBT EGP IGP BBN NVPII PUP ARGUS ENCOM XNET CHAOS UDP MUX DCN HMP PRM XNS "
    "Trnk1 Trnk2 Leaf1 Leaf2 RDP IRTP ISO-4 NETBK MFESP MEINP DCCP 3PC IDPR XTP DDP IDPR TP++ IL IPv6 SDRP "
    "Rte6 Frag6 IDRP RSVP GRE MHRP BNA ESP AH INLSP SWIPE NARP MOBIL TLSP SKIP ICMP6 NOHE6 OPTS6 HOST CFTP "
    "NET SATNT KLAN RVD IPPC FS SATM VISA IPCV CPNX CPHB WSN PVP BSATM SUNND WBMON WBEXP ISOIP VMTP SVMTP "
    "VINES TTP NSIGP DGP TCF EIGRP OSPF S-RPC LARP MTP AX.25 OS MICP SCCSP ETHIP ENCAP 99 GMTP IFMP PNNI "
    "PIM ARIS SCPS QNX A/N IPcmp SNP CpqPP IPXIP VRRP PGM 0hop L2TP DDX IATP STP SRP UTI SMP SM PTP ISIS4 "
    "FIRE CRTP CRUDP 128 IPLT SPS PIPE SCTP FC 134 MHEAD UDP-L MPLS".split()
)

_ICMP_PROTOCOLS = frozenset({1, 58})
_FLAGS = re.compile(r"[C.][E.][U.][A.][P.][R.][S.][F.]")
_EPOCH_MS = re.compile(r"(\d+)\.(\d{3})")
_HIVE_MAX = {"INT": 2**31 - 1, "BIGINT": 2**63 - 1}
_COLUMN_TYPE = dict(FLOW.columns)
_COLUMN_MAX = {name: _HIVE_MAX[hive_type] for name, hive_type in FLOW.columns if hive_type in _HIVE_MAX}


class _Reject(ValueError):
    """A field that cannot become its column; the message is the quarantine reason."""


def protocol_name(number: int) -> str:
    """Spot's proto text for an IP protocol number, as nfdump 1.7.1 names it (else the number)."""
    return _PROTOCOL_NAMES[number] if number < len(_PROTOCOL_NAMES) else str(number)


def nfdump_args(path: str | Path, extra_args: Sequence[str] = ()) -> list[str]:
    """The nfdump command for one file: no header/summary (-q), plain numbers (-N), full IPv6 (-6).

    ``-C none`` ignores any nfdump.conf, which could otherwise enrich AS numbers from a GeoDB. Put a
    filter expression (e.g. ``proto tcp``) last in ``extra_args``.
    """
    return ["nfdump", "-C", "none", "-r", str(path), "-q", "-N", "-6", "-o", NFDUMP_FORMAT, *extra_args]


def _unsigned(column: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise _Reject(f"{column}={text!r} is not a non-negative integer")
    value = int(text)
    if len(text) > 9 and value > _COLUMN_MAX[column]:  # 9 digits fit any column
        raise _Reject(f"{column}={value} does not fit Hive {_COLUMN_TYPE[column]}")
    return value


def _small(column: str, text: str, maximum: int) -> int:
    value = _unsigned(column, text)
    if value > maximum:
        raise _Reject(f"{column}={value} is above {maximum}")
    return value


def _address(column: str, text: str) -> str:
    try:  # inet_pton (C) is ~10x faster than ipaddress and as strict for what nfdump prints
        socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except OSError:
        raise _Reject(f"{column}={text!r} is not an IP address") from None
    return text


def _millis(column: str, text: str) -> int:
    """``YYYY-MM-DD hh:mm:ss.mmm`` (as nfdump prints %ts/%te) -> milliseconds since 0001-01-01."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise _Reject(f"{column}={text!r} is not a time") from None
    if t.tzinfo is not None or len(text) != 23:
        raise _Reject(f"{column}={text!r} is not a time as nfdump prints it")
    return (t.toordinal() * 86400 + t.hour * 3600 + t.minute * 60 + t.second) * 1000 + t.microsecond // 1000


def _duration(first: str, last: str) -> str:
    ms = _millis("last seen", last) - _millis("first seen", first)
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    return f"{sign}{ms // 1000}.{ms % 1000:03d}"


def _dport(text: str, proto: int) -> str:
    if proto in _ICMP_PROTOCOLS:
        icmp_type, dot, icmp_code = text.partition(".")
        if not dot:
            raise _Reject(f"dport={text!r} is not ICMP type.code")
        return str(_small("dport", icmp_type, 255) * 256 + _small("dport", icmp_code, 255))
    return str(_small("dport", text, 65535))


class _ReceivedCache:
    """The treceived-derived columns and partition of the last second seen: flows arrive in bursts."""

    def __init__(self) -> None:
        self.second = -1
        self.columns: tuple[str, ...] = ()
        self.partition = HourPartition(1970, 1, 1, 0)

    def get(self, text: str) -> tuple[tuple[str, ...], HourPartition]:
        match = _EPOCH_MS.fullmatch(text)
        if match is None:
            raise _Reject(f"treceived={text!r} is not epoch seconds")
        second = int(match.group(1))
        if second != self.second:
            if second == 0:
                raise _Reject("treceived is 0: the record has no receive time")
            t = datetime.fromtimestamp(second, tz=UTC)
            self.columns = (
                f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}",
                str(second),
                *(str(v) for v in (t.year, t.month, t.day, t.hour, t.minute, t.second)),
            )
            self.partition = HourPartition.of_epoch(second)
            self.second = second
        return self.columns, self.partition


def _fields(values: list[str], received: _ReceivedCache) -> tuple[tuple[str, ...], HourPartition]:
    (
        trr,
        ts,
        te,
        sa,
        da,
        sp,
        dp,
        pr,
        flg,
        fwd,
        stos,
        ipkt,
        ibyt,
        opkt,
        obyt,
        inp,
        out,
        sas,
        das,
        dtos,
        dr,
        ra,
    ) = (v.strip() for v in values)
    time_columns, partition = received.get(trr)
    proto = _small("proto", pr, 255)
    if _FLAGS.fullmatch(flg) is None:
        raise _Reject(f"flag={flg!r} is not an nfdump TCP flags string")
    direction = DIRECTIONS.get(dr)
    if direction is None:
        raise _Reject(f"dir={dr!r} is not I or E")
    fields = (
        *time_columns,
        _duration(ts, te),
        _address("sip", sa),
        _address("dip", da),
        str(_small("sport", sp, 65535)),
        _dport(dp, proto),
        protocol_name(proto),
        flg,
        str(_small("fwd", fwd, 255)),
        str(_small("stos", stos, 255)),
        str(_unsigned("ipkt", ipkt)),
        str(_unsigned("ibyt", ibyt)),
        str(_unsigned("opkt", opkt)),
        str(_unsigned("obyt", obyt)),
        str(_unsigned("input", inp)),
        str(_unsigned("output", out)),
        str(_unsigned("sas", sas)),
        str(_unsigned("das", das)),
        str(_small("dtos", dtos, 255)),
        str(direction),
        _address("rip", ra),
    )
    return fields, partition


# ----------------------------------------------------------------------------------------------------
# Fast path. One regex matches a whole line as nfdump 1.7.1 prints it (values padded with spaces around
# the '|') and accepts only values that the checks above would accept *and* print unchanged: canonical
# ASCII numbers (no sign, no leading zero; nfdump prints none) short enough to need no range check
# (INT 9 digits, BIGINT 18), 0-255 fields spelt out, times with hour 00-23. What the regex cannot
# settle goes through the same calls as above (received.get, _millis, inet_pton), with their results
# cached: treceived and %ts/%te by the second, addresses that passed inet_pton. A line the fast path
# does not take, or has any doubt about (a port above 65535, a 10-digit INT, an ICMP type.code that is
# not two bytes, ...), goes to _fields, which so alone decides every quarantine and its reason;
# tests/unit/test_flow_dissector.py checks that both paths give the same rows.

_BYTE = "25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]"  # 0..255, canonical
_FAST_PATTERNS = {
    "trr": r"([0-9]+)\.[0-9]{3}",
    "time": r"([0-9]{4}-[0-9]{2}-[0-9]{2} (?:[01][0-9]|2[0-3]):[0-9]{2}:[0-9]{2})\.([0-9]{3})",
    "address": "([0-9A-Fa-f.:]+)",
    "port": "(0|[1-9][0-9]{0,4})",
    "dport": r"(0|[1-9][0-9]{0,4}|[0-9]{1,3}\.[0-9]{1,3})",
    "proto": "([0-9]{1,3})",
    "flag": f"({_FLAGS.pattern})",
    "byte": f"({_BYTE})",
    "INT": "(0|[1-9][0-9]{0,8})",  # <= 999999999 < 2**31 - 1
    "BIGINT": "(0|[1-9][0-9]{0,17})",  # < 10**18 < 2**63 - 1
    "dir": "([IE])",
}
_FAST_FIELDS = (  # NFDUMP_TOKENS' kinds
    "trr", "time", "time", "address", "address", "port", "dport", "proto", "flag", "byte", "byte",
    *(_COLUMN_TYPE[c] for c in ("ipkt", "ibyt", "opkt", "obyt", "input", "output", "sas", "das")),
    "byte", "dir", "address",
)  # fmt: skip
_FAST_LINE = re.compile(" *" + r" *\| *".join(_FAST_PATTERNS[kind] for kind in _FAST_FIELDS) + " *")
_PROTOCOLS_BY_TEXT = {str(n): (n, protocol_name(n)) for n in range(256)}
_BYTE_TEXTS = frozenset(str(n) for n in range(256))
_DIRECTION_TEXTS = {letter: str(number) for letter, number in DIRECTIONS.items()}
_CACHE_SIZE = 1 << 16  # entries per fast-path cache before it starts over


def flow_rows_from_nfdump(lines: Iterable[str], source: str) -> Iterator[Row | QuarantinedLine]:
    """Turn nfdump lines printed with :data:`NFDUMP_FORMAT` into rows, quarantining any other line.

    ``line_no`` counts nfdump's output lines from 1. A lone ``No matching flows`` first line is nfdump
    saying the file has no flows and yields nothing; anywhere else it is quarantined like any junk.
    """
    received = _ReceivedCache()
    width = len(NFDUMP_TOKENS)
    pending_notice: tuple[int, str] | None = None
    # fast-path state (see above)
    fullmatch = _FAST_LINE.fullmatch
    inet_pton, af_inet, af_inet6 = socket.inet_pton, socket.AF_INET, socket.AF_INET6
    last_second = ""  # treceived's epoch second that time_columns and partition are for
    time_columns: tuple[str, ...] = ()
    partition = received.partition
    seconds: dict[str, int] = {}  # "YYYY-MM-DD hh:mm:ss" -> _millis of it
    addresses: set[str] = set()  # addresses inet_pton accepted
    for line_no, line in enumerate(lines, 1):
        if pending_notice is not None:
            yield QuarantinedLine(source, *pending_notice, "nfdump notice followed by more output")
            pending_notice = None
        match = fullmatch(line)
        if match is not None:
            (
                second, ts, ts_ms, te, te_ms, sa, da, sp, dp, pr, flg, fwd, stos,
                ipkt, ibyt, opkt, obyt, inp, out, sas, das, dtos, dr, ra,
            ) = match.groups()  # fmt: skip
            try:
                if second != last_second:
                    time_columns, partition = received.get(second + ".000")
                    last_second = second
                first = seconds.get(ts)
                if first is None:
                    if len(seconds) >= _CACHE_SIZE:
                        seconds.clear()
                    first = seconds[ts] = _millis("first seen", ts + ".000")
                last = seconds.get(te)
                if last is None:
                    if len(seconds) >= _CACHE_SIZE:
                        seconds.clear()
                    last = seconds[te] = _millis("last seen", te + ".000")
                if sa not in addresses or da not in addresses or ra not in addresses:
                    for address in (sa, da, ra):
                        inet_pton(af_inet6 if ":" in address else af_inet, address)
                    if len(addresses) >= _CACHE_SIZE:
                        addresses.clear()
                    addresses.update((sa, da, ra))
                proto, name = _PROTOCOLS_BY_TEXT[pr]
                if len(sp) == 5 and sp > "65535":
                    raise _Reject
                if proto in _ICMP_PROTOCOLS:
                    icmp_type, dot, icmp_code = dp.partition(".")
                    if not (dot and icmp_type in _BYTE_TEXTS and icmp_code in _BYTE_TEXTS):
                        raise _Reject
                    dp = str(int(icmp_type) * 256 + int(icmp_code))
                elif "." in dp or (len(dp) == 5 and dp > "65535"):
                    raise _Reject
            except (_Reject, OSError, KeyError):
                pass  # the detailed path below decides
            else:
                ms = (last + int(te_ms)) - (first + int(ts_ms))
                tdur = f"{ms // 1000}.{ms % 1000:03d}" if ms >= 0 else f"-{-ms // 1000}.{-ms % 1000:03d}"
                fields = (
                    *time_columns, tdur, sa, da, sp, dp, name, flg, fwd, stos,
                    ipkt, ibyt, opkt, obyt, inp, out, sas, das, dtos, _DIRECTION_TEXTS[dr], ra,
                )  # fmt: skip
                yield Row(fields, partition, line_no)
                continue
        values = line.split(SEPARATOR)
        if len(values) != width:
            if line_no == 1 and line.strip() == NO_FLOWS_NOTICE:
                pending_notice = (line_no, line)
                continue
            reason = f"not a flow line: {len(values)} '{SEPARATOR}'-separated fields, expected {width}"
            yield QuarantinedLine(source, line_no, line, reason)
            continue
        try:
            fields, row_partition = _fields(values, received)
        except _Reject as exc:
            yield QuarantinedLine(source, line_no, line, str(exc))
            continue
        yield Row(fields, row_partition, line_no)


def verify_flow_file(path: str | Path, *, timeout: float = 600) -> None:
    """Raise ValueError or ToolError, naming the file, unless ``path`` is a complete nfcapd file.

    nfdump 1.7.1 ``-r`` exits 0 and prints only ``No matching flows`` for an empty file, a truncated
    one (``appendix offset error``) or a text file (``bad magic``, ``Short read``), the reason going to
    stderr, which a streamed run cannot see. ``nfdump -v`` checks the header and every block, but it
    too can exit 0: on a file shorter than its header it reads uninitialised memory (passes or
    segfaults at random), and with a cut-off appendix it prints ``File corrupted`` on stderr. So: the
    header must be there, ``-v`` must exit 0, and its stderr must be empty.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")
    with path.open("rb") as f:
        head = f.read(_HEADER_SIZES[1])
    if not head:
        raise ValueError(f"{path}: empty file (0 bytes), not an nfcapd file")
    layout = int.from_bytes(head[2:4], "little") if head[:2] == NFFILE_MAGIC else 2
    needed = _HEADER_SIZES.get(layout, _HEADER_SIZES[2])
    if len(head) < needed:
        raise ValueError(f"{path}: {len(head)} bytes, shorter than an nfcapd header ({needed}); truncated?")
    try:
        checked = run_tool(["nfdump", "-v", str(path)], subject=path, timeout=timeout, env=NFDUMP_ENV)
    except ToolError as exc:
        if exc.reason.startswith("timed out"):
            raise
        reason = f"not a complete nfcapd file (nfdump -v: {exc.reason})"
        raise ToolError("nfdump", path, reason, exc.stderr_tail) from None
    if checked.stderr.strip():
        reason = "not a complete nfcapd file (nfdump -v exited 0 but reported errors)"
        raise ToolError("nfdump", path, reason, checked.stderr)


def dissect_flow_file(
    path: str | Path, *, timeout: float = 600, extra_args: Sequence[str] = ()
) -> Iterator[Row | QuarantinedLine]:
    """Verify ``path`` with ``nfdump -v``, then stream its flows as rows or quarantined lines.

    A generator: the file is checked, and errors (ValueError, ToolError naming the file) are raised,
    when iteration starts; nfdump's exit code is checked after the last line. ``timeout`` applies to
    each of the two nfdump runs.
    """
    path = Path(path)
    verify_flow_file(path, timeout=timeout)
    with stream_tool(nfdump_args(path, extra_args), subject=path, timeout=timeout, env=NFDUMP_ENV) as lines:
        yield from flow_rows_from_nfdump(lines, str(path))
