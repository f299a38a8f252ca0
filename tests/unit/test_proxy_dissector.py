"""Unit tests of ``spot_operators.dissectors.proxy``: ProxySG / Blue Coat lines -> proxy rows or quarantine.

Expected values come from the real sample (``shared/data/proxy/proxysg-main.log``, read with ``shlex``
here, never with the tokenizer under test) and from lines these tests write field by field.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import shlex
from pathlib import Path

import pytest

from spot_operators.dissectors.proxy import (
    PROXYSG_MAIN_FIELDS,
    PROXYSG_MAIN_WITHOUT_USER_AGENT,
    SPOT_BLUECOAT_FIELDS,
    ProxyFileError,
    dissect_proxy_file,
    proxy_rows_from_lines,
    tokenize,
)
from spot_operators.rows import HourPartition, QuarantinedLine, Row
from spot_operators.tables import PROXY

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "proxy" / "proxysg-main.log"
COLUMNS = PROXY.column_names
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0"


def col(row: Row, name: str) -> str:
    return row.fields[COLUMNS.index(name)]


def rows_of(items: list[Row | QuarantinedLine]) -> list[Row]:
    return [i for i in items if isinstance(i, Row)]


def quarantine_of(items: list[Row | QuarantinedLine]) -> list[QuarantinedLine]:
    return [i for i in items if isinstance(i, QuarantinedLine)]


def quote(value: str) -> str:
    """A field as ProxySG writes it: bare unless it holds spaces or quotes (then ``"..."``, ``""``)."""
    if value and " " not in value and '"' not in value:
        return value
    return '"' + value.replace('"', '""') + '"'


def _key(name: str) -> str:
    return re.sub("[^a-z]", "", name.lower())


def line_of(layout: tuple[str, ...], **values: str) -> str:
    """A log line in ``layout``: ``values`` by field name (``cs_user_agent`` for ``cs(User-Agent)``)."""
    by_name = {_key(k): v for k, v in values.items()}
    return " ".join(quote(by_name.get(_key(f), "-")) for f in layout)


BASE = {
    "date": "2026-03-05",
    "time": "07:59:58",
    "time_taken": "15",
    "c_ip": "10.0.0.7",
    "sc_status": "200",
    "s_action": "TCP_MISS",
    "sc_bytes": "5120",
    "cs_bytes": "430",
    "cs_method": "GET",
    "cs_uri_scheme": "http",
    "cs_host": "example.com",
    "cs_uri_port": "80",
    "cs_uri_path": "/index.html",
    "cs_uri_query": "?a=1",
    "s_ip": "192.0.2.10",
}


def ua_line(layout: tuple[str, ...], **overrides: str) -> str:
    return line_of(layout, **{**BASE, **overrides})


# --------------------------------------------------------------------------- the real ProxySG sample


def _shlex_expectations() -> tuple[int, int, int]:
    """(data lines, lines that fit, 27-token lines) counted with shlex, independently of tokenize()."""
    data = fits = long_lines = 0
    for raw in SAMPLE.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        data += 1
        tokens = shlex.split(raw)
        # Header names 23 fields; main format lines carry 24; longer lines fit when s-ip (24th) is an IP.
        if len(tokens) in (23, 24):
            fits += 1
        elif len(tokens) > 24:
            long_lines += 1
            try:
                ipaddress.ip_address(tokens[23])
                fits += 1
            except ValueError:
                pass
    return data, fits, long_lines


@pytest.fixture(scope="module")
def sample_items() -> list[Row | QuarantinedLine]:
    assert SAMPLE.is_file(), f"{SAMPLE} missing: the repository is cloned with shared/ beside it"
    return list(dissect_proxy_file(SAMPLE))


def test_sample_every_data_line_is_accounted_for(sample_items: list[Row | QuarantinedLine]) -> None:
    data, fits, long_lines = _shlex_expectations()
    assert (data, fits, long_lines) == (11, 11, 1)  # the shared/data/README.md facts
    rows, quarantined = rows_of(sample_items), quarantine_of(sample_items)
    assert len(rows) == fits
    assert len(rows) + len(quarantined) == data
    assert [r.line_no for r in rows] == list(range(7, 18))  # lines 1-6 are # metadata
    assert all(len(r.fields) == len(COLUMNS) for r in rows)


def test_sample_spot_checks(sample_items: list[Row | QuarantinedLine]) -> None:
    rows = {r.line_no: r for r in rows_of(sample_items)}
    first = rows[7]
    assert col(first, "p_date") == "2024-03-22"
    assert col(first, "p_time") == "16:16:01"
    assert col(first, "clientip") == "10.82.255.36"
    assert col(first, "host") == "pixel.tapad.com"
    assert col(first, "respcode") == "302"
    assert col(first, "action") == "TCP_NC_MISS"
    assert col(first, "duration") == "48"
    assert (col(first, "scbytes"), col(first, "csbytes")) == ("1242", "969")
    assert col(first, "useragent") == UA + " Safari/537.36"
    assert col(first, "referer") == "https://vid.vidoomy.com/"
    assert col(first, "webcat") == "FastwebRes_CallCntr;Web Ads/Analytics"
    assert col(first, "filterresult") == "OBSERVED"
    assert col(first, "serverip") == "142.182.19.21"
    assert col(first, "fulluri").startswith("pixel.tapad.com/idsync/ex/push?partner_id=2499&")
    assert col(first, "fulluri") == "pixel.tapad.com" + col(first, "uripath") + col(first, "uriquery")
    # Not in the main format: Spot's "-".
    for absent in ("exceptionid", "uriextension", "bcappname", "bcappoper"):
        assert col(first, absent) == "-"

    connect = rows[9]
    assert col(connect, "reqmethod") == "CONNECT"
    assert (col(connect, "uripath"), col(connect, "uriquery")) == ("/", "-")
    assert col(connect, "fulluri") == "token.rubiconproject.com"
    assert col(connect, "useragent") == "-"
    assert col(rows[14], "resconttype") == "application/json;%20charset=UTF-8"
    assert col(rows[17], "useragent") == UA + " Safari/537.36"
    assert {r.partition for r in rows.values()} == {HourPartition(2024, 3, 22, 16)}
    assert rows[7].partition.folder(zero_padded=True) == "y=2024/m=03/d=22/h=16"


def test_sample_27_token_line_is_a_row_with_the_extra_fields_ignored_and_noted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Kept, not quarantined: its first 24 fields are a complete, valid main-format record (dates,
    byte counts, s-ip an IP address) and the three extras only follow s-ip; Elastic's ProxySG pipeline
    reads the same line the same way. Quarantining it would lose a good request record."""
    with caplog.at_level(logging.WARNING, logger="spot_operators.dissectors.proxy"):
        rows = {r.line_no: r for r in rows_of(list(dissect_proxy_file(SAMPLE)))}
    row = rows[15]
    assert col(row, "host") == "rules.quantcount.com"
    assert col(row, "serverip") == "142.182.19.21"  # s-ip, not the extra 13.33.165.24
    assert col(row, "useragent") == "-"  # the 24-field position, not the trailing extra user agent
    assert col(row, "fulluri") == "rules.quantcount.com/rules-p-D1yc5zQgjmqr5.js"
    assert "1 line(s) carried extra fields" in caplog.text
    assert "first at line 15" in caplog.text


def test_sample_without_its_header_lines_gives_the_same_rows(
    sample_items: list[Row | QuarantinedLine],
) -> None:
    """Header-less, the 27-token line first meets Spot's 27-field order, fails it, and is read as main."""
    lines = [ln for ln in SAMPLE.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    headerless = list(proxy_rows_from_lines(lines, "no-header.log"))
    assert [r.fields for r in rows_of(headerless)] == [r.fields for r in rows_of(sample_items)]


# --------------------------------------------------------------------------- generated layouts


def test_spot_27_field_layout_without_header() -> None:
    ua = 'Mozilla/5.0 (X11; Linux x86_64) "quoted" agent'
    lines = [
        ua_line(SPOT_BLUECOAT_FIELDS, cs_user_agent=ua, x_bluecoat_application_name="Gmail"),
        ua_line(SPOT_BLUECOAT_FIELDS, cs_uri_path="/", cs_uri_query="-", x_exception_id="policy_denied"),
    ]
    assert len(shlex.split(lines[0])) == 27
    items = list(proxy_rows_from_lines(lines, "spot.log"))
    assert quarantine_of(items) == []
    first, second = rows_of(items)
    assert col(first, "useragent") == ua
    assert col(first, "bcappname") == "Gmail"
    assert col(first, "bcappoper") == "-"
    assert col(first, "fulluri") == "example.com/index.html?a=1"
    assert col(second, "exceptionid") == "policy_denied"
    assert col(second, "fulluri") == "example.com"
    assert first.fields == (
        "2026-03-05", "07:59:58", "10.0.0.7", "example.com", "GET", ua, "-", "15", "-", "-", "-", "-",
        "-", "-", "200", "TCP_MISS", "http", "80", "/index.html", "?a=1", "-", "192.0.2.10", "5120",
        "430", "-", "Gmail", "-", "example.com/index.html?a=1",
    )  # fmt: skip


def test_main_layout_with_its_own_header_maps_by_name() -> None:
    lines = [
        "#Software: SGOS 7.3.1.1",
        "#Fields: " + " ".join(PROXYSG_MAIN_FIELDS),
        ua_line(PROXYSG_MAIN_FIELDS, cs_user_agent=UA, rs_content_type="text/html", cs_username="bob"),
    ]
    (row,) = proxy_rows_from_lines(lines, "main.log")
    assert isinstance(row, Row)
    assert (col(row, "useragent"), col(row, "resconttype"), col(row, "username")) == (UA, "text/html", "bob")
    assert row.line_no == 3


def test_header_without_user_agent_reads_23_and_24_token_lines() -> None:
    """The documented discrepancy: the header omits cs(User-Agent); lines may or may not carry it."""
    lines = [
        "#Fields: " + " ".join(PROXYSG_MAIN_WITHOUT_USER_AGENT),
        ua_line(PROXYSG_MAIN_FIELDS, cs_user_agent=UA, cs_referer="https://r.example/"),
        ua_line(PROXYSG_MAIN_WITHOUT_USER_AGENT, cs_referer="https://r.example/"),
    ]
    with_ua, without_ua = proxy_rows_from_lines(lines, "x.log")
    assert isinstance(with_ua, Row) and isinstance(without_ua, Row)
    assert col(with_ua, "useragent") == UA
    assert col(without_ua, "useragent") == "-"
    assert col(with_ua, "referer") == col(without_ua, "referer") == "https://r.example/"
    assert col(with_ua, "filterresult") == col(without_ua, "filterresult") == "-"
    assert col(with_ua, "serverip") == col(without_ua, "serverip") == "192.0.2.10"


def test_header_less_main_layout_and_unknown_counts() -> None:
    lines = [ua_line(PROXYSG_MAIN_FIELDS, cs_user_agent=UA), "2026-03-05 07:59:58 1 2 3"]
    row, bad = proxy_rows_from_lines(lines, "x.log")
    assert isinstance(row, Row) and col(row, "useragent") == UA
    assert isinstance(bad, QuarantinedLine)
    assert bad.reason.startswith("5 fields fit no known layout; expected 24 (ProxySG main")
    assert "27 (Spot Blue Coat" in bad.reason


@pytest.mark.parametrize(
    ("ua_text", "expected"),
    [
        ('"Mozilla/5.0 (compatible; ""Bot"" 1.0)"', 'Mozilla/5.0 (compatible; "Bot" 1.0)'),
        ('"Mozilla/5.0 (compatible; \\"Bot\\" 1.0)"', 'Mozilla/5.0 (compatible; "Bot" 1.0)'),
        ('"C:\\\\path\\x"', "C:\\path\\x"),
        ('""', ""),
        ("-", "-"),
        ('"Ünïcødé agent"', "Ünïcødé agent"),
    ],
)
def test_quoted_user_agents(ua_text: str, expected: str) -> None:
    line = ua_line(PROXYSG_MAIN_FIELDS, cs_user_agent="UA_SLOT").replace("UA_SLOT", ua_text)
    (row,) = proxy_rows_from_lines([line], "x.log")
    assert isinstance(row, Row), row
    assert col(row, "useragent") == expected
    assert col(row, "filterresult") == "-" and col(row, "serverip") == "192.0.2.10"


@pytest.mark.parametrize(
    ("path", "query", "fulluri"),
    [
        ("/", "-", "example.com"),
        ("/", "?q=1", "example.com?q=1"),
        ("/a", "-", "example.com/a"),
        ("/a/b.js", "?x=1&y=2", "example.com/a/b.js?x=1&y=2"),
        ("-", "?", "example.com"),
    ],
)
def test_fulluri_appends_path_and_query_only_when_longer_than_one_character(
    path: str, query: str, fulluri: str
) -> None:
    (row,) = proxy_rows_from_lines([ua_line(SPOT_BLUECOAT_FIELDS, cs_uri_path=path, cs_uri_query=query)], "x")
    assert isinstance(row, Row)
    assert col(row, "fulluri") == fulluri
    assert (col(row, "uripath"), col(row, "uriquery")) == (path, query)


def test_rows_in_two_utc_hours_get_two_zero_padded_partitions() -> None:
    lines = [
        ua_line(SPOT_BLUECOAT_FIELDS, time="07:59:59"),
        ua_line(SPOT_BLUECOAT_FIELDS, time="08:00:00"),
        ua_line(SPOT_BLUECOAT_FIELDS, time="07:00:00"),
    ]
    rows = rows_of(list(proxy_rows_from_lines(lines, "x.log")))
    assert [r.partition for r in rows] == [
        HourPartition(2026, 3, 5, 7),
        HourPartition(2026, 3, 5, 8),
        HourPartition(2026, 3, 5, 7),
    ]
    assert sorted({r.partition.folder(zero_padded=True) for r in rows}) == [
        "y=2026/m=03/d=05/h=07",
        "y=2026/m=03/d=05/h=08",
    ]
    assert [col(r, "p_time") for r in rows] == ["07:59:59", "08:00:00", "07:00:00"]


# --------------------------------------------------------------------------- what does not fit


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"date": "2026-02-30"}, "bad date '2026-02-30'"),
        ({"date": "05/03/2026"}, "bad date '05/03/2026': expected YYYY-MM-DD"),
        ({"time": "24:00:00"}, "bad time '24:00:00'"),
        ({"time": "7:59:58"}, "bad time '7:59:58'"),
        ({"sc_bytes": "-"}, "sc-bytes is not an integer: '-'"),
        ({"cs_bytes": "12.5"}, "cs-bytes is not an integer: '12.5'"),
        ({"time_taken": "-3"}, "time-taken is not an integer: '-3'"),
        ({"sc_bytes": "٣"}, "sc-bytes is not an integer"),
        ({"sc_bytes": "2147483648"}, "sc-bytes 2147483648 exceeds Hive INT range"),
        ({"cs_bytes": "99999999999"}, "cs-bytes 99999999999 exceeds Hive INT range"),
    ],
)
def test_bad_values_are_quarantined_with_the_reason(overrides: dict[str, str], reason: str) -> None:
    line = ua_line(SPOT_BLUECOAT_FIELDS, **overrides)
    (item,) = proxy_rows_from_lines(["#Remark: x", line], "feed.log")
    assert isinstance(item, QuarantinedLine)
    assert item == QuarantinedLine(source="feed.log", line_no=2, raw=line, reason=item.reason)
    assert reason in item.reason


def test_largest_hive_int_and_leading_zeros_are_rows() -> None:
    line = ua_line(SPOT_BLUECOAT_FIELDS, sc_bytes="2147483647", cs_bytes="000000000042", time_taken="00")
    (row,) = proxy_rows_from_lines([line], "x")
    assert isinstance(row, Row)
    assert (col(row, "scbytes"), col(row, "csbytes"), col(row, "duration")) == ("2147483647", "42", "0")


@pytest.mark.parametrize(
    "line",
    [
        ua_line(PROXYSG_MAIN_FIELDS, cs_user_agent="UA").replace(" UA ", ' "Mozilla/5.0 (no end '),
        ua_line(PROXYSG_MAIN_FIELDS, cs_user_agent="UA").replace(" UA ", ' "Mozilla"x '),
        ua_line(PROXYSG_MAIN_FIELDS, cs_user_agent="UA").replace(" UA ", ' x"Mozilla" "y '),
    ],
)
def test_unbalanced_quotes_are_quarantined(line: str) -> None:
    (item,) = proxy_rows_from_lines([line], "x")
    assert isinstance(item, QuarantinedLine)
    assert item.reason.startswith("unbalanced double quote at column ")


def test_unquoted_user_agent_is_not_rescued_by_the_extra_fields_rule() -> None:
    """Extra tokens are only ignored behind an IP in s-ip; an unquoted UA shifts a non-IP there."""
    line = ua_line(PROXYSG_MAIN_FIELDS, cs_user_agent="UA").replace(" UA ", f" {UA} ")
    (item,) = proxy_rows_from_lines([line], "x")
    assert isinstance(item, QuarantinedLine)
    assert item.reason.startswith(f"{23 + len(UA.split())} fields fit no known layout")


def test_header_without_required_fields_quarantines_its_lines() -> None:
    lines = ["#Fields: date time c-ip cs-host", "2026-03-05 07:59:58 10.0.0.7 example.com"]
    (item,) = proxy_rows_from_lines(lines, "x")
    assert isinstance(item, QuarantinedLine)
    assert item.reason == (
        "#Fields header of line 1 does not log required field(s) time-taken, sc-bytes, cs-bytes"
    )


def test_header_change_mid_file_applies_to_following_lines() -> None:
    short = ("date", "time", "time-taken", "c-ip", "cs-host", "sc-bytes", "cs-bytes", "cs(User-Agent)")
    lines = [
        "#Fields: " + " ".join(PROXYSG_MAIN_FIELDS),
        ua_line(PROXYSG_MAIN_FIELDS, cs_host="one.example"),
        "#Date: 2026-03-05 08:00:00",
        "#Fields: " + " ".join(short).upper(),  # names match case-insensitively
        ua_line(short, cs_host="two.example", cs_user_agent="agent x"),
        ua_line(PROXYSG_MAIN_FIELDS, cs_host="three.example"),  # the old layout no longer applies
    ]
    items = list(proxy_rows_from_lines(lines, "x"))
    assert [type(i).__name__ for i in items] == ["Row", "Row", "QuarantinedLine"]
    one, two, bad = items
    assert isinstance(one, Row) and isinstance(two, Row) and isinstance(bad, QuarantinedLine)
    assert (col(one, "host"), col(two, "host")) == ("one.example", "two.example")
    assert col(two, "useragent") == "agent x"
    assert col(two, "respcode") == col(two, "serverip") == col(two, "uripath") == "-"
    assert col(two, "fulluri") == "two.example"
    assert (two.line_no, bad.line_no) == (5, 6)
    assert "expected 8 (#Fields header of line 4)" in bad.reason


def test_garbage_only_quarantine_and_dissect_file_fails_after_yielding(tmp_path: Path) -> None:
    garbage = ["\x00\x01 binary", "hello world", 'unterminated "quote', "2026-03-05"]
    assert all(isinstance(i, QuarantinedLine) for i in proxy_rows_from_lines(garbage, "g"))

    path = tmp_path / "garbage.log"
    path.write_text("\n".join(garbage) + "\n")
    seen: list[Row | QuarantinedLine] = []
    with pytest.raises(ProxyFileError, match=r"garbage\.log: no row in the file; all 4 data line") as err:
        seen.extend(dissect_proxy_file(path))
    assert [q.line_no for q in quarantine_of(seen)] == [1, 2, 3, 4]
    assert err.value.quarantined == 4
    assert err.value.path == str(path)
    # The caller may prefer to decide itself.
    assert len(list(dissect_proxy_file(path, fail_without_rows=False))) == 4


def test_empty_file_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "SG_main_2026030507.log"
    path.write_bytes(b"")
    with pytest.raises(ProxyFileError, match=r"SG_main_2026030507\.log: file is empty \(0 bytes\)"):
        list(dissect_proxy_file(path))


def test_header_only_and_blank_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "quiet.log"
    path.write_text("#Software: SGOS 6.7.5.14\n#Fields: date time\n\n   \n")
    assert list(dissect_proxy_file(path)) == []


def test_blank_lines_are_skipped_and_line_numbers_kept() -> None:
    lines = ["", ua_line(SPOT_BLUECOAT_FIELDS), "   ", "\t", ua_line(SPOT_BLUECOAT_FIELDS), "\n"]
    assert [i.line_no for i in proxy_rows_from_lines(lines, "x")] == [2, 5]


def test_crlf_and_non_utf8_bytes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ok = ua_line(SPOT_BLUECOAT_FIELDS, cs_user_agent="agent \xe9t\xe9").encode("latin-1")
    also_ok = ua_line(SPOT_BLUECOAT_FIELDS, cs_user_agent="agent été").encode("utf-8")
    bad = b"\xff\xfe not a log line"
    path = tmp_path / "crlf.log"
    path.write_bytes(b"\r\n".join([b"#Software: SGOS 6.7", ok, also_ok, bad]) + b"\r\n")
    with caplog.at_level(logging.WARNING, logger="spot_operators.dissectors.proxy"):
        items = list(dissect_proxy_file(path))
    latin, utf8, quarantined = items
    assert isinstance(latin, Row) and isinstance(utf8, Row) and isinstance(quarantined, QuarantinedLine)
    assert col(latin, "useragent") == "agent été"  # latin-1 fallback, byte for byte
    assert col(latin, "useragent").encode("latin-1") == b"agent \xe9t\xe9"
    assert col(utf8, "useragent") == "agent été"
    assert col(latin, "fulluri") == "example.com/index.html?a=1"
    assert col(latin, "bcappoper") == "-"  # no stray \r on the last field
    assert quarantined.line_no == 4
    assert quarantined.raw == "\xff\xfe not a log line"
    assert quarantined.reason.endswith("(not UTF-8; decoded as latin-1)")
    assert "2 line(s) are not valid UTF-8 and were decoded as latin-1: lines 2, 4" in caplog.text


def test_utf8_bom_does_not_hide_the_first_header() -> None:
    lines = ["\ufeff#Fields: " + " ".join(PROXYSG_MAIN_FIELDS), ua_line(PROXYSG_MAIN_FIELDS)]
    (row,) = proxy_rows_from_lines(lines, "x")
    assert isinstance(row, Row)


def test_mixed_file_accounting_invariant(tmp_path: Path) -> None:
    data_lines = [
        ua_line(SPOT_BLUECOAT_FIELDS),
        "junk",
        ua_line(PROXYSG_MAIN_FIELDS, cs_user_agent=UA),
        ua_line(PROXYSG_MAIN_FIELDS, sc_bytes="lots"),
        ua_line(PROXYSG_MAIN_FIELDS) + ' 10.1.1.1 "extra agent" more',
    ]
    text = "\n".join(["#Software: SGOS", "", *data_lines, "#Remark: end", ""])
    path = tmp_path / "mixed.log"
    path.write_text(text)
    items = list(dissect_proxy_file(path))
    assert len(items) == len(data_lines)
    assert [type(i).__name__ for i in items] == ["Row", "QuarantinedLine", "Row", "QuarantinedLine", "Row"]
    assert [i.line_no for i in items] == [3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    "line",
    [
        'a b "c d" e',
        '"lead" x "trail"',
        'x "" y',
        "  spaced\tout  ",
        'one "two three" "four  five" six',
        ua_line(PROXYSG_MAIN_FIELDS, cs_user_agent=UA, cs_categories="Web Ads/Analytics"),
    ],
)
def test_tokenize_agrees_with_shlex_on_plain_quoting(line: str) -> None:
    assert tokenize(line) == shlex.split(line)
