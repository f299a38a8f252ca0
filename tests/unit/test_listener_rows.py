"""Row typing of the listener: good rows of each table, and every kind of bad line quarantined with why."""

from __future__ import annotations

import pytest

from spot_operators.listener_rows import (
    Quarantine,
    csv_records,
    split_line,
    staged_text,
    typed_fields,
    typed_row,
)
from spot_operators.segments import csv_line
from spot_operators.tables import DNS, FLOW, PROXY

FLOW_LINE = (
    "2023-01-25 18:36:00,1674671760,2023,1,25,18,36,0,-10.630,52.5.7.161,170.80.156.33,443,57358,TCP,"
    "...AP...,0,0,9,930,0,0,9,10,0,0,0,0,170.80.156.33"
)
DNS_LINE = (
    '"Oct 20, 2016 15:23:01.077982000 UTC",1476976981,222,172.17.0.10,8.8.8.8,google.com,0x0001,1,0,'
    "216.58.218.206"
)
PROXY_FIELDS = [
    "2024-03-22",
    "06:16:01",
    "10.82.255.36",
    "pixel.tapad.com",
    "GET",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)",
    "-",
    "48",
    "aeinstein",
    "-",
    "-",
    "OBSERVED",
    "Web Ads/Analytics",
    "https://vid.vidoomy.com/",
    "302",
    "TCP_NC_MISS",
    "https",
    "443",
    "/idsync/ex/push",
    "?partner_id=2499",
    "-",
    "142.182.19.21",
    "1242",
    "969",
    "-",
    "-",
    "-",
    "pixel.tapad.com/idsync/ex/push?partner_id=2499",
]


def _flow_with(column: str, value: str) -> str:
    fields = split_line(FLOW_LINE)
    assert isinstance(fields, list)
    fields[FLOW.column_names.index(column)] = value
    return csv_line(fields)


def test_flow_row_is_typed_and_partitioned_by_utc_hour() -> None:
    row = typed_row("flow", FLOW_LINE)
    assert isinstance(row, tuple)
    assert len(row) == FLOW.width + 4
    values = dict(zip(FLOW.column_names, row, strict=False))
    assert values["treceived"] == "2023-01-25 18:36:00"
    assert values["unix_tstamp"] == 1674671760 and isinstance(values["unix_tstamp"], int)
    assert values["tdur"] == pytest.approx(-10.63)
    assert (values["sport"], values["dport"], values["ibyt"]) == (443, 57358, 930)
    assert (values["proto"], values["flag"], values["rip"]) == ("TCP", "...AP...", "170.80.156.33")
    assert row[-4:] == (2023, 1, 25, 18)


def test_dns_row_with_a_comma_in_a_quoted_field() -> None:
    row = typed_row("dns", DNS_LINE)
    assert isinstance(row, tuple)
    assert row[0] == "Oct 20, 2016 15:23:01.077982000 UTC"
    assert row[1:3] == (1476976981, 222)
    assert row[6:9] == ("0x0001", 1, 0)
    assert row[-4:] == (2016, 10, 20, 15)
    assert len(row) == DNS.width + 4


def test_proxy_row_has_zero_padded_string_partitions() -> None:
    row = typed_row("proxy", csv_line(PROXY_FIELDS))
    assert isinstance(row, tuple)
    assert len(row) == PROXY.width + 4
    values = dict(zip(PROXY.column_names, row, strict=False))
    assert (values["duration"], values["scbytes"], values["csbytes"]) == (48, 1242, 969)
    assert values["respcode"] == "302" and values["uriport"] == "443"  # STRING columns stay text
    assert row[-4:] == ("2024", "03", "22", "06")


def test_partition_is_utc_whatever_the_process_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        row = typed_row("flow", _flow_with("unix_tstamp", "1674604800"))  # 2023-01-25 00:00:00 UTC
        assert isinstance(row, tuple) and row[-4:] == (2023, 1, 25, 0)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize(
    ("data_type", "line", "reason"),
    [
        ("flow", "a,b,c", "expected 28 fields for flow, got 3"),
        ("flow", FLOW_LINE + ",extra", "expected 28 fields for flow, got 29"),
        ("dns", FLOW_LINE, "expected 10 fields for dns, got 28"),
        ("proxy", "", "empty line"),
        ("flow", 'a,"unterminated', "not a CSV record"),
        ("flow", 'a,"b"c', "not a CSV record"),
        ("flow", "a\nb", "2 CSV records in one line"),
    ],
)
def test_wrong_shape_is_quarantined(data_type: str, line: str, reason: str) -> None:
    result = typed_row(data_type, line)
    assert isinstance(result, Quarantine)
    assert reason in result.reason


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("sport", "https", "sport is not an integer: 'https'"),
        ("sport", "1.0", "sport is not an integer"),
        ("sport", " 443", "sport is not an integer"),
        ("sport", "", "sport is not an integer"),
        ("sport", "٤٤٣", "sport is not an integer"),  # Arabic-Indic digits: int() takes them, Hive not
        ("ipkt", "1e3", "ipkt is not an integer"),
        ("tdur", "fast", "tdur is not a finite number"),
        ("tdur", "nan", "tdur is not a finite number"),
        ("tdur", "inf", "tdur is not a finite number"),
        ("tdur", "1e39", "tdur '1e39' is out of FLOAT range"),
    ],
)
def test_bad_numbers_are_quarantined(column: str, value: str, reason: str) -> None:
    result = typed_row("flow", _flow_with(column, value))
    assert isinstance(result, Quarantine)
    assert reason in result.reason


@pytest.mark.parametrize(
    ("column", "value", "ok"),
    [
        ("sport", "2147483647", True),
        ("sport", "2147483648", False),
        ("sport", "-2147483648", True),
        ("sport", "-2147483649", False),
        ("ibyt", "9223372036854775807", True),
        ("ibyt", "9223372036854775808", False),
        ("ibyt", "1" * 40, False),
        ("tdur", "-0.001", True),
    ],
)
def test_int_ranges_follow_the_hive_type(column: str, value: str, ok: bool) -> None:
    result = typed_row("flow", _flow_with(column, value))
    if ok:
        assert isinstance(result, tuple), result
    else:
        assert isinstance(result, Quarantine) and "out of" in result.reason, result


@pytest.mark.parametrize(
    ("epoch", "reason"),
    [
        ("0", "unix_tstamp 0 is not a usable time"),
        ("-5", "not a usable time"),
        ("253402300800", "unix_tstamp 253402300800 is not a usable time"),
    ],
)
def test_bad_epochs_are_quarantined(epoch: str, reason: str) -> None:
    result = typed_row("flow", _flow_with("unix_tstamp", epoch))
    assert isinstance(result, Quarantine) and reason in result.reason


@pytest.mark.parametrize(
    ("p_date", "p_time", "reason"),
    [
        ("2024-02-30", "06:16:01", "bad p_date '2024-02-30'"),
        ("22/03/2024", "06:16:01", "expected YYYY-MM-DD"),
        ("2024-03-22", "24:00:00", "bad p_time '24:00:00'"),
        ("2024-03-22", "6:16:01", "expected hh:mm:ss"),
    ],
)
def test_bad_proxy_times_are_quarantined(p_date: str, p_time: str, reason: str) -> None:
    result = typed_fields("proxy", [p_date, p_time, *PROXY_FIELDS[2:]])
    assert isinstance(result, Quarantine) and reason in result.reason, result


def test_proxy_int_columns_checked() -> None:
    fields = list(PROXY_FIELDS)
    fields[PROXY.column_names.index("scbytes")] = "-"
    result = typed_fields("proxy", fields)
    assert isinstance(result, Quarantine) and "scbytes is not an integer" in result.reason


def test_unknown_data_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown data type"):
        typed_row("netflow", FLOW_LINE)


def test_staged_csv_records_keep_line_numbers_and_multiline_fields() -> None:
    text = f'{FLOW_LINE}\r\n"multi\nline",x\n\n{DNS_LINE}\n\u2028not a break,y\nbad,"quote"x\nlast\n'
    records = list(csv_records(text))
    assert [(n, raw) for n, raw, _ in records[:4]] == [
        (1, FLOW_LINE),
        (2, '"multi\nline",x'),
        (5, DNS_LINE),
        (6, "\u2028not a break,y"),
    ]
    assert records[1][2] == ["multi\nline", "x"]
    assert isinstance(typed_fields("flow", records[0][2]), tuple)  # type: ignore[arg-type]
    n, raw, why = records[4]
    assert (n, raw) == (7, 'bad,"quote"x\nlast')
    assert isinstance(why, Quarantine) and "not a CSV record" in why.reason
    assert len(records) == 5


def test_staged_csv_records_with_bytes_that_are_not_utf8_are_quarantined_alone() -> None:
    data = b"a,\xc3\xa9\n" + b"b,\xff\xfe,c\n" + b"\xed\xa0\x80,x\n" + b'q,"\xff\n'
    text = staged_text(data)
    assert staged_text("a,\u00e9\n".encode()) == "a,\u00e9\n"
    records = list(csv_records(text))
    assert records[0] == (1, "a,\u00e9", ["a", "\u00e9"])
    shown = [(n, raw) for n, raw, _ in records[1:]]
    assert shown == [(2, "b,\\xff\\xfe,c"), (3, "\\xed\\xa0\\x80,x"), (4, 'q,"\\xff')]
    reasons = [why.reason for _, _, why in records[1:] if isinstance(why, Quarantine)]
    assert reasons[:2] == ["not UTF-8: byte 0xff at character 3", "not UTF-8: byte 0xed at character 1"]
    assert reasons[2].startswith("not a CSV record")
