"""Genuine nfcapd files for the flow dissector tests: NetFlow v5/v9 datagrams built with ``struct``
and sent over loopback to a real ``nfcapd`` (nfdump 1.7.1), which writes the file.

The flow times (first/last seen) come from the datagrams, so any date can be generated; the receive
time is nfcapd's wall clock when the datagram arrives, as in production.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

V5_MAX_RECORDS = 30
V5_UPTIME_MS = 1_000_000_000  # the exporter booted ~11.6 days before it exports
V9_UPTIME_MS = 1_000_000_000


@dataclass(frozen=True)
class Flow:
    """One flow as an exporter reports it. ``icmp`` is type * 256 + code (v5 carries it in dport)."""

    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    first_ms: int  # epoch milliseconds
    last_ms: int
    flags: int = 0
    stos: int = 0
    dtos: int = 0
    fwd: int = 0
    direction: int = 0
    ipkt: int = 1
    ibyt: int = 64
    opkt: int = 0
    obyt: int = 0
    input: int = 0
    output: int = 0
    sas: int = 0
    das: int = 0
    icmp: int = 0


def v5_datagrams(flows: list[Flow], *, export_ms: int, engine_id: int = 0) -> list[bytes]:
    """NetFlow v5 packets (at most 30 records each); times are uptime offsets from ``export_ms``."""
    packets = []
    for start in range(0, len(flows), V5_MAX_RECORDS):
        chunk = flows[start : start + V5_MAX_RECORDS]
        header = struct.pack(
            "!HHIIIIBBH",
            5,
            len(chunk),
            V5_UPTIME_MS,
            export_ms // 1000,
            (export_ms % 1000) * 1_000_000,
            start,
            0,
            engine_id,
            0,
        )
        records = b"".join(
            struct.pack(
                "!4s4s4sHHIIIIHHBBBBHHBBH",
                ipaddress.IPv4Address(f.src).packed,
                ipaddress.IPv4Address(f.dst).packed,
                b"\0" * 4,
                f.input,
                f.output,
                f.ipkt,
                f.ibyt,
                V5_UPTIME_MS - (export_ms - f.first_ms),
                V5_UPTIME_MS - (export_ms - f.last_ms),
                f.sport,
                f.icmp if f.proto in (1, 58) else f.dport,
                0,
                f.flags,
                f.proto,
                f.stos,
                f.sas,
                f.das,
                0,
                0,
                0,
            )
            for f in chunk
        )
        packets.append(header + records)
    return packets


# (IANA element id, length) of the v9 templates: 256 for IPv4 flows, 257 for IPv6 flows.
_V9_COMMON = [
    (32, 2),  # ICMP_TYPE
    (7, 2),  # L4_SRC_PORT
    (11, 2),  # L4_DST_PORT
    (4, 1),  # PROTOCOL
    (6, 1),  # TCP_FLAGS
    (5, 1),  # SRC_TOS
    (55, 1),  # DST_TOS
    (89, 1),  # FORWARDING_STATUS
    (61, 1),  # DIRECTION
    (1, 8),  # IN_BYTES
    (2, 8),  # IN_PKTS
    (23, 8),  # OUT_BYTES
    (24, 8),  # OUT_PKTS
    (10, 4),  # INPUT_SNMP
    (14, 4),  # OUTPUT_SNMP
    (16, 4),  # SRC_AS
    (17, 4),  # DST_AS
    (22, 4),  # FIRST_SWITCHED
    (21, 4),  # LAST_SWITCHED
]
_V9_TEMPLATES = {4: (256, [(8, 4), (12, 4), *_V9_COMMON]), 6: (257, [(27, 16), (28, 16), *_V9_COMMON])}


def _flowset(flowset_id: int, body: bytes) -> bytes:
    pad = -len(body) % 4
    return struct.pack("!HH", flowset_id, 4 + len(body) + pad) + body + b"\0" * pad


def _v9_record(f: Flow, export_ms: int) -> bytes:
    export_ms -= export_ms % 1000  # the v9 header has whole seconds only
    return (
        ipaddress.ip_address(f.src).packed
        + ipaddress.ip_address(f.dst).packed
        + struct.pack(
            "!HHHBBBBBBQQQQIIIIII",
            f.icmp,
            f.sport,
            f.dport,
            f.proto,
            f.flags,
            f.stos,
            f.dtos,
            f.fwd,
            f.direction,
            f.ibyt,
            f.ipkt,
            f.obyt,
            f.opkt,
            f.input,
            f.output,
            f.sas,
            f.das,
            V9_UPTIME_MS - (export_ms - f.first_ms),
            V9_UPTIME_MS - (export_ms - f.last_ms),
        )
    )


def v9_datagram(flows: list[Flow], *, export_ms: int, source_id: int = 42, sequence: int = 0) -> bytes:
    """One NetFlow v9 packet: both templates, then a data flowset per address family."""
    templates = b"".join(
        struct.pack("!HH", template_id, len(fields)) + b"".join(struct.pack("!HH", *f) for f in fields)
        for template_id, fields in _V9_TEMPLATES.values()
    )
    flowsets = [_flowset(0, templates)]
    for family, (template_id, _) in _V9_TEMPLATES.items():
        members = [f for f in flows if ipaddress.ip_address(f.src).version == family]
        if members:
            flowsets.append(_flowset(template_id, b"".join(_v9_record(f, export_ms) for f in members)))
    header = struct.pack(
        "!HHIIII", 9, len(_V9_TEMPLATES) + len(flows), V9_UPTIME_MS, export_ms // 1000, sequence, source_id
    )
    return header + b"".join(flowsets)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector:
    """A real nfcapd on a loopback port, writing into ``directory``; use as a context manager."""

    def __init__(self, directory: Path, *, ident: str = "spot-test") -> None:
        self.directory = directory
        self.ident = ident
        self.port = _free_udp_port()
        self.log = directory.parent / f"nfcapd-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._markers = 0

    def __enter__(self) -> Collector:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(
                # -t 3600: one file unless the run crosses an hour; -b: loopback only.
                [
                    *("nfcapd", "-w", str(self.directory), "-p", str(self.port), "-b", "127.0.0.1"),
                    *("-t", "3600", "-I", self.ident, "-v"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_for_log("Startup nfcapd.")
        return self

    def send(self, datagram: bytes) -> None:
        self._socket.sendto(datagram, ("127.0.0.1", self.port))

    def sync(self, marker: Flow, export_ms: int) -> None:
        """Send ``marker`` from a new v5 engine id and wait until nfcapd logs it: UDP on loopback is
        processed in order, so everything sent before has been processed too."""
        self._markers += 1
        engine_id = 200 + self._markers
        self.send(v5_datagrams([marker], export_ms=export_ms, engine_id=engine_id)[0])
        self._wait_for_log(f"engine id {engine_id},")

    def _wait_for_log(self, text: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return
            assert self._proc is not None
            if self._proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"nfcapd never logged {text!r}:\n{self.log.read_text(errors='replace')}")

    def __exit__(self, *exc: object) -> None:
        self._socket.close()
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGTERM)  # nfcapd flushes and renames its file on TERM
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
                raise

    def files(self) -> list[Path]:
        """The finished files (``nfcapd.YYYYMMDDhhmm``, never ``nfcapd.current.*``)."""
        return sorted(p for p in self.directory.glob("nfcapd.*") if p.name[7:].isdigit())


def merge(files: list[Path], directory: Path, out: Path) -> Path:
    """One nfcapd file holding the flows of ``files``, written by ``nfdump -r DIR -w OUT``."""
    directory.mkdir(parents=True, exist_ok=True)
    for f in files:
        (directory / f.name).write_bytes(f.read_bytes())
    subprocess.run(["nfdump", "-r", str(directory), "-w", str(out)], check=True, capture_output=True)
    return out
