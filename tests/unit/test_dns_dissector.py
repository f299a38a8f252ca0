"""DNS dissector: real tshark and editcap on public captures and on generated ones.

Golden values come from tshark itself through other outputs than the dissector uses (the default packet
summary for counts, ``-T json`` for field values) or from how the generated capture was built, never from
the code under test.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spot_operators.dissectors.dns import (
    HEADER,
    RESPONSE_FILTER,
    TSHARK_FIELDS,
    chunk_source,
    dissect_dns_chunks,
    dissect_dns_file,
    dns_rows_from_tshark,
    editcap_split_args,
    split_pcap,
    tshark_args,
)
from spot_operators.rows import HourPartition, QuarantinedLine, Row
from spot_operators.tables import DNS
from spot_operators.tools import ToolError
from tests.unit import pcap_builder as pb

SHARED_DNS = Path(__file__).parents[3] / "shared" / "data" / "dns"
REAL_CAPTURES = ["packetq-dns.pcap", "dsc-dnso1tcp.pcap"]

pytestmark = pytest.mark.skipif(
    shutil.which("tshark") is None or shutil.which("editcap") is None, reason="tshark/editcap not installed"
)


def _split(items: list[Row | QuarantinedLine]) -> tuple[list[Row], list[QuarantinedLine]]:
    rows = [i for i in items if isinstance(i, Row)]
    bad = [i for i in items if isinstance(i, QuarantinedLine)]
    assert len(rows) + len(bad) == len(items)
    return rows, bad


def _col(row: Row, column: str) -> str:
    return row.fields[DNS.column_names.index(column)]


# --- oracles: tshark, independently of the dissector's own command -----------------------------------


def _tshark_response_count(pcap: Path) -> int:
    """``tshark -r F -Y 'dns.flags.response == 1' | wc -l``."""
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", "dns.flags.response == 1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return len(out.stdout.splitlines())


def _tshark_json_rows(pcap: Path) -> list[dict[str, str]]:
    """First value of each field per response packet, from ``tshark -T json`` (no separators involved)."""
    fields = [f for name in TSHARK_FIELDS for f in ("-e", name)]
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", "dns.flags.response == 1", "-T", "json", *fields],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC"},
    )
    packets = json.loads(out.stdout)
    return [{k: v[0] for k, v in p["_source"]["layers"].items()} for p in packets]


# --- argument lists ----------------------------------------------------------------------------------


def test_tshark_args_is_a_plain_argument_list() -> None:
    odd = "/data/x; rm -rf / $(id) `id` 'q' \"d\", a.pcap"
    args = tshark_args(odd)
    assert all(isinstance(a, str) for a in args)
    assert args[0] == "tshark"
    assert args[args.index("-r") + 1] == odd  # the path is one argument, untouched: no shell anywhere
    assert args[args.index("-Y") + 1] == RESPONSE_FILTER == "dns.flags.response == 1"
    assert args[args.index("-T") + 1] == "fields"
    options = {args[i + 1] for i, a in enumerate(args) if a == "-E"}
    assert options == {"separator=/t", "quote=n", "header=n", "occurrence=f"}
    assert [args[i + 1] for i, a in enumerate(args) if a == "-e"] == list(TSHARK_FIELDS)
    assert "-n" in args
    spot_fields = ["frame.time", "frame.time_epoch", "frame.len", "ip.src", "ip.dst", "dns.resp.name"]
    spot_fields += ["dns.resp.type", "dns.resp.class", "dns.flags.rcode", "dns.a"]
    assert set(spot_fields) | {"ipv6.src", "ipv6.dst"} == set(TSHARK_FIELDS)


def test_paths_that_look_like_options_or_stdin_stay_paths() -> None:
    assert tshark_args("-x.pcap")[tshark_args("-x.pcap").index("-r") + 1] == "./-x.pcap"
    assert tshark_args("-")[tshark_args("-").index("-r") + 1] == "./-"
    assert editcap_split_args("-in.pcap", "-out.pcapng", 5)[-2:] == ["./-in.pcap", "./-out.pcapng"]


def test_editcap_split_args() -> None:
    assert editcap_split_args(Path("/in/a b.pcap"), Path("/w/a b.pcapng"), 650000) == [
        "editcap",
        "-F",
        "pcapng",
        "-c",
        "650000",
        "/in/a b.pcap",
        "/w/a b.pcapng",
    ]


@pytest.mark.parametrize("bad", [0, -1, True, "3", 2.5])
def test_editcap_split_args_rejects_bad_pkt_num(bad: object) -> None:
    with pytest.raises(ValueError, match="pkt_num"):
        editcap_split_args("a.pcap", "a.pcapng", bad)  # type: ignore[arg-type]


# --- line parsing --------------------------------------------------------------------------------------


def _line(**overrides: str) -> str:
    values = {
        "frame.time": "Sep  8, 2017 11:02:03.123456000 UTC",
        "frame.time_epoch": "1504868523.123456000",
        "frame.len": "120",
        "ip.src": "192.0.2.53",
        "ip.dst": "192.0.2.10",
        "ipv6.src": "",
        "ipv6.dst": "",
        "dns.resp.name": "a,b.example.com",
        "dns.resp.type": "1",
        "dns.resp.class": "0x0001",
        "dns.flags.rcode": "0",
        "dns.a": "198.51.100.1",
    }
    by_keyword = {field.replace(".", "_"): field for field in TSHARK_FIELDS}
    values.update({by_keyword[k]: v for k, v in overrides.items()})
    return "\t".join(values[f] for f in TSHARK_FIELDS)


def test_frame_time_comma_does_not_break_columns() -> None:
    [row] = dns_rows_from_tshark([_line()], "f.pcap")
    assert isinstance(row, Row)
    assert dict(zip(DNS.column_names, row.fields, strict=True)) == {
        "frame_time": "Sep  8, 2017 11:02:03.123456000 UTC",
        "unix_tstamp": "1504868523",
        "frame_len": "120",
        "ip_dst": "192.0.2.10",
        "ip_src": "192.0.2.53",
        "dns_qry_name": "a,b.example.com",
        "dns_qry_class": "0x0001",
        "dns_qry_type": "1",
        "dns_qry_rcode": "0",
        "dns_a": "198.51.100.1",
    }
    assert row.partition == HourPartition(2017, 9, 8, 11)
    assert row.line_no == 1


def test_header_lines_never_become_rows() -> None:
    items = list(dns_rows_from_tshark([HEADER, _line(), HEADER, _line()], "f.pcap"))
    assert [type(i) for i in items] == [Row, Row]
    assert [i.line_no for i in items] == [2, 4]


def test_ipv6_addresses_when_ipv4_is_absent_and_ipv4_first_when_both() -> None:
    v6 = _line(ip_src="", ip_dst="", ipv6_src="2001:db8::53", ipv6_dst="2001:db8::1")
    tunnelled = _line(ipv6_src="2001:db8::53", ipv6_dst="2001:db8::1")
    rows, bad = _split(list(dns_rows_from_tshark([v6, tunnelled], "f.pcap")))
    assert bad == []
    assert (_col(rows[0], "ip_src"), _col(rows[0], "ip_dst")) == ("2001:db8::53", "2001:db8::1")
    assert (_col(rows[1], "ip_src"), _col(rows[1], "ip_dst")) == ("192.0.2.53", "192.0.2.10")


def test_response_without_answers_is_a_row_with_empty_answer_fields() -> None:
    nx = _line(dns_resp_name="", dns_resp_type="", dns_resp_class="", dns_flags_rcode="3", dns_a="")
    [row] = dns_rows_from_tshark([nx], "f.pcap")
    assert isinstance(row, Row)
    assert (_col(row, "dns_qry_name"), _col(row, "dns_qry_type"), _col(row, "dns_qry_rcode")) == ("", "", "3")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "expected 12 tab-separated fields, got 1"),
        ("Sep  8, 2017 11:02:03 UTC,1504868523,120,1.2.3.4", "got 1"),
        (_line() + "\textra", "got 13"),
        (_line(frame_time="Sep  8, 2017 13:02:03.123456000 CEST"), "not in UTC"),
        (_line(frame_time=""), "not in UTC"),
        (_line(frame_time_epoch="-5"), "frame.time_epoch"),
        (_line(frame_time_epoch=""), "frame.time_epoch"),
        (_line(frame_len="12a"), "frame.len"),
        (_line(ip_src="", ip_dst=""), "neither ip.src/ip.dst nor ipv6.src/ipv6.dst"),
        (_line(ip_dst=""), "ip.dst ''"),
        (_line(ip_src="192.0.2.999"), "ip.src '192.0.2.999'"),
        (_line(ip_src="", ip_dst="", ipv6_src="2001:db8::1"), "ipv6.dst"),
        (_line(dns_resp_type="A"), "dns.resp.type"),
        (_line(dns_flags_rcode=""), "dns.flags.rcode"),
        ('Running as user "root" and group "root". This could be dangerous.', "got 1"),
    ],
)
def test_bad_lines_are_quarantined_with_a_reason(line: str, reason: str) -> None:
    items = list(dns_rows_from_tshark([_line(), line, _line()], "cap.pcap chunk c_00001.pcapng"))
    assert [type(i) for i in items] == [Row, QuarantinedLine, Row]
    bad = items[1]
    assert isinstance(bad, QuarantinedLine)
    assert (bad.source, bad.line_no, bad.raw) == ("cap.pcap chunk c_00001.pcapng", 2, line)
    assert reason in bad.reason


# --- the public captures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_real_captures_udp_and_tcp(name: str, tmp_path: Path) -> None:
    pcap = SHARED_DNS / name
    rows, bad = _split(list(dissect_dns_file(pcap, work_dir=tmp_path)))
    assert bad == []
    assert len(rows) == 41 == _tshark_response_count(pcap)  # 41: shared/data/README.md
    assert [r.line_no for r in rows] == list(range(1, 42))  # one chunk at the default pkt_num
    expected = _tshark_json_rows(pcap)
    for row, want in zip(rows, expected, strict=True):
        got = dict(zip(DNS.column_names, row.fields, strict=True))
        assert got == {
            "frame_time": want["frame.time"],
            "unix_tstamp": want["frame.time_epoch"].split(".")[0],
            "frame_len": want["frame.len"],
            "ip_dst": want["ip.dst"],
            "ip_src": want["ip.src"],
            "dns_qry_name": want.get("dns.resp.name", ""),
            "dns_qry_class": want.get("dns.resp.class", ""),
            "dns_qry_type": want.get("dns.resp.type", ""),
            "dns_qry_rcode": want["dns.flags.rcode"],
            "dns_a": want.get("dns.a", ""),
        }
        assert row.partition == HourPartition.of_epoch(int(got["unix_tstamp"]))


def test_real_capture_spot_checks(tmp_path: Path) -> None:
    """Values read by hand from ``TZ=UTC tshark -T json`` output of the two captures."""
    udp, _ = _split(list(dissect_dns_file(SHARED_DNS / "packetq-dns.pcap", work_dir=tmp_path)))
    tcp, _ = _split(list(dissect_dns_file(SHARED_DNS / "dsc-dnso1tcp.pcap", work_dir=tmp_path)))
    assert udp[0].fields == (
        "Oct 20, 2016 15:23:01.077982000 UTC",
        "1476976981",
        "222",
        "172.17.0.10",
        "8.8.8.8",
        "google.com",
        "0x0001",
        "1",
        "0",
        "216.58.218.206",
    )
    # a PTR answer: first dns.a comes from the additional section, as with Spot's occurrence=f
    assert udp[1].fields[5:] == ("206.218.58.216.in-addr.arpa", "0x0001", "12", "0", "216.239.32.10")
    assert udp[-1].fields[:2] == ("Oct 20, 2016 15:24:26.574350000 UTC", "1476977066")
    assert {r.partition for r in udp} == {HourPartition(2016, 10, 20, 15)}
    assert tcp[0].fields == (
        "Jan 10, 2018 11:22:41.555912000 UTC",
        "1515583361",
        "112",
        "172.17.0.8",
        "8.8.8.8",
        "google.com",
        "0x0001",
        "1",
        "0",
        "216.58.211.142",
    )
    assert tcp[1].fields[2:8] == (
        "211",
        "172.17.0.8",
        "8.8.8.8",
        "206.218.58.216.in-addr.arpa",
        "0x0001",
        "12",
    )
    assert tcp[1].fields[8:] == ("0", "")  # no A record in that response
    assert Counter(_col(r, "dns_qry_type") for r in tcp) == Counter({"1": 24, "12": 17})
    assert {r.partition for r in tcp} == {HourPartition(2018, 1, 10, 11)}


def test_real_capture_split_in_chunks_loses_nothing(tmp_path: Path) -> None:
    pcap = SHARED_DNS / "dsc-dnso1tcp.pcap"  # 212 packets, DNS over TCP
    chunks = split_pcap(pcap, tmp_path, 50, timeout=60)
    assert [c.name.split("_")[1] for c in chunks] == ["00000", "00001", "00002", "00003", "00004"]
    rows, bad = _split(list(dissect_dns_chunks(chunks, timeout=60, origin=pcap)))
    whole, _ = _split(list(dissect_dns_file(pcap, work_dir=tmp_path / "whole")))
    assert bad == [] and len(rows) == 41
    assert [r.fields for r in rows] == [r.fields for r in whole]


# --- a generated capture: UDP and TCP, IPv4 and IPv6, odd names, two UTC hours ---------------------------

HOUR_22 = 1700002798.0  # 2023-11-14 22:59:58 UTC
NAME_COMMA = [b"we,ird\"na'me", b"example", b"com"]
NAME_TAB = [b"tab\there", b'"quoted"', b"example", b"com"]


@dataclass(frozen=True)
class Expected:
    when: float
    frame: bytes
    fields: tuple[str, ...] | None  # None: not a response, no row


def _generated() -> list[Expected]:
    cname_target = pb.labels("edge.example.net")
    v4c, v4s, v6c, v6s = "192.0.2.10", "192.0.2.53", "2001:db8::10", "2001:db8::53"
    udp, tcp = pb.PROTO_UDP, pb.PROTO_TCP
    packets = [
        (0.0, pb.ipv4_frame(v4c, v4s, udp, 40001, 53, pb.dns_query(1, NAME_COMMA, pb.TYPE_A)), None),
        (
            0.25,
            pb.ipv4_frame(
                v4s,
                v4c,
                udp,
                53,
                40001,
                pb.dns_response(
                    1,
                    NAME_COMMA,
                    pb.TYPE_A,
                    [pb.a_answer(NAME_COMMA, "198.51.100.1"), pb.a_answer(NAME_COMMA, "198.51.100.2")],
                ),
            ),
            (v4c, v4s, "we,ird\"na'me.example.com", "0x0001", "1", "0", "198.51.100.1"),
        ),
        (0.5, pb.ipv4_frame(v4c, v4s, tcp, 40002, 53, pb.dns_query(2, pb.labels("a.example.org"), 1)), None),
        (
            1.75,
            pb.ipv4_frame(
                v4s,
                v4c,
                tcp,
                53,
                40002,
                pb.dns_response(
                    2,
                    pb.labels("a.example.org"),
                    pb.TYPE_A,
                    [
                        pb.cname_answer(pb.labels("a.example.org"), cname_target),
                        pb.a_answer(cname_target, "203.0.113.7"),
                    ],
                ),
            ),
            (v4c, v4s, "a.example.org", "0x0001", "5", "0", "203.0.113.7"),
        ),
        (
            2.0,
            pb.ipv6_frame(v6c, v6s, udp, 40003, 53, pb.dns_query(3, pb.labels("v6.example.com"), 28)),
            None,
        ),
        (
            2.125,  # 23:00:00.125: the next hour
            pb.ipv6_frame(
                v6s,
                v6c,
                udp,
                53,
                40003,
                pb.dns_response(
                    3,
                    pb.labels("v6.example.com"),
                    pb.TYPE_AAAA,
                    [pb.aaaa_answer(pb.labels("v6.example.com"), "2001:db8::abcd")],
                ),
            ),
            (v6c, v6s, "v6.example.com", "0x0001", "28", "0", ""),
        ),
        (
            3.0,
            pb.ipv6_frame(
                v6s, v6c, tcp, 53, 40004, pb.dns_response(4, pb.labels("nx.example.net"), pb.TYPE_A, rcode=3)
            ),
            (v6c, v6s, "", "", "", "3", ""),  # no answer: Spot's dns.resp.name is empty
        ),
        (
            4.0,
            pb.ipv4_frame(
                v4s,
                v4c,
                udp,
                53,
                40005,
                pb.dns_response(5, NAME_TAB, pb.TYPE_A, [pb.a_answer(NAME_TAB, "198.51.100.9")]),
            ),
            # tshark escapes the tab inside the label: it cannot split the line
            (v4c, v4s, 'tab\\there."quoted".example.com', "0x0001", "1", "0", "198.51.100.9"),
        ),
        (4.5, pb.ipv4_frame(v4c, v4s, udp, 40006, 53, pb.dns_query(6, pb.labels("aaaa.example"), 28)), None),
        (
            5.0,
            pb.ipv4_frame(
                v4s,
                v4c,
                udp,
                53,
                40006,
                pb.dns_response(
                    6,
                    pb.labels("aaaa.example"),
                    28,
                    [pb.aaaa_answer(pb.labels("aaaa.example"), "2001:db8::7")],
                ),
            ),
            (v4c, v4s, "aaaa.example", "0x0001", "28", "0", ""),
        ),
    ]
    return [Expected(HOUR_22 + offset, frame, fields) for offset, frame, fields in packets]


def _frame_time(when: float) -> str:
    """tshark's frame.time text in UTC, e.g. ``Nov 14, 2023 22:59:58.250000000 UTC``."""
    t = datetime.fromtimestamp(when, tz=UTC)
    return t.strftime("%b %d, %Y %H:%M:%S.") + f"{t.microsecond:06d}000 UTC"


def _expected_fields(item: Expected) -> tuple[str, ...]:
    assert item.fields is not None
    return (_frame_time(item.when), str(int(item.when)), str(len(item.frame)), *item.fields)


@pytest.fixture
def generated_pcap(tmp_path: Path) -> Path:
    return pb.write_pcap(tmp_path / "gen.pcap", [(e.when, e.frame) for e in _generated()])


def test_generated_capture_in_small_chunks(generated_pcap: Path, tmp_path: Path) -> None:
    expected = [_expected_fields(e) for e in _generated() if e.fields is not None]
    assert _tshark_response_count(generated_pcap) == len(expected) == 6

    chunks = split_pcap(generated_pcap, tmp_path / "work", 3, timeout=60)
    assert [c.name for c in chunks] == [  # names carry the first packet's time in UTC
        "gen_00000_20231114225958.pcapng",
        "gen_00001_20231114225959.pcapng",
        "gen_00002_20231114230001.pcapng",
        "gen_00003_20231114230003.pcapng",
    ]
    rows, bad = _split(list(dissect_dns_chunks(chunks, timeout=60, origin=generated_pcap)))
    assert bad == []
    assert [r.fields for r in rows] == expected
    assert [r.line_no for r in rows] == [1, 1, 2, 1, 2, 1]  # per chunk: 1, 2, 2, 1 responses
    assert Counter(r.partition for r in rows) == {
        HourPartition(2023, 11, 14, 22): 2,
        HourPartition(2023, 11, 14, 23): 4,
    }
    assert chunk_source(chunks[1], generated_pcap) == "gen.pcap chunk gen_00001_20231114225959.pcapng"


def test_generated_capture_one_step_matches_tshark_json(generated_pcap: Path, tmp_path: Path) -> None:
    rows, bad = _split(list(dissect_dns_file(generated_pcap, work_dir=tmp_path / "w", pkt_num=4)))
    oracle = _tshark_json_rows(generated_pcap)
    assert bad == [] and len(rows) == len(oracle) == 6
    for row, want in zip(rows, oracle, strict=True):
        assert _col(row, "frame_time") == want["frame.time"]
        assert _col(row, "ip_src") == want.get("ip.src", want.get("ipv6.src"))
        assert _col(row, "dns_qry_name") == want.get("dns.resp.name", "")


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "Pacific/Chatham"])
def test_same_result_whatever_the_machine_time_zone(
    zone: str, generated_pcap: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", zone)
    chunks = split_pcap(generated_pcap, tmp_path / "w", 100, timeout=60)
    assert [c.name for c in chunks] == ["gen_00000_20231114225958.pcapng"]
    rows, bad = _split(list(dissect_dns_chunks(chunks, timeout=60)))
    assert bad == []
    assert [r.fields for r in rows] == [_expected_fields(e) for e in _generated() if e.fields is not None]


def test_file_name_with_leading_dash_and_comma(
    generated_pcap: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    odd = Path("-odd, name.pcap")
    odd.write_bytes(generated_pcap.read_bytes())
    rows, bad = _split(list(dissect_dns_file(odd, work_dir=Path("work"))))
    assert len(rows) == 6 and bad == []
    assert [p.name for p in Path("work").iterdir()] == ["-odd, name_00000_20231114225958.pcapng"]


# --- bad input: loud, naming the file, nothing left behind ---------------------------------------------


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.pcap is empty"):
        dissect_dns_file(empty, work_dir=tmp_path / "w")


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pcap"):
        dissect_dns_file(tmp_path / "nope.pcap", work_dir=tmp_path / "w")


def _truncated_header(good: bytes) -> bytes:
    return good[:10]


def _random_bytes(good: bytes) -> bytes:
    return bytes((i * 7919 + 13) % 251 for i in range(4000))


def _text(good: bytes) -> bytes:
    return b"Oct 20, 2016 15:23:01 UTC,1476976981,222,8.8.8.8,172.17.0.10,google.com\n" * 20


def _cut_mid_packet(good: bytes) -> bytes:
    return good[:-20]


def _cut_in_first_packet(good: bytes) -> bytes:
    return good[: 24 + 16 + 10]


def _damaged_record(good: bytes) -> bytes:
    """The third record header claims a 2 GiB packet."""
    offset = 24
    for _ in range(2):
        offset += 16 + struct.unpack_from("<I", good, offset + 8)[0]
    return good[: offset + 8] + struct.pack("<I", 0x7FFFFFFF) + good[offset + 12 :]


@pytest.mark.parametrize(
    ("make", "message", "exit_code"),
    [
        (_truncated_header, "cut short", "exit code 2"),
        (_random_bytes, "isn't a capture file", "exit code 2"),
        (_text, "isn't a capture file", "exit code 2"),
        # editcap 4.0 keeps the packets before the cut, prints the error and exits 0
        (_cut_mid_packet, "cut short in the middle of a packet", "exit code 0 but it reported an error"),
        (_cut_in_first_packet, "cut short in the middle of a packet", "exit code 0 but it reported an error"),
        (_damaged_record, "damaged or corrupt", "exit code 0 but it reported an error"),
    ],
    ids=[
        "truncated-header",
        "random-bytes",
        "text-posing-as-pcap",
        "cut-at-the-end",
        "cut-in-first-packet",
        "damaged-record",
    ],
)
def test_corrupt_capture_fails_naming_the_file(
    make: object, message: str, exit_code: str, generated_pcap: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(make(generated_pcap.read_bytes()))  # type: ignore[operator]
    work = tmp_path / "w"
    with pytest.raises(ToolError) as caught:
        dissect_dns_file(bad, work_dir=work, pkt_num=3)  # raises before a single row
    assert caught.value.tool == "editcap"
    assert str(bad) in str(caught.value)
    assert exit_code in str(caught.value)
    assert message in caught.value.stderr_tail
    assert list(work.iterdir()) == []  # chunks of a failed split are removed


def test_tshark_failure_on_a_chunk_raises_after_its_lines(generated_pcap: Path, tmp_path: Path) -> None:
    """A chunk damaged after the split: tshark prints what it could read, then exits 2 -> ToolError."""
    chunk = tmp_path / "gen_00000_20231114225958.pcapng"
    chunk.write_bytes(pb.pcap_bytes([(e.when, e.frame) for e in _generated()])[:-20])
    seen: list[Row | QuarantinedLine] = []
    with pytest.raises(ToolError, match=r"tshark failed on .*gen_00000_20231114225958\.pcapng: exit code 2"):
        seen.extend(dissect_dns_chunks([chunk], timeout=60))
    assert len(seen) == 5  # the caller must fail the whole file: these rows are not a complete result


def test_capture_without_packets_gives_no_chunks_and_no_rows(tmp_path: Path) -> None:
    header_only = pb.write_pcap(tmp_path / "quiet.pcap", [])
    assert split_pcap(header_only, tmp_path / "w", 3, timeout=60) == []
    assert list(dissect_dns_file(header_only, work_dir=tmp_path / "w")) == []
    assert list((tmp_path / "w").iterdir()) == []  # editcap's empty "quiet.pcapng" is not left behind


def test_split_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    capture = pb.write_pcap(tmp_path / "in.pcapng", [])  # the name editcap would write with no packets
    with pytest.raises(ValueError, match="would be overwritten"):
        split_pcap(capture, tmp_path, 3, timeout=60)
    assert capture.exists()


def test_retry_removes_stale_chunks_of_the_same_file_only(generated_pcap: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    work.mkdir()
    stale = work / "gen_00009_20231114225958.pcapng"
    stale.write_bytes(b"left by a failed attempt")
    other = work / "other_00000_20231114225958.pcapng"
    other.write_bytes(b"another file's chunk")
    chunks = split_pcap(generated_pcap, work, 5, timeout=60)
    assert [c.name for c in chunks] == ["gen_00000_20231114225958.pcapng", "gen_00001_20231114230000.pcapng"]
    assert not stale.exists() and other.exists()
