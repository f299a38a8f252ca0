"""Write small, valid pcap files with DNS traffic using only :mod:`struct` (no dpkt/scapy dependency).

Tests need captures with exact, known contents (IPv6, DNS over TCP, odd names, hour boundaries) that no
public sample has. Checksums are computed for real so tshark sees well-formed packets.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

LINKTYPE_ETHERNET = 1
PCAP_MAGIC_USEC = 0xA1B2C3D4
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
PROTO_TCP = 6
PROTO_UDP = 17
TYPE_A = 1
TYPE_CNAME = 5
TYPE_AAAA = 28
CLASS_IN = 1


@dataclass(frozen=True)
class Answer:
    """One resource record of a response: ``rdata`` is already wire-encoded."""

    name: Sequence[bytes]
    rtype: int
    rdata: bytes
    rclass: int = CLASS_IN
    ttl: int = 300


def labels(name: str) -> list[bytes]:
    """``"a.b.c"`` -> ``[b"a", b"b", b"c"]``; build label lists by hand for dots or tabs inside labels."""
    return [part.encode() for part in name.split(".") if part]


def encode_name(name_labels: Sequence[bytes]) -> bytes:
    """Uncompressed DNS wire name (each label length-prefixed, then the root label)."""
    out = b""
    for label in name_labels:
        assert 0 < len(label) < 64, label
        out += bytes([len(label)]) + label
    return out + b"\x00"


def a_answer(name_labels: Sequence[bytes], address: str) -> Answer:
    return Answer(name_labels, TYPE_A, ipaddress.IPv4Address(address).packed)


def aaaa_answer(name_labels: Sequence[bytes], address: str) -> Answer:
    return Answer(name_labels, TYPE_AAAA, ipaddress.IPv6Address(address).packed)


def cname_answer(name_labels: Sequence[bytes], target: Sequence[bytes]) -> Answer:
    return Answer(name_labels, TYPE_CNAME, encode_name(target))


def dns_response(
    txid: int,
    qname: Sequence[bytes],
    qtype: int,
    answers: Sequence[Answer] = (),
    rcode: int = 0,
) -> bytes:
    """A DNS response message (QR=1, RD=1, RA=1) with one question and the given answers."""
    flags = 0x8000 | 0x0100 | 0x0080 | (rcode & 0xF)
    message = struct.pack("!HHHHHH", txid, flags, 1, len(answers), 0, 0)
    message += encode_name(qname) + struct.pack("!HH", qtype, CLASS_IN)
    for answer in answers:
        message += encode_name(answer.name)
        message += struct.pack("!HHIH", answer.rtype, answer.rclass, answer.ttl, len(answer.rdata))
        message += answer.rdata
    return message


def dns_query(txid: int, qname: Sequence[bytes], qtype: int) -> bytes:
    """A DNS query (QR=0): must never become a row."""
    return (
        struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + encode_name(qname) + struct.pack("!HH", qtype, 1)
    )


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, pseudo: bytes) -> bytes:
    length = 8 + len(payload)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    checksum = _checksum(pseudo + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, checksum) + payload


def _tcp(sport: int, dport: int, payload: bytes, pseudo: bytes, seq: int) -> bytes:
    """A PSH|ACK segment carrying one DNS message with its 2-byte length prefix (RFC 1035 4.2.2)."""
    data = struct.pack("!H", len(payload)) + payload
    offset_flags = (5 << 12) | 0x18  # 20-byte header, PSH|ACK
    header = struct.pack("!HHIIHHHH", sport, dport, seq, 1, offset_flags, 65535, 0, 0)
    checksum = _checksum(pseudo + header + data)
    return struct.pack("!HHIIHHHH", sport, dport, seq, 1, offset_flags, 65535, checksum, 0) + data


def _ethernet(ethertype: int, payload: bytes) -> bytes:
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ethertype) + payload


def ipv4_frame(src: str, dst: str, proto: int, sport: int, dport: int, dns: bytes, seq: int = 1000) -> bytes:
    """Ethernet + IPv4 + UDP or TCP frame carrying ``dns``."""
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    l4_len = 8 + len(dns) if proto == PROTO_UDP else 20 + 2 + len(dns)
    pseudo = s + d + struct.pack("!BBH", 0, proto, l4_len)
    l4 = _udp(s, d, sport, dport, dns, pseudo) if proto == PROTO_UDP else _tcp(sport, dport, dns, pseudo, seq)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0x4000, 64, proto, 0, s, d)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return _ethernet(ETHERTYPE_IPV4, header + l4)


def ipv6_frame(src: str, dst: str, proto: int, sport: int, dport: int, dns: bytes, seq: int = 1000) -> bytes:
    """Ethernet + IPv6 + UDP or TCP frame carrying ``dns``."""
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    l4_len = 8 + len(dns) if proto == PROTO_UDP else 20 + 2 + len(dns)
    pseudo = s + d + struct.pack("!I3xB", l4_len, proto)
    l4 = _udp(s, d, sport, dport, dns, pseudo) if proto == PROTO_UDP else _tcp(sport, dport, dns, pseudo, seq)
    header = struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, 64, s, d)
    return _ethernet(ETHERTYPE_IPV6, header + l4)


def pcap_bytes(packets: Iterable[tuple[float, bytes]]) -> bytes:
    """Classic little-endian microsecond pcap: global header then (timestamp, frame) records."""
    out = struct.pack("<IHHiIII", PCAP_MAGIC_USEC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)
    for when, frame in packets:
        seconds = int(when)
        micros = round((when - seconds) * 1_000_000)
        out += struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame
    return out


def write_pcap(path: Path, packets: Iterable[tuple[float, bytes]]) -> Path:
    path.write_bytes(pcap_bytes(packets))
    return path
