"""The flow dissector against nfdump 1.7.1 itself.

Golden values never come from the dissector: they come from nfdump's other printer (``-o csv``, which
has its own code path and column set), from ``nfdump -I``, from the reference data's README, or from
the NetFlow datagrams these tests build and send to a real nfcapd.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import time
from calendar import timegm
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spot_operators.dissectors import flow as flow_module
from spot_operators.dissectors.flow import (
    NFDUMP_FORMAT,
    NFDUMP_TOKENS,
    dissect_flow_file,
    flow_rows_from_nfdump,
    nfdump_args,
)
from spot_operators.rows import HourPartition, QuarantinedLine, Row
from spot_operators.tables import FLOW
from spot_operators.tools import ToolError

from .flow_data import Collector, Flow, merge, v5_datagrams, v9_datagram

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SAMPLE = SHARED_DATA / "flow" / "nfcapd.202301251836"
SAMPLE_FLOWS = 3018  # README: `nfdump -I` and `nfdump -q -o csv` both say 3,018
COLUMNS = FLOW.column_names


# ----------------------------------------------------------------------------------------------------
# golden helpers: nfdump's csv printer


def nfdump_csv(path: Path, *extra: str) -> list[dict[str, str]]:
    """``nfdump -o csv`` rows (header line + rows + summary), read in UTC."""
    out = subprocess.run(
        ["nfdump", "-r", str(path), "-o", "csv", *extra],
        env={**os.environ, "TZ": "UTC"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.splitlines()
    end = out.index("Summary") if "Summary" in out else len(out)
    return list(csv.DictReader(out[:end]))


def nfdump_info(path: Path) -> dict[str, str]:
    out = subprocess.run(["nfdump", "-I", "-r", str(path)], capture_output=True, text=True, check=True)
    return dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)


def split(results: Iterable[Row | QuarantinedLine]) -> tuple[list[Row], list[QuarantinedLine]]:
    rows: list[Row] = []
    quarantined: list[QuarantinedLine] = []
    for r in results:
        if isinstance(r, Row):
            rows.append(r)
        else:
            quarantined.append(r)
    return rows, quarantined


def as_dict(row: Row) -> dict[str, str]:
    assert len(row.fields) == FLOW.width
    return dict(zip(COLUMNS, row.fields, strict=True))


def csv_seconds(text: str) -> int:
    return timegm(time.strptime(text[:19], "%Y-%m-%d %H:%M:%S"))


def assert_matches_csv(rows: list[Row], golden: list[dict[str, str]]) -> None:
    """Every row equals the csv record with the same position, column by column."""
    same = {
        "sip": "sa",
        "dip": "da",
        "sport": "sp",
        "dport": "dp",
        "flag": "flg",
        "fwd": "fwd",
        "stos": "stos",
        "ipkt": "ipkt",
        "ibyt": "ibyt",
        "opkt": "opkt",
        "obyt": "obyt",
        "input": "in",
        "output": "out",
        "sas": "sas",
        "das": "das",
        "dtos": "dtos",
        "dir": "dir",
        "rip": "ra",
    }
    for row in rows:
        ours, theirs = as_dict(row), golden[row.line_no - 1]
        assert ours["treceived"] == theirs["tr"][:19]
        assert int(ours["unix_tstamp"]) == csv_seconds(theirs["tr"])
        assert ours["proto"] == theirs["pr"].strip()
        for column, key in same.items():
            assert ours[column] == theirs[key], (column, row.line_no, ours, theirs)
        csv_duration = float(theirs["td"])
        if csv_duration < 1e9:
            assert float(ours["tdur"]) == pytest.approx(csv_duration, abs=0.0005)
        else:  # nfdump wrapped a negative duration around 2**64 ms; ours is te - ts, signed
            assert float(ours["tdur"]) < 0
            wall = csv_seconds(theirs["te"]) - csv_seconds(theirs["ts"])
            assert float(ours["tdur"]) == pytest.approx(wall, abs=1)


def assert_own_utc_hour(rows: list[Row]) -> None:
    for row in rows:
        d = as_dict(row)
        t = datetime.fromtimestamp(int(d["unix_tstamp"]), tz=UTC)
        assert d["treceived"] == t.strftime("%Y-%m-%d %H:%M:%S")
        parts = (d["tryear"], d["trmonth"], d["trday"], d["trhour"], d["trminute"], d["trsec"])
        assert parts == tuple(str(v) for v in (t.year, t.month, t.day, t.hour, t.minute, t.second))
        assert row.partition == HourPartition(t.year, t.month, t.day, t.hour)


# ----------------------------------------------------------------------------------------------------
# the reference sample


@pytest.fixture(scope="module")
def sample() -> tuple[list[Row], list[QuarantinedLine]]:
    return split(dissect_flow_file(SAMPLE))


@pytest.fixture(scope="module")
def sample_csv() -> list[dict[str, str]]:
    return nfdump_csv(SAMPLE)


def test_sample_has_every_flow_and_no_quarantine(sample, sample_csv) -> None:
    rows, quarantined = sample
    assert quarantined == []
    assert len(rows) == len(sample_csv) == SAMPLE_FLOWS
    assert int(nfdump_info(SAMPLE)["Flows"]) == SAMPLE_FLOWS
    assert [r.line_no for r in rows] == list(range(1, SAMPLE_FLOWS + 1))


def test_sample_equals_nfdump_csv_field_by_field(sample, sample_csv) -> None:
    rows, _ = sample
    assert_matches_csv(rows, sample_csv)
    first = as_dict(rows[0])  # spot check against `nfdump -o csv` / `-o raw` printed by hand
    assert first["treceived"] == "2023-01-25 18:36:00"
    assert first["unix_tstamp"] == "1674671760"
    assert (first["sip"], first["dip"], first["sport"], first["dport"]) == (
        "52.5.7.161",
        "170.80.156.33",
        "443",
        "57358",
    )
    assert (first["proto"], first["flag"], first["ipkt"], first["ibyt"]) == ("TCP", "...AP...", "9", "930")
    assert (first["input"], first["output"], first["dir"], first["rip"]) == ("9", "10", "0", "170.80.156.33")
    assert first["tdur"] == "-10.630"  # te 18:35:33.254 - ts 18:35:43.884; nfdump's %td wraps it
    wrapped = [r for r, c in zip(rows, sample_csv, strict=True) if float(c["td"]) > 1e15]
    assert len(wrapped) == 668  # nfdump: 18446744073709540.000; the dissector: negative seconds
    assert all(as_dict(r)["tdur"].startswith("-") for r in wrapped)


def test_sample_protocols_and_address_families(sample) -> None:
    rows, _ = sample
    protocols = Counter(as_dict(r)["proto"] for r in rows)
    assert protocols == {"TCP": 1264, "UDP": 1650, "ICMP": 8, "ICMP6": 96}
    info = nfdump_info(SAMPLE)  # nfdump -I counts ICMPv6 as icmp: 104 = 8 + 96
    assert (protocols["TCP"], protocols["UDP"]) == (int(info["Flows_tcp"]), int(info["Flows_udp"]))
    assert protocols["ICMP"] + protocols["ICMP6"] == int(info["Flows_icmp"]) == 104
    families = Counter(":" in as_dict(r)["sip"] for r in rows)
    assert families[True] > 0 and families[False] > 0
    v6 = [as_dict(r) for r in rows if ":" in as_dict(r)["sip"]]
    assert all(".." not in d["sip"] + d["dip"] for d in v6)  # -6: full addresses, never condensed
    assert {d["proto"] for d in v6} >= {"TCP", "UDP", "ICMP6"}


def test_sample_partitions_are_each_rows_own_utc_hour(sample) -> None:
    rows, _ = sample
    assert_own_utc_hour(rows)
    assert {r.partition for r in rows} == {HourPartition(2023, 1, 25, 18)}


def test_sample_does_not_depend_on_the_local_time_zone(sample, monkeypatch) -> None:
    monkeypatch.setenv("TZ", "America/Sao_Paulo")  # nfdump prints %tr/%ts in local time
    rows, quarantined = split(dissect_flow_file(SAMPLE))
    assert quarantined == []
    assert [r.fields for r in rows] == [r.fields for r in sample[0]]


def test_extra_args_pass_a_filter(sample) -> None:
    rows, quarantined = split(dissect_flow_file(SAMPLE, extra_args=["proto icmp6"]))
    assert quarantined == [] and len(rows) == 96
    assert {as_dict(r)["proto"] for r in rows} == {"ICMP6"}


# ----------------------------------------------------------------------------------------------------
# a file written by a real nfcapd from NetFlow v5 and v9 datagrams


@dataclass(frozen=True)
class Sent:
    flow: Flow
    expect: dict[str, str]  # columns whose value is known from the datagram


def _flag_string(flags: int) -> str:
    return "".join(
        c if flags & bit else "." for c, bit in zip("CEUAPRSF", (128, 64, 32, 16, 8, 4, 2, 1), strict=True)
    )


def _expected(f: Flow, tdur: str) -> dict[str, str]:
    """The columns the datagram determines (proto names of the 256-protocol sweep: see its own test)."""
    names = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 58: "ICMP6", 200: "200"}
    expect = {
        "tdur": tdur,
        "sip": f.src,
        "dip": f.dst,
        "sport": str(f.sport),
        "dport": str(f.icmp if f.proto in (1, 58) else f.dport),
        "flag": _flag_string(f.flags),
        "fwd": str(f.fwd),
        "stos": str(f.stos),
        "ipkt": str(f.ipkt),
        "ibyt": str(f.ibyt),
        "opkt": str(f.opkt),
        "obyt": str(f.obyt),
        "input": str(f.input),
        "output": str(f.output),
        "sas": str(f.sas),
        "das": str(f.das),
        "dtos": str(f.dtos),
        "dir": str(f.direction),
        "rip": "127.0.0.1",
    }
    if f.src != SWEEP_SOURCE:
        expect["proto"] = names[f.proto]
    return expect


HOUR_MS = 3_600_000
DST_EXPORT_MS = 1678604700_000  # 2023-03-12 07:05:00 UTC; US clocks jumped at 07:00 UTC
HISTORIC_EXPORT_MS = 1685613660_000  # 2023-06-01 10:01:00 UTC
SWEEP_SOURCE = "10.99.0.1"


@dataclass(frozen=True)
class Generated:
    path: Path
    sent: list[Sent]
    must_quarantine: dict[str, str]  # source address -> words the reason must contain
    received_from: int
    received_to: int


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    base = tmp_path_factory.mktemp("nfcapd")
    now = int(time.time()) * 1000
    v5_now = [
        # first seen two hours before last seen: the row's partition is still its receive hour
        Flow(
            "10.0.0.1",
            "10.0.0.2",
            1234,
            80,
            6,
            now - 2 * HOUR_MS,
            now - 10_250,
            flags=0x1B,
            ipkt=10,
            ibyt=1000,
            input=3,
            output=4,
            sas=65001,
            das=65002,
        ),
        Flow("10.0.0.3", "10.0.0.4", 5353, 53, 17, now - 5000, now - 1000, stos=8, ibyt=60),
        Flow("10.0.0.5", "10.0.0.6", 0, 0, 1, now - 3000, now - 3000, icmp=8 * 256, ibyt=84),
        Flow("10.0.0.7", "10.0.0.6", 0, 0, 1, now - 3000, now - 2000, icmp=3 * 256 + 3, ibyt=84),
        Flow("10.0.0.8", "10.0.0.9", 0, 0, 47, now - 3000, now - 1500, ipkt=5, ibyt=500),
        Flow("10.0.0.10", "10.0.0.11", 7, 9, 200, now - 9000, now - 8999, ipkt=7, ibyt=4_000_000_000),
    ]
    dst = Flow(
        "10.0.1.1",
        "10.0.1.2",
        4000,
        443,
        6,
        DST_EXPORT_MS - 360_000 + 250,
        DST_EXPORT_MS - 240_000 + 750,
        flags=0x10,
    )
    historic = Flow(
        "10.0.2.1", "10.0.2.2", 4001, 443, 6, HISTORIC_EXPORT_MS - 90_000, HISTORIC_EXPORT_MS - 30_000
    )
    v9_now = [
        Flow(
            "192.0.2.1",
            "198.51.100.7",
            40000,
            443,
            6,
            now - 61_000,
            now - 1000,
            flags=0x12,
            stos=16,
            dtos=32,
            fwd=64,
            direction=1,
            ipkt=100_000,
            ibyt=123_456_789_012,
            opkt=55,
            obyt=5555,
            input=7,
            output=8,
            sas=64512,
            das=65535,
        ),
        Flow("192.0.2.2", "198.51.100.8", 0, 0, 1, now - 500, now - 500, icmp=0x0803, input=7, output=8),
        Flow(
            "2001:db8::1",
            "2001:db8:ffff::abcd",
            5000,
            53,
            17,
            now - 2000,
            now - 100,
            direction=1,
            ibyt=80,
            opkt=1,
            obyt=120,
            input=1,
            output=2,
        ),
        Flow("fe80::1", "ff02::1", 0, 0, 58, now - 100, now - 100, icmp=128 * 256, ibyt=72),
        Flow(
            "2001:db8::2", "2001:db8::3", 1, 2, 17, now - 100, now - 100, sas=4_200_000_001
        ),  # 32-bit private AS
        Flow("192.0.2.3", "198.51.100.9", 1, 2, 17, now - 100, now - 100, ibyt=2**63),
    ]
    # ICMP gets no ports: nfcapd turns a v5 ICMP source port into a type (sport 1 -> dport "1.0")
    sweep = [
        Flow(SWEEP_SOURCE, f"10.99.0.{p}", *((0, 0) if p in (1, 58) else (1, 2)), p, now - 10, now - 5)
        for p in range(256)
    ]
    marker = Flow("10.255.0.1", "10.255.0.2", 9, 9, 17, now - 1, now)

    received_from = int(time.time())
    with Collector(base / "flows") as collector:
        for datagram in v5_datagrams(v5_now + sweep, export_ms=now):
            collector.send(datagram)
        collector.send(v5_datagrams([dst], export_ms=DST_EXPORT_MS, engine_id=1)[0])
        collector.send(v5_datagrams([historic], export_ms=HISTORIC_EXPORT_MS, engine_id=2)[0])
        collector.send(v9_datagram(v9_now, export_ms=now))
        collector.sync(marker, export_ms=now)
    received_to = int(time.time()) + 1
    files = collector.files()
    assert files, collector.log.read_text()
    # nfcapd rotates on the hour: if this run crossed one, join the files the way nfdump does
    path = files[0] if len(files) == 1 else merge(files, base / "join", base / "nfcapd.joined")

    sent = [
        Sent(f, _expected(f, d))
        for f, d in zip(v5_now, ["7189.750", "4.000", "0.000", "1.000", "1.500", "0.001"], strict=True)
    ]
    sent += [Sent(dst, _expected(dst, "120.500")), Sent(historic, _expected(historic, "60.000"))]
    sent += [
        Sent(f, _expected(f, d))
        for f, d in zip(v9_now[:4], ["60.000", "0.000", "1.900", "0.000"], strict=True)
    ]
    sent += [Sent(f, _expected(f, "0.005")) for f in sweep] + [Sent(marker, _expected(marker, "0.001"))]
    must_quarantine = {
        "2001:db8::2": "sas=4200000001 does not fit Hive INT",
        "192.0.2.3": "ibyt=9223372036854775808",
    }
    return Generated(path, sent, must_quarantine, received_from, received_to)


@pytest.fixture(scope="module")
def generated_results(generated: Generated) -> tuple[list[Row], list[QuarantinedLine]]:
    return split(dissect_flow_file(generated.path))


def test_generated_rows_are_what_was_sent(generated, generated_results) -> None:
    rows, quarantined = generated_results
    by_key = {(d["sip"], d["dip"]): d for d in map(as_dict, rows)}
    assert len(by_key) == len(rows) == len(generated.sent)
    for s in generated.sent:
        got = by_key[(s.flow.src, s.flow.dst)]
        assert {k: got[k] for k in s.expect} == s.expect, s.flow
    reasons = {q.raw.split("|")[3].strip(): q.reason for q in quarantined}
    assert set(reasons) == set(generated.must_quarantine)
    for source, words in generated.must_quarantine.items():
        assert words in reasons[source]


def test_generated_rows_equal_nfdump_csv(generated, generated_results) -> None:
    rows, quarantined = generated_results
    golden = nfdump_csv(generated.path)
    assert len(golden) == len(rows) + len(quarantined)
    assert_matches_csv(rows, golden)


def test_generated_receive_time_is_the_collectors_clock(generated, generated_results) -> None:
    rows, _ = generated_results
    assert_own_utc_hour(rows)
    for d in map(as_dict, rows):
        assert generated.received_from <= int(d["unix_tstamp"]) <= generated.received_to
    # flows first seen two hours earlier, or in 2023, land in the hour nfcapd received them
    received_hours = {
        HourPartition.of_epoch(s) for s in range(generated.received_from, generated.received_to + 1)
    }
    by_source = {as_dict(r)["sip"]: r for r in rows}
    for source in ("10.0.0.1", "10.0.1.1", "10.0.2.1"):
        assert by_source[source].partition in received_hours
    assert HourPartition.of_epoch(generated.received_from - 2 * 3600) not in received_hours


def test_protocol_names_are_nfdumps(generated, generated_results) -> None:
    rows, _ = generated_results
    out = subprocess.run(
        ["nfdump", "-r", str(generated.path), "-q", "-o", "fmt:%da|%pr", f"src ip {SWEEP_SOURCE}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    names = {da.strip(): pr.strip() for da, pr in (line.split("|") for line in out)}
    assert len(names) == 256
    ours = {d["dip"]: d["proto"] for d in map(as_dict, rows) if d["sip"] == SWEEP_SOURCE}
    assert ours == names
    assert (ours["10.99.0.6"], ours["10.99.0.17"], ours["10.99.0.58"], ours["10.99.0.47"]) == (
        "TCP",
        "UDP",
        "ICMP6",
        "GRE",
    )


def test_durations_are_utc_whatever_the_local_zone(generated, monkeypatch) -> None:
    """nfdump prints first/last seen in local time; across a DST jump that would add an hour."""
    monkeypatch.setenv("TZ", "America/New_York")
    rows, _ = split(dissect_flow_file(generated.path))
    dst = next(d for d in map(as_dict, rows) if d["sip"] == "10.0.1.1")
    assert dst["tdur"] == "120.500"


def test_rows_of_two_hours_get_two_partitions(generated, generated_results, tmp_path) -> None:
    joined = merge([SAMPLE, generated.path], tmp_path / "join", tmp_path / "nfcapd.202301251836-joined")
    rows, quarantined = split(dissect_flow_file(joined))
    assert len(rows) == SAMPLE_FLOWS + len(generated_results[0])
    assert len(quarantined) == len(generated_results[1])
    assert_own_utc_hour(rows)
    partitions = Counter(r.partition for r in rows)
    assert partitions[HourPartition(2023, 1, 25, 18)] == SAMPLE_FLOWS
    assert len(partitions) >= 2


# ----------------------------------------------------------------------------------------------------
# the parser on synthetic lines (padded the way nfdump pads them)

GOOD = {
    "trr": "1674671760.039",
    "ts": "2023-01-25 18:35:43.884",
    "te": "2023-01-25 18:35:45.001",
    "sa": "52.5.7.161",
    "da": "170.80.156.33",
    "sp": "443",
    "dp": "57358",
    "pr": "6",
    "flg": "...AP...",
    "fwd": "0",
    "stos": "0",
    "ipkt": "9",
    "ibyt": "930",
    "opkt": "0",
    "obyt": "0",
    "in": "9",
    "out": "10",
    "sas": "0",
    "das": "0",
    "dtos": "0",
    "dir": "I",
    "ra": "170.80.156.33",
}


def line(**changes: str) -> str:
    values = {**GOOD, **changes}
    return "|".join(v.rjust(16) if k in ("sa", "da", "ra") else v.rjust(6) for k, v in values.items())


def parse(*lines: str) -> list[Row | QuarantinedLine]:
    return list(flow_rows_from_nfdump(lines, "nfcapd.test"))


def only_row(text: str) -> dict[str, str]:
    (result,) = parse(text)
    assert isinstance(result, Row), result
    return as_dict(result)


def only_reason(text: str) -> str:
    (result,) = parse(text)
    assert isinstance(result, QuarantinedLine), result
    assert (result.source, result.line_no, result.raw) == ("nfcapd.test", 1, text)
    return result.reason


def test_format_string_is_pinned() -> None:
    assert NFDUMP_FORMAT == (
        "fmt:%trr|%ts|%te|%sa|%da|%sp|%dp|%pr|%flg|%fwd|%stos"
        "|%ipkt|%ibyt|%opkt|%obyt|%in|%out|%sas|%das|%dtos|%dir|%ra"
    )
    args = nfdump_args(Path("/x/nfcapd.1"), ["-c", "5"])
    assert args[0] == "nfdump" and args[-2:] == ["-c", "5"]
    assert {"-q", "-N", "-6"} <= set(args)
    assert args[args.index("-r") + 1] == "/x/nfcapd.1" and args[args.index("-o") + 1] == NFDUMP_FORMAT


def test_a_good_line_becomes_all_28_columns() -> None:
    (row,) = parse(line())
    assert isinstance(row, Row) and row.line_no == 1
    assert row.partition == HourPartition(2023, 1, 25, 18)
    assert row.fields == (
        "2023-01-25 18:36:00", "1674671760", "2023", "1", "25", "18", "36", "0", "1.117",
        "52.5.7.161", "170.80.156.33", "443", "57358", "TCP", "...AP...", "0", "0", "9", "930", "0", "0",
        "9", "10", "0", "0", "0", "0", "170.80.156.33",
    )  # fmt: skip


def test_ipv6_addresses_are_kept_whole() -> None:
    d = only_row(line(sa="2804:3714:4058:ff30:adf2:c6c9:83e4:f927", da="::1", ra="2001:db8::9", pr="17"))
    assert (d["sip"], d["dip"], d["rip"], d["proto"]) == (
        "2804:3714:4058:ff30:adf2:c6c9:83e4:f927",
        "::1",
        "2001:db8::9",
        "UDP",
    )
    # what nfdump prints without -6: a condensed address is not an address
    assert "sip='2804:37..e4:f927' is not an IP address" in only_reason(line(sa="2804:37..e4:f927"))


@pytest.mark.parametrize(("letter", "number"), [("I", "0"), ("E", "1")])
def test_direction_letter_becomes_spots_number(letter: str, number: str) -> None:
    assert only_row(line(dir=letter))["dir"] == number


@pytest.mark.parametrize("bad", ["X", "0", "", "ingress"])
def test_unknown_direction_is_quarantined(bad: str) -> None:
    assert f"dir={bad!r} is not I or E" in only_reason(line(dir=bad))


@pytest.mark.parametrize("flags", ["........", "...AP.S.", "CEUAPRSF", "......SF"])
def test_flag_string_is_kept(flags: str) -> None:
    assert only_row(line(flg=flags))["flag"] == flags


@pytest.mark.parametrize("bad", ["0x1b", "...AP..", "..AP.S..", "SYN"])
def test_other_flag_strings_are_quarantined(bad: str) -> None:
    assert "not an nfdump TCP flags string" in only_reason(line(flg=bad))


@pytest.mark.parametrize(
    ("number", "name"),
    [("1", "ICMP"), ("6", "TCP"), ("17", "UDP"), ("58", "ICMP6"), ("47", "GRE"), ("200", "200")],
)
def test_protocol_numbers_become_names(number: str, name: str) -> None:
    dp = "0.0" if number in ("1", "58") else "80"
    assert only_row(line(pr=number, dp=dp))["proto"] == name


@pytest.mark.parametrize(
    ("pr", "dp", "dport"), [("1", "8.0", "2048"), ("1", "3.3", "771"), ("58", "128.0", "32768")]
)
def test_icmp_type_code_becomes_netflow_dport(pr: str, dp: str, dport: str) -> None:
    assert only_row(line(pr=pr, dp=dp))["dport"] == dport


def test_icmp_port_shape_must_match_protocol() -> None:
    assert "dport='8.0'" in only_reason(line(pr="6", dp="8.0"))
    assert "is not ICMP type.code" in only_reason(line(pr="1", dp="8"))
    assert "dport=65536 is above 65535" in only_reason(line(dp="65536"))


@pytest.mark.parametrize(
    "junk",
    [
        "Skip unknown record type 9",
        "",
        "   ",
        "Summary: total flows: 3018, total bytes: 27.6 M",
        "Time window: 2023-01-25 18:35:43 - 2023-01-25 18:36:44",
    ],
)
def test_warnings_and_summaries_are_quarantined_not_dropped(junk: str) -> None:
    assert "not a flow line: " in only_reason(junk)


@pytest.mark.parametrize("width", [1, 21, 23])
def test_wrong_field_count_is_quarantined(width: int) -> None:
    text = "|".join((line().split("|") * 2)[:width])
    assert f"{width} '|'-separated fields, expected 22" in only_reason(text)


@pytest.mark.parametrize(
    ("column", "key", "bad"), [("ibyt", "ibyt", "1.0 M"), ("ipkt", "ipkt", "-1"), ("sas", "sas", "x")]
)
def test_non_numeric_counters_are_quarantined(column: str, key: str, bad: str) -> None:
    assert f"{column}={bad!r} is not a non-negative integer" in only_reason(line(**{key: bad}))


def test_numbers_must_fit_their_hive_column() -> None:
    assert only_row(line(ibyt=str(2**63 - 1)))["ibyt"] == str(2**63 - 1)
    assert "ibyt=9223372036854775808 does not fit Hive BIGINT" in only_reason(line(ibyt=str(2**63)))
    assert only_row(line(sas=str(2**31 - 1)))["sas"] == str(2**31 - 1)
    assert "das=4200000000 does not fit Hive INT" in only_reason(line(das="4200000000"))
    assert "stos=256 is above 255" in only_reason(line(stos="256"))


def test_times() -> None:
    assert "treceived is 0" in only_reason(line(trr="0.000"))
    assert "treceived='2023-01-25 18:36:00.039' is not epoch seconds" in only_reason(
        line(trr="2023-01-25 18:36:00.039")
    )
    assert "first seen='yesterday' is not a time" in only_reason(line(ts="yesterday"))
    assert only_row(line(ts="2023-01-25 18:35:43.884", te="2023-01-25 18:35:33.254"))["tdur"] == "-10.630"
    assert only_row(line(ts="2023-01-25 23:59:59.999", te="2023-01-26 00:00:00.000"))["tdur"] == "0.001"
    assert only_row(line(ts="1970-01-01 00:00:00.000", te="1970-01-01 00:00:00.000"))["tdur"] == "0.000"


def test_each_row_is_partitioned_by_its_own_hour() -> None:
    results = parse(line(trr="1674691199.999"), line(trr="1674691200.000"), line(trr="1674691200.500"))
    assert [r.partition for r in results if isinstance(r, Row)] == [
        HourPartition(2023, 1, 25, 23),
        HourPartition(2023, 1, 26, 0),
        HourPartition(2023, 1, 26, 0),
    ]
    assert [as_dict(r)["treceived"] for r in results if isinstance(r, Row)] == [
        "2023-01-25 23:59:59",
        "2023-01-26 00:00:00",
        "2023-01-26 00:00:00",
    ]


def test_one_bad_line_does_not_stop_the_rest() -> None:
    results = parse(line(), "Skip unknown record type 9", line(ibyt="x"), line(sp="1"))
    assert [type(r).__name__ for r in results] == ["Row", "QuarantinedLine", "QuarantinedLine", "Row"]
    assert [r.line_no for r in results] == [1, 2, 3, 4]


def test_no_matching_flows_alone_means_an_empty_file() -> None:
    assert parse("No matching flows") == []
    results = parse("No matching flows", line())
    assert isinstance(results[0], QuarantinedLine) and results[0].line_no == 1
    assert isinstance(results[1], Row)
    assert "not a flow line" in parse(line(), "No matching flows")[1].reason  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------------------
# files nfdump cannot read: nfdump 1.7.1 itself says success


def _nfdump_r(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(nfdump_args(path), capture_output=True, text=True, timeout=60)


def test_nfdump_reports_success_on_unreadable_files(tmp_path) -> None:
    """Why the dissector verifies first: `nfdump -r` exits 0 with 'No matching flows' on all of these."""
    empty = tmp_path / "nfcapd.202301010000"
    empty.write_bytes(b"")
    truncated = tmp_path / "nfcapd.202301010005"
    truncated.write_bytes(SAMPLE.read_bytes()[:1000])
    text = tmp_path / "nfcapd.202301010010"
    text.write_text("date,sip,dip\n2023-01-01,10.0.0.1,10.0.0.2\n")
    for path, message in [
        (empty, "read() error"),
        (truncated, "appendix offset error"),
        (text, "bad magic"),
    ]:
        done = _nfdump_r(path)
        assert done.returncode == 0, path
        assert done.stdout.strip() == "No matching flows"
        assert message in done.stderr


def test_an_idle_collectors_file_has_no_rows_and_no_error(tmp_path) -> None:
    with Collector(tmp_path / "idle") as collector:
        pass
    (path,) = collector.files()
    assert _nfdump_r(path).stdout.strip() == "No matching flows"
    assert list(dissect_flow_file(path)) == []


def test_empty_file_raises_naming_it(tmp_path) -> None:
    path = tmp_path / "nfcapd.202301010000"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(f"{path}: empty file")):
        list(dissect_flow_file(path))


def test_missing_file_raises_naming_it(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"nfcapd\.404: not a regular file"):
        list(dissect_flow_file(tmp_path / "nfcapd.404"))


@pytest.mark.parametrize("size", [2, 16, 20, 24, 30, 39])
def test_file_shorter_than_a_header_raises_naming_it(tmp_path, size: int) -> None:
    """`nfdump -v` reads uninitialised memory on these: it passes or segfaults at random."""
    path = tmp_path / "nfcapd.202301251836"
    path.write_bytes(SAMPLE.read_bytes()[:size])
    with pytest.raises(ValueError, match=re.escape(f"{path}: {size} bytes, shorter than an nfcapd header")):
        list(dissect_flow_file(path))


# 518_820 is where the appendix starts; at 518_821..518_831 `nfdump -v` exits 0 but says "corrupted"
@pytest.mark.parametrize("size", [40, 100, 1000, 300_000, 518_820, 518_821, 518_830, 518_900, 519_001])
def test_truncated_file_raises_naming_it(tmp_path, size: int) -> None:
    path = tmp_path / "nfcapd.202301251836"
    path.write_bytes(SAMPLE.read_bytes()[:size])
    with pytest.raises(ToolError, match="not a complete nfcapd file") as caught:
        list(dissect_flow_file(path))
    assert caught.value.subject == str(path) and str(path) in str(caught.value)
    assert caught.value.stderr_tail  # nfdump's own words, e.g. "Invalid appendix offset: 518820"


def test_text_posing_as_nfcapd_raises_naming_it(tmp_path) -> None:
    path = tmp_path / "nfcapd.202301010000"
    path.write_text("2023-01-25 18:36:00,52.5.7.161,170.80.156.33\n" * 50)
    with pytest.raises(ToolError, match="bad magic") as caught:
        list(dissect_flow_file(path))
    assert str(path) in str(caught.value)
    short = tmp_path / "nfcapd.202301010005"
    short.write_text("hello\n")
    with pytest.raises(ValueError, match=re.escape(f"{short}: 6 bytes")):
        list(dissect_flow_file(short))


def test_corrupt_block_raises(tmp_path) -> None:
    data = bytearray(SAMPLE.read_bytes())
    data[200_000:200_400] = b"\xff" * 400
    path = tmp_path / "nfcapd.202301251836"
    path.write_bytes(bytes(data))
    with pytest.raises(ToolError, match=re.escape(str(path))):
        list(dissect_flow_file(path))


def test_damaged_record_is_quarantined_not_put_in_1970(tmp_path) -> None:
    """Zeroing bytes inside the first record passes `nfdump -v`; nfdump prints it with time 0."""
    data = bytearray(SAMPLE.read_bytes())
    data[100:140] = bytes(40)
    path = tmp_path / "nfcapd.202301251836"
    path.write_bytes(bytes(data))
    rows, quarantined = split(dissect_flow_file(path))
    assert len(rows) == SAMPLE_FLOWS - 1
    assert [(q.line_no, q.reason) for q in quarantined] == [
        (1, "treceived is 0: the record has no receive time")
    ]


# ----------------------------------------------------------------------------------------------------
# the fast path (one regex + caches) and the detailed path agree on every line

EDGE_CHANGES: list[dict[str, str]] = [
    {},
    # numbers: 9/10/18/19 digits, the INT and BIGINT limits, leading zeros, signs, non-ASCII digits
    {"ibyt": "999999999"}, {"ibyt": "1000000000"}, {"ibyt": "999999999999999999"},
    {"ibyt": str(2**63 - 1)}, {"ibyt": str(2**63)}, {"opkt": "0000000000000000000000001"},
    {"sas": "999999999"}, {"sas": str(2**31 - 1)}, {"das": str(2**31)}, {"das": "4200000000"},
    {"in": "0123"}, {"out": "00"}, {"ipkt": "-1"}, {"ipkt": "+1"}, {"ibyt": "1.0 M"}, {"sas": "x"},
    {"ibyt": "\u0661\u0662"}, {"ibyt": "\t930"}, {"ibyt": "930\xa0"}, {"ibyt": ""},
    # 0-255 and port fields
    {"fwd": "255"}, {"fwd": "256"}, {"stos": "00"}, {"stos": "099"}, {"dtos": "300"}, {"dtos": "1000"},
    {"sp": "65535"}, {"sp": "65536"}, {"sp": "99999"}, {"sp": "100000"}, {"sp": "0443"}, {"sp": "0"},
    {"dp": "65535"}, {"dp": "65536"}, {"dp": "70000"}, {"dp": "080"}, {"dp": "8.0"},
    # protocols and ICMP type.code
    {"pr": "255"}, {"pr": "256"}, {"pr": "06"}, {"pr": "200"}, {"pr": "17"}, {"pr": "47", "dp": "0"},
    {"pr": "1", "dp": "8.0"}, {"pr": "1", "dp": "3.3"}, {"pr": "1", "dp": "0.0"},
    {"pr": "1", "dp": "255.255"},
    {"pr": "58", "dp": "128.0"}, {"pr": "58", "dp": "256.0"}, {"pr": "58", "dp": "1.256"},
    {"pr": "1", "dp": "08.00"}, {"pr": "1", "dp": "8"}, {"pr": "1", "dp": "8.0.0"}, {"pr": "1", "dp": ".0"},
    {"pr": "1", "dp": "8."}, {"pr": "58", "dp": "1000.0"}, {"pr": "01", "dp": "3.1"},
    # addresses
    {"sa": "2804:3714:4058:ff30:adf2:c6c9:83e4:f927", "da": "::1", "ra": "2001:db8::9", "pr": "17"},
    {"sa": "::ffff:1.2.3.4"}, {"da": "::"}, {"sa": "2804:37..e4:f927"}, {"sa": "fe80::1%eth0"},
    {"sa": "1.2.3.256"}, {"sa": "01.2.3.4"}, {"sa": "1.2.3"}, {"da": "1.2.3.4.5"}, {"ra": "0.0.0.0"},
    {"ra": "255.255.255.255"}, {"da": "gggg::1"}, {"sa": ":::"}, {"sa": "1:2:3:4:5:6:7:8:9"},
    # flags and direction
    {"flg": "........"}, {"flg": "CEUAPRSF"}, {"flg": "...AP.."}, {"flg": "SYN"}, {"flg": "cEUAPRSF"},
    {"flg": "0x1b"}, {"dir": "E"}, {"dir": "X"}, {"dir": "0"}, {"dir": ""}, {"dir": "ingress"},
    # times: negative durations, midnight, the cache key's edges, shapes nfdump does not print
    {"ts": "2023-01-25 18:35:43.884", "te": "2023-01-25 18:35:33.254"},
    {"ts": "2023-01-25 18:35:43.999", "te": "2023-01-25 18:35:43.000"},
    {"ts": "2023-01-25 23:59:59.999", "te": "2023-01-26 00:00:00.000"},
    {"ts": "2023-01-26 00:00:00.000", "te": "2023-01-25 23:59:59.999"},
    {"ts": "1970-01-01 00:00:00.000", "te": "1970-01-01 00:00:00.000"},
    {"ts": "2024-02-29 12:00:00.500"}, {"ts": "2023-02-29 12:00:00.500"}, {"te": "2023-01-25 24:00:00.000"},
    {"te": "2023-01-25 23:59:60.000"}, {"te": "2023-01-25 23:60:00.000"}, {"ts": "0000-01-01 00:00:00.000"},
    {"ts": "2023-01-25T18:35:43.884"}, {"ts": "2023-01-25 18:35:43.88"}, {"ts": "2023-01-25 18:35:43.8841"},
    {"ts": "2023-01-25 18:35:43"}, {"ts": "yesterday"}, {"te": "2023-01-25 18:35:45.001+00:00"},
    {"trr": "0.000"}, {"trr": "0000.500"}, {"trr": "01674671760.039"}, {"trr": "1674671760.39"},
    {"trr": "1674671760"}, {"trr": "1674691199.999"}, {"trr": "1674691200.000"}, {"trr": "\u0661.000"},
    {"trr": "2023-01-25 18:36:00.039"},
]  # fmt: skip

EDGE_LINES: list[str] = [
    *(line(**changes) for changes in EDGE_CHANGES),
    *("|".join({**GOOD, **changes}.values()) for changes in EDGE_CHANGES),  # no padding at all
    line() + " ",
    " " + line(),
    line() + "\r",
    line() + "\n",
    line().replace("|", " | ", 1),
    line().replace("|", "\t|", 1),
    line() + "|",
    "No matching flows",
    "Skip unknown record type 9",
    "",
]


def _without_fast_path(monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> list[Row | QuarantinedLine]:
    with monkeypatch.context() as patched:
        patched.setattr(flow_module, "_FAST_LINE", re.compile("(?!)"))  # matches nothing
        return parse(*lines)


def _slow_path_calls(monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> int:
    calls = 0
    detailed = flow_module._fields

    def counting(*args):
        nonlocal calls
        calls += 1
        return detailed(*args)

    with monkeypatch.context() as patched:
        patched.setattr(flow_module, "_fields", counting)
        parse(*lines)
    return calls


def test_fast_pattern_has_one_group_per_nfdump_token() -> None:
    assert len(flow_module._FAST_FIELDS) == len(NFDUMP_TOKENS)
    assert flow_module._FAST_LINE.groups == len(NFDUMP_TOKENS) + 2  # %ts and %te: second, millis


def test_fast_and_detailed_paths_agree_on_the_sample(monkeypatch) -> None:
    out = subprocess.run(
        nfdump_args(SAMPLE), env={**os.environ, "TZ": "UTC"}, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == SAMPLE_FLOWS
    assert parse(*out) == _without_fast_path(monkeypatch, out)
    assert _slow_path_calls(monkeypatch, out) == 0  # nfdump's own lines all take the fast path


@pytest.mark.parametrize("text", EDGE_LINES)
def test_fast_and_detailed_paths_agree_on_an_edge_line(monkeypatch, text: str) -> None:
    assert parse(text) == _without_fast_path(monkeypatch, [text])


def test_fast_and_detailed_paths_agree_on_edge_lines_in_one_stream(monkeypatch) -> None:
    """One run, so the fast path's caches see good and bad values of the same second interleaved."""
    lines = [text for pair in zip(EDGE_LINES, [line()] * len(EDGE_LINES), strict=True) for text in pair]
    results = parse(*lines)
    assert results == _without_fast_path(monkeypatch, lines)
    assert {type(r) for r in results} == {Row, QuarantinedLine}


def test_fast_path_takes_only_what_needs_no_check(monkeypatch) -> None:
    assert _slow_path_calls(monkeypatch, [line(), line(pr="1", dp="3.3"), line(sa="::1")]) == 0
    assert _slow_path_calls(monkeypatch, [line(ibyt="1000000000"), line(ibyt="999999999999999999")]) == 0
    for changes in ({"sas": "1000000000"}, {"sp": "65536"}, {"in": "0123"}, {"pr": "1", "dp": "08.00"}):
        assert _slow_path_calls(monkeypatch, [line(**changes)]) == 1, changes
