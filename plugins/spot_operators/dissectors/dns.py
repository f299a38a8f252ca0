"""DNS dissector: a pcap capture -> editcap chunks -> tshark fields -> rows of Spot's ``dns`` table.

Spot's pipeline, with its faults fixed:

* Exit codes of editcap and tshark are checked (:mod:`spot_operators.tools`); an empty, corrupt or
  truncated capture fails loudly, naming the file, instead of producing a partial or empty result.
* Fields are tab separated. Spot used ``-E separator=,`` although ``frame.time`` itself contains a comma
  (``Oct 20, 2016 15:23:01...``). A tab cannot collide: frame.time, numbers and addresses never hold one,
  and tshark prints control characters inside DNS names escaped (a tab in a label comes out as ``\\t``).
* Both tools run with ``TZ=UTC``: tshark renders ``frame.time`` and editcap names chunks in the process'
  local time zone (``-t ud`` does not change the ``frame.time`` field), so without it the text would depend
  on the machine. Partitions come from ``frame.time_epoch``, per row, in UTC.
* IPv6 responses are kept (``ipv6.src``/``ipv6.dst`` when IPv4 is absent); Spot silently lost them.
* Header lines never become rows and every other line is validated: it becomes a :class:`Row` or a
  :class:`QuarantinedLine` with the reason, never nothing.

Two-step use (the caller keeps the chunk paths, e.g. to store them in HDFS as Spot did)::

    chunks = split_pcap(pcap, work_dir, pkt_num, timeout=600)
    for item in dissect_dns_chunks(chunks, origin=pcap, timeout=600): ...

or one step, :func:`dissect_dns_file`, which does exactly that and leaves the chunks in ``work_dir``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from spot_operators.rows import HourPartition, QuarantinedLine, Row
from spot_operators.tables import DNS
from spot_operators.tools import ToolError, run_tool, stream_tool

TOOL_ENV: Mapping[str, str] = {"TZ": "UTC"}
"""Merged over the environment of editcap and tshark: both format times in the local time zone."""

RESPONSE_FILTER = "dns.flags.response == 1"

TSHARK_FIELDS: tuple[str, ...] = (
    "frame.time",
    "frame.time_epoch",
    "frame.len",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "dns.resp.name",
    "dns.resp.type",
    "dns.resp.class",
    "dns.flags.rcode",
    "dns.a",
)
"""Spot's tshark fields plus ipv6.src/ipv6.dst, in the order tshark prints them."""

SEPARATOR = "\t"
HEADER = SEPARATOR.join(TSHARK_FIELDS)
"""What ``-E header=y`` would print; such a line is skipped wherever it appears, never made a row."""

CHUNK_FORMAT = "pcapng"
"""editcap writes pcapng by default whatever the input; say so in the chunk names rather than hide it."""

DEFAULT_PKT_NUM = 650000
"""Spot's ``pkt_num``: packets per editcap chunk."""

_EPOCH = re.compile(r"\d+(?:\.\d+)?")
_UINT = re.compile(r"\d+")


def _path_arg(path: str | os.PathLike[str]) -> str:
    """A path as one argv entry that no tool can read as an option (``-x.pcap``) or stdin (``-``)."""
    text = os.fspath(path)
    return f"./{text}" if text.startswith("-") else text


# --- splitting -------------------------------------------------------------------------------------


def editcap_split_args(
    pcap: str | os.PathLike[str], out_prefix: str | os.PathLike[str], pkt_num: int
) -> list[str]:
    """editcap arguments splitting ``pcap`` into chunks of ``pkt_num`` packets.

    editcap names the chunks ``<prefix stem>_<NNNNN>_<YYYYMMDDhhmmss><suffix>`` (index from 0, time of the
    chunk's first packet in the local zone: run it with :data:`TOOL_ENV`). The format is pinned to pcapng,
    which is editcap's default anyway and holds any input losslessly.
    """
    if isinstance(pkt_num, bool) or not isinstance(pkt_num, int) or pkt_num < 1:
        raise ValueError(f"pkt_num must be a positive integer, got {pkt_num!r}")
    return ["editcap", "-F", CHUNK_FORMAT, "-c", str(pkt_num), _path_arg(pcap), _path_arg(out_prefix)]


def _chunk_pattern(stem: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(stem)}_(\d{{5,}})_\d{{14}}\.{CHUNK_FORMAT}")


def _chunks_on_disk(out_dir: Path, stem: str) -> list[tuple[int, Path]]:
    pattern = _chunk_pattern(stem)
    found = []
    for entry in out_dir.iterdir():
        match = pattern.fullmatch(entry.name)
        if match is not None:
            found.append((int(match.group(1)), entry))
    return sorted(found)


def split_pcap(
    path: str | os.PathLike[str], out_dir: str | os.PathLike[str], pkt_num: int, *, timeout: float
) -> list[Path]:
    """Split ``path`` with ``editcap -c pkt_num`` into ``out_dir``; return the chunk paths in packet order.

    editcap always runs, even when the capture holds ``pkt_num`` packets or fewer: the result is then one
    chunk, so callers see one shape, and editcap reads the whole file, so a corrupt or truncated capture
    fails here (ToolError naming the file) before any row is produced. editcap exits 2 on an unreadable
    file header but 0 on a capture cut short or with a damaged record (it only prints the error): any
    stderr output counts as a failure. A valid capture with no packets gives no chunks (``[]``, no rows).
    An empty (0-byte) file is not a capture but most likely a half-written one: ValueError (editcap and
    tshark both accept it silently).

    Chunks left in ``out_dir`` by an earlier failed attempt on the same file are removed first (retries are
    idempotent), and the chunks of a failed split are removed, so a partial split can never be used.
    """
    source = Path(path)
    if source.stat().st_size == 0:  # editcap and tshark both accept an empty file silently (exit 0)
        raise ValueError(f"{source} is empty (0 bytes): not a capture file")
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    stem = source.stem
    prefix = target / f"{stem}.{CHUNK_FORMAT}"
    if prefix.resolve() == source.resolve():
        raise ValueError(f"{source} would be overwritten: split it into another directory than its own")
    args = editcap_split_args(source, prefix, pkt_num)
    for _, stale in _chunks_on_disk(target, stem):
        stale.unlink()
    try:
        result = run_tool(args, subject=source, timeout=timeout, env=TOOL_ENV)
        if result.stderr.strip():
            # editcap 4.0 exits 0 on a read error after the file header (a capture cut short, a damaged
            # record): it prints the error and keeps the packets read so far. Its exit code is not enough.
            raise ToolError("editcap", source, "exit code 0 but it reported an error", result.stderr)
    except BaseException:
        for _, partial in _chunks_on_disk(target, stem):
            partial.unlink(missing_ok=True)
        raise
    finally:
        # With no packet read, editcap writes one empty capture under the bare prefix name: not a chunk.
        prefix.unlink(missing_ok=True)
    chunks = _chunks_on_disk(target, stem)
    if [index for index, _ in chunks] != list(range(len(chunks))):
        raise ValueError(f"editcap chunks of {source} in {target} are not numbered 0..n-1: {chunks}")
    return [chunk for _, chunk in chunks]


# --- tshark ----------------------------------------------------------------------------------------


def tshark_args(pcap: str | os.PathLike[str]) -> list[str]:
    """tshark arguments printing one tab-separated line of :data:`TSHARK_FIELDS` per DNS response packet.

    ``-n``: no name resolution (addresses stay numeric, no lookups). ``occurrence=f``: first value of a
    repeated field (first answer, first A record), as Spot did. No header: the parser would skip it anyway.
    The two ``-o`` pin TCP/DNS reassembly on, so a user preference cannot lose DNS-over-TCP responses.
    """
    args = [
        "tshark",
        "-n",
        "-r",
        _path_arg(pcap),
        "-o",
        "tcp.desegment_tcp_streams:TRUE",
        "-o",
        "dns.desegment_dns_messages:TRUE",
        "-Y",
        RESPONSE_FILTER,
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "quote=n",
        "-E",
        "header=n",
        "-E",
        "occurrence=f",
    ]
    for field in TSHARK_FIELDS:
        args += ["-e", field]
    return args


def _address(text: str, what: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not an IP address") from None
    return text


def _parse(line: str) -> tuple[tuple[str, ...], HourPartition]:
    """One tshark line -> (fields in :data:`DNS` column order, partition); ValueError says what is wrong."""
    parts = line.split(SEPARATOR)
    if len(parts) != len(TSHARK_FIELDS):
        raise ValueError(f"expected {len(TSHARK_FIELDS)} tab-separated fields, got {len(parts)}")
    (frame_time, epoch, frame_len, ip_src, ip_dst, ip6_src, ip6_dst, name, qtype, qclass, rcode, answer) = (
        parts
    )
    if not frame_time.endswith(" UTC"):
        raise ValueError(f"frame.time {frame_time!r} is not in UTC (tshark must run with TZ=UTC)")
    if not _EPOCH.fullmatch(epoch):
        raise ValueError(f"frame.time_epoch {epoch!r} is not a non-negative number")
    if not _UINT.fullmatch(frame_len):
        raise ValueError(f"frame.len {frame_len!r} is not an integer")
    if ip_src or ip_dst:  # IPv4 (the outer header when IPv6 is tunnelled in IPv4)
        src, dst = _address(ip_src, "ip.src"), _address(ip_dst, "ip.dst")
    elif ip6_src or ip6_dst:
        src, dst = _address(ip6_src, "ipv6.src"), _address(ip6_dst, "ipv6.dst")
    else:
        raise ValueError("neither ip.src/ip.dst nor ipv6.src/ipv6.dst is present")
    if qtype and not _UINT.fullmatch(qtype):  # empty when the response has no answer (e.g. NXDOMAIN)
        raise ValueError(f"dns.resp.type {qtype!r} is not an integer")
    if not _UINT.fullmatch(rcode):
        raise ValueError(f"dns.flags.rcode {rcode!r} is not an integer")
    seconds = epoch.split(".", 1)[0]
    by_column = {
        "frame_time": frame_time,
        "unix_tstamp": seconds,
        "frame_len": frame_len,
        "ip_dst": dst,
        "ip_src": src,
        "dns_qry_name": name,
        "dns_qry_class": qclass,
        "dns_qry_type": qtype,
        "dns_qry_rcode": rcode,
        "dns_a": answer,
    }
    return tuple(by_column[column] for column in DNS.column_names), HourPartition.of_epoch(int(seconds))


def dns_rows_from_tshark(lines: Iterable[str], source: str) -> Iterator[Row | QuarantinedLine]:
    """Turn tshark output lines (from :func:`tshark_args`) into DNS rows or quarantined lines.

    ``line_no`` is the 1-based line number in ``lines``; ``source`` names where they came from (file and
    chunk) in quarantine records. Header lines are skipped; every other line yields exactly one item.
    """
    for line_no, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if line == HEADER:
            continue
        try:
            fields, partition = _parse(line)
        except ValueError as exc:
            yield QuarantinedLine(source=source, line_no=line_no, raw=line, reason=str(exc))
        else:
            yield Row(fields=fields, partition=partition, line_no=line_no)


# --- whole files -----------------------------------------------------------------------------------


def chunk_source(chunk: Path, origin: str | os.PathLike[str] | None = None) -> str:
    """The ``source`` of a chunk's quarantined lines: the original capture's name and the chunk's name."""
    return f"{Path(origin).name} chunk {chunk.name}" if origin is not None else chunk.name


def dissect_dns_chunks(
    chunks: Sequence[Path], *, timeout: float, origin: str | os.PathLike[str] | None = None
) -> Iterator[Row | QuarantinedLine]:
    """Run tshark on each chunk in order and yield its rows; line numbers restart in every chunk.

    ``timeout`` applies to each tshark run, including the time the consumer spends between reads. A tshark
    failure raises :class:`~spot_operators.tools.ToolError` after that chunk's lines were yielded: the
    caller must then treat the whole file as failed (discard what it staged), never keep part of it.
    """
    for chunk in chunks:
        with stream_tool(tshark_args(chunk), subject=chunk, timeout=timeout, env=TOOL_ENV) as lines:
            yield from dns_rows_from_tshark(lines, chunk_source(chunk, origin))


def dissect_dns_file(
    path: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str],
    pkt_num: int = DEFAULT_PKT_NUM,
    timeout: float = 600,
) -> Iterator[Row | QuarantinedLine]:
    """Split ``path`` into ``work_dir`` (:func:`split_pcap`), then dissect the chunks in order.

    The split runs now, so an empty, corrupt or truncated capture raises from this call, before any row;
    rows are then produced lazily. The chunks stay in ``work_dir`` (the caller cleans it up); a caller that
    needs their paths calls :func:`split_pcap` and :func:`dissect_dns_chunks` itself.
    """
    chunks = split_pcap(path, work_dir, pkt_num, timeout=timeout)
    return dissect_dns_chunks(chunks, timeout=timeout, origin=path)
