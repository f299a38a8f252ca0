"""The listener's columnar fast path types a clean unit exactly as the row path does, and declines the rest.

Every comparison is against :mod:`spot_operators.listener_rows` (the reference): the fast path's table
must equal the row path's rows converted to the listener's Arrow types (floats compared bit for bit
after float32 rounding), and the listener's ``type_units`` must produce the same batch output with the
fast path as with it switched off, quarantine reasons and line numbers included.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from spot_operators import listener_pass
from spot_operators.listener_columns import ARROW_TYPES, lines_body, text_body, typed_lines, typed_text
from spot_operators.listener_messages import MESSAGE_COLUMNS
from spot_operators.listener_pass import QUARANTINE_EXTRA, UNIT_EXTRA, arrow_schema, type_units
from spot_operators.listener_rows import Quarantine, csv_records, split_line, typed_fields, typed_row
from spot_operators.segments import csv_line
from spot_operators.tables import DNS, FLOW, PROXY, TABLES
from tests.unit.test_listener_rows import DNS_LINE, FLOW_LINE, PROXY_FIELDS

ROOT = Path(__file__).resolve().parents[2]
FLOW_SAMPLE = ROOT.parent / "shared" / "data" / "flow" / "nfcapd.202301251836"
PROXY_LINE = csv_line(PROXY_FIELDS)


def _listener() -> Any:
    spec = importlib.util.spec_from_file_location("spot_listener_job", ROOT / "include/jobs/spot_listener.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LISTENER = _listener()


def _schema(data_type: str) -> pa.Schema:
    spec = TABLES[data_type]
    return pa.schema([(n, ARROW_TYPES[t]) for n, t in (*spec.columns, *spec.partitions)])


def _row_table(data_type: str, lines: list[str]) -> pa.Table:
    """The row path's typed rows as the listener turns them into Arrow (all lines must be good)."""
    rows = [typed_row(data_type, line) for line in lines]
    assert not any(isinstance(r, Quarantine) for r in rows), rows
    names = _schema(data_type).names
    return pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows], schema=_schema(data_type))  # type: ignore[arg-type]


def _assert_same(fast: pa.Table | None, slow: pa.Table) -> None:
    assert fast is not None
    assert fast.schema == slow.schema
    assert fast.equals(slow)
    for name in fast.schema.names:
        if fast.schema.field(name).type == pa.float32():  # -0.0 == 0.0 for equals(): compare the bits
            bits = [[struct.pack("<f", v) for v in t.column(name).to_pylist()] for t in (fast, slow)]
            assert bits[0] == bits[1], name


def _check_good(data_type: str, lines: list[str]) -> None:
    slow = _row_table(data_type, lines)
    _assert_same(typed_lines(data_type, lines), slow)
    _assert_same(typed_lines(data_type, pa.array(["pad", *lines, "pad"]).slice(1, len(lines))), slow)
    _assert_same(typed_text(data_type, "\n".join(lines) + "\n"), slow)
    _assert_same(typed_text(data_type, "\n".join(lines)), slow)


def _with(data_type: str, line: str, column: str, value: str) -> str:
    fields = split_line(line)
    assert isinstance(fields, list)
    fields[TABLES[data_type].column_names.index(column)] = value
    return csv_line(fields)


# --- type_units with and without the fast path ---------------------------------------------------------

UNIT_COLUMNS = (*MESSAGE_COLUMNS, *UNIT_EXTRA)


def _unit(
    n: int, lines: list[str] | None = None, text: str | None = None, error: str | None = None
) -> dict[str, Any]:
    return {
        "topic": "spot-flow",
        "kafka_partition": n % 3,
        "kafka_offset": 1000 + n,
        "pipeline": "internals",
        "file_name": f"file-{n}",
        "file_digest": f"digest-{n}",
        "segment_index": n,
        "segment_count": 9,
        "expected_rows": len(lines or []),
        "lines": lines,
        "text": text,
        "error": error,
    }


def _type_units(data_type: str, units: list[dict[str, Any]]) -> pa.Table:
    spec = TABLES[data_type]
    out_columns = (*spec.columns, *spec.partitions, *MESSAGE_COLUMNS, *QUARANTINE_EXTRA)
    batch = pa.RecordBatch.from_pylist(units, schema=arrow_schema(UNIT_COLUMNS))
    out = list(type_units(iter([batch]), data_type, out_columns))
    return pa.Table.from_batches(out, schema=arrow_schema(out_columns))


def _both(
    monkeypatch: pytest.MonkeyPatch, data_type: str, units: list[dict[str, Any]]
) -> tuple[pa.Table, pa.Table]:
    fast = _type_units(data_type, units)
    declined: list[str] = []

    def decline(*_: Any) -> None:
        declined.append("unit")

    with monkeypatch.context() as patch:  # the names the typing pass calls, so the row path types all
        patch.setattr(listener_pass, "typed_lines", decline)
        patch.setattr(listener_pass, "typed_text", decline)
        slow = _type_units(data_type, units)
    typable = [u for u in units if u["error"] is None and (u["lines"] is not None or u["text"] is not None)]
    assert len(declined) == len(typable), "the fast path was not switched off for every unit"
    return fast, slow


def _units_of(lines: list[str]) -> list[dict[str, Any]]:
    return [_unit(0, lines=lines), _unit(1, text="\n".join(lines) + "\n"), _unit(2, text="\n".join(lines))]


# --- good input: the fast path takes it and equals the row path ----------------------------------------


@pytest.mark.skipif(
    shutil.which("nfdump") is None or not FLOW_SAMPLE.exists(), reason="nfdump or sample missing"
)
def test_real_flow_sample_rows_equal_the_row_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from spot_operators.dissectors.flow import dissect_flow_file
    from spot_operators.rows import Row

    lines = [csv_line(r.fields) for r in dissect_flow_file(FLOW_SAMPLE) if isinstance(r, Row)]
    assert len(lines) > 3000
    _check_good("flow", lines)
    fast, slow = _both(monkeypatch, "flow", _units_of(lines))
    assert fast.num_rows == 3 * len(lines) and fast.equals(slow)


def test_flow_dns_proxy_and_ipv6_rows_equal_the_row_path() -> None:
    _check_good(
        "flow",
        [
            FLOW_LINE,
            _with("flow", FLOW_LINE, "sip", "2001:db8::1"),
            _with("flow", FLOW_LINE, "rip", "fe80::1%eth0"),
        ],
    )
    _check_good(
        "dns",
        [
            DNS_LINE,
            _with("dns", DNS_LINE, "ip_src", "2001:4860:4860::8888"),
            _with("dns", DNS_LINE, "dns_a", ""),
        ],
    )
    late = [*PROXY_FIELDS]
    late[0], late[1] = "2024-12-31", "23:59:59"
    _check_good("proxy", [PROXY_LINE, csv_line(late)])


@pytest.mark.parametrize(
    "value",
    ["a,b", 'say "hi"', '"', '""', "", " spaced ", "tab\there", "ünïcödé ✓", "\u2028not a break", 'x,"y",z'],
)
def test_quoted_and_empty_string_fields(value: str) -> None:
    _check_good("dns", [_with("dns", DNS_LINE, "dns_qry_name", value), DNS_LINE])
    _check_good("proxy", [csv_line([*PROXY_FIELDS[:5], value, *PROXY_FIELDS[6:]])])


@pytest.mark.parametrize("value", ["xTCP", "TCPX"])
def test_an_x_in_a_string_field_keeps_the_columnar_path(value: str) -> None:
    # A body holding an "x" or "X" anywhere has its integer columns checked for hexadecimal one by
    # one (FLOW_LINE has none, so the other tests cover the body-wide skip of those checks).
    assert "x" not in FLOW_LINE.lower()
    _check_good("flow", [_with("flow", FLOW_LINE, "proto", value), FLOW_LINE])


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("sport", "2147483647"),
        ("sport", "-2147483648"),
        ("sport", "0"),
        ("sport", "-0"),
        ("sport", "007"),
        ("ibyt", "999999999999999999"),
        ("ibyt", "-999999999999999999"),
        ("ibyt", "9223372036854775807"),
        ("ibyt", "-9223372036854775808"),
        ("ibyt", "000000000000000000001"),
        ("unix_tstamp", "1"),
        ("unix_tstamp", "253402300799"),
        ("tdur", "1e3"),
        ("tdur", "-0.0"),
        ("tdur", "0.1"),
        ("tdur", "1."),
        ("tdur", ".5"),
        ("tdur", "-1.5E-7"),
        ("tdur", "3.4028234663852886e38"),
        ("tdur", "1e-400"),
        ("tdur", "123456789.123456789123"),
    ],
)
def test_boundary_values_equal_the_row_path(column: str, value: str) -> None:
    line = _with("flow", FLOW_LINE, column, value)
    _check_good("flow", [line, FLOW_LINE])


# --- anything else: the fast path declines, the unit is typed row by row as before -----------------------

BAD_FLOW = [
    ("sport", "2147483648"),
    ("sport", "-2147483649"),
    ("dtos", "2147483648"),
    ("ibyt", "9223372036854775808"),
    ("ibyt", "-9223372036854775809"),
    ("ibyt", "0009223372036854775807"),  # in range, but the row path refuses over 21 characters
    ("sport", "0x1BB"),
    ("sport", "0X1BB"),
    ("sport", "-0x1"),
    ("sport", "1-"),
    ("sport", "--1"),
    ("sport", "-"),
    ("ibyt", "1" * 40),
    ("sport", "https"),
    ("sport", ""),
    ("sport", " 443"),
    ("sport", "+443"),
    ("sport", "٤٤٣"),
    ("ipkt", "1e3"),
    ("tdur", "nan"),
    ("tdur", "inf"),
    ("tdur", "-inf"),
    ("tdur", "1.5x"),
    ("tdur", "1e39"),
    ("tdur", "3.4028235e38"),
    ("tdur", "1_000"),
    ("tdur", " 1.5"),
    ("tdur", ""),
    ("unix_tstamp", "0"),
    ("unix_tstamp", "-5"),
    ("unix_tstamp", "253402300800"),
]


@pytest.mark.parametrize(("column", "value"), BAD_FLOW)
def test_bad_flow_values_fall_back_to_the_same_quarantine(
    monkeypatch: pytest.MonkeyPatch, column: str, value: str
) -> None:
    lines = [FLOW_LINE, _with("flow", FLOW_LINE, column, value), FLOW_LINE]
    assert typed_lines("flow", lines) is None
    assert typed_text("flow", "\n".join(lines) + "\n") is None
    fast, slow = _both(monkeypatch, "flow", _units_of(lines))
    assert fast.equals(slow)


@pytest.mark.parametrize(
    ("data_type", "lines"),
    [
        ("flow", [FLOW_LINE, "a,b,c"]),
        ("flow", [FLOW_LINE, FLOW_LINE + ",extra"]),
        ("dns", [DNS_LINE, FLOW_LINE]),
        ("flow", [FLOW_LINE, ""]),
        # A blank line inside: Arrow reads a row of empty fields, which every table's checks refuse.
        ("flow", [FLOW_LINE, "", FLOW_LINE]),
        ("dns", [DNS_LINE, "", DNS_LINE]),
        ("proxy", [PROXY_LINE, "", PROXY_LINE]),
        ("flow", [f"{FLOW_LINE}\n{FLOW_LINE}", FLOW_LINE]),  # two records in one line: one row too many
        ("flow", [FLOW_LINE, 'a,"unterminated']),
        ("flow", [FLOW_LINE, FLOW_LINE + '"x']),  # a quote inside an unquoted field: csv keeps it
        ("flow", [FLOW_LINE.replace(",TCP,", ',"TCP"x,')]),
        ("flow", [FLOW_LINE.replace(",TCP,", ',T"CP,')]),
        ("flow", [FLOW_LINE.replace(",TCP,", ',"T\nCP",')]),
        ("flow", [FLOW_LINE.replace(",TCP,", ',"T\r\nCP",')]),
        ("flow", [FLOW_LINE + "\r"]),
        ("flow", [FLOW_LINE.replace(",TCP,", ",T\x00CP,")]),
        ("flow", ["\ufeff" + FLOW_LINE]),
        ("proxy", [csv_line(["2024-02-30", *PROXY_FIELDS[1:]])]),
        ("proxy", [csv_line(["0000-01-01", *PROXY_FIELDS[1:]])]),
        ("proxy", [csv_line(["22/03/2024", *PROXY_FIELDS[1:]])]),
        ("proxy", [csv_line([PROXY_FIELDS[0], "24:00:00", *PROXY_FIELDS[2:]])]),
        ("proxy", [csv_line([PROXY_FIELDS[0], "6:16:01", *PROXY_FIELDS[2:]])]),
        ("proxy", [csv_line([*PROXY_FIELDS[:7], "-", *PROXY_FIELDS[8:]])]),
        ("proxy", [csv_line([*PROXY_FIELDS[:22], "2147483648", *PROXY_FIELDS[23:]])]),
    ],
)
def test_bad_shapes_fall_back_to_the_same_quarantine(
    monkeypatch: pytest.MonkeyPatch, data_type: str, lines: list[str]
) -> None:
    assert typed_lines(data_type, lines) is None
    fast, slow = _both(monkeypatch, data_type, _units_of(lines))
    assert fast.equals(slow)


@pytest.mark.parametrize(
    "text",
    [
        f"{FLOW_LINE}\n\n{FLOW_LINE}\n",  # blank line: skipped by csv_records, line numbers move on
        f"\n{FLOW_LINE}\n",
        f"{FLOW_LINE}\n\n",
        f"{FLOW_LINE}\r\n{FLOW_LINE}\r\n",
        f"{FLOW_LINE}\r{FLOW_LINE}",
        f'{DNS_LINE}\n"multi\nline",x\n{FLOW_LINE}\nbad,"quote"x\nlast\n',
        f"{FLOW_LINE}\na,b\n{FLOW_LINE}\n",
        "",
        "\n",
    ],
)
def test_staged_texts_with_odd_lines_fall_back(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    assert text_body(text) is None or typed_text("flow", text) is None
    fast, slow = _both(monkeypatch, "flow", [_unit(0, text=text), _unit(1, lines=[FLOW_LINE])])
    assert fast.equals(slow)
    expected = [
        n
        for n, _, f in csv_records(text)
        if isinstance(f, Quarantine) or isinstance(typed_fields("flow", f), Quarantine)
    ]
    assert [n for n in slow.column("line_no").to_pylist() if n is not None] == expected


@pytest.mark.parametrize(
    "bad",
    # a stray byte, a cut sequence, an overlong one, a surrogate, a code point above U+10FFFF
    [b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"],
)
def test_staged_bytes_type_as_their_text_and_only_if_utf8(bad: bytes) -> None:
    # listen_texts hands the columnar path a staged CSV's bytes undecoded: the same columns as its
    # text when they are UTF-8, and "cannot vouch" for anything Python's decoder refuses.
    lines = [FLOW_LINE, _with("flow", FLOW_LINE, "unix_tstamp", "1674604800"), FLOW_LINE]
    data = ("\n".join(lines) + "\n").encode()
    _assert_same(typed_text("flow", data), _row_table("flow", lines))
    _assert_same(typed_text("flow", data[:-1]), _row_table("flow", lines))
    damaged = data.replace(b"TCP", b"T" + bad + b"P", 1)
    with pytest.raises(UnicodeDecodeError):
        damaged.decode("utf-8")
    assert typed_text("flow", damaged) is None


def test_mixed_units_keep_order_provenance_and_quarantine(monkeypatch: pytest.MonkeyPatch) -> None:
    good = [FLOW_LINE, _with("flow", FLOW_LINE, "unix_tstamp", "1674604800")]
    bad = [FLOW_LINE, _with("flow", FLOW_LINE, "sport", "https")]
    units = [
        _unit(0, lines=good),
        _unit(1, lines=bad),
        _unit(2, error="undecodable message: boom"),
        _unit(3, text="\n".join(good * 5000) + "\n"),  # more rows than one output batch
        _unit(4, lines=[]),
        _unit(5, text=""),
        _unit(6, text="\n".join(bad)),
        _unit(7, lines=good),
    ]
    fast, slow = _both(monkeypatch, "flow", units)
    assert fast.num_rows == 2 + 2 + 1 + 10000 + 2 + 2
    assert fast.equals(slow)
    assert fast.column("file_name").to_pylist()[:5] == ["file-0", "file-0", "file-1", "file-1", "file-2"]
    reasons = [
        (n, r)
        for n, r in zip(slow.column("line_no").to_pylist(), slow.column("reason").to_pylist(), strict=True)
        if r
    ]
    assert reasons == [
        (2, "sport is not an integer: 'https'"),
        (0, "undecodable message: boom"),
        (2, "sport is not an integer: 'https'"),
    ]


def test_bodies_are_the_records_one_per_line() -> None:
    body = f"{FLOW_LINE}\n{DNS_LINE}\n".encode()  # each record ended by its line feed
    assert lines_body([FLOW_LINE, DNS_LINE]) == body
    assert lines_body(pa.array([FLOW_LINE, DNS_LINE])) == body
    assert text_body(f"{FLOW_LINE}\n{DNS_LINE}\n") == body
    assert text_body(f"{FLOW_LINE}\n{DNS_LINE}") == body  # a text without its final line feed
    text = f"{FLOW_LINE}\n{DNS_LINE}\n".encode()
    assert text_body(text) is text  # a staged or v2 text is not copied
    assert lines_body([]) is None and lines_body(pa.array([FLOW_LINE, None])) is None
    # A blank first or last line, or an empty text, is not a body.
    for blank in ("", "\n", f"\n{FLOW_LINE}\n", f"{FLOW_LINE}\n\n"):
        assert text_body(blank) is None and text_body(blank.encode()) is None, repr(blank)
    assert lines_body([FLOW_LINE, ""]) is None and lines_body(["", FLOW_LINE]) is None
    # Lines as the listener reads them: bytes, the same body; not UTF-8 is the row path's business.
    assert lines_body([FLOW_LINE.encode(), DNS_LINE.encode()]) == body
    assert lines_body([b'"a",b', b"\xff"]) is None
    assert typed_lines("flow", [FLOW_LINE.encode(), FLOW_LINE.encode().replace(b",", b",\xff", 1)]) is None
    assert typed_lines("flow", [FLOW_LINE, FLOW_LINE.replace(",", ",\udcff", 1)]) is None  # surrogate escape


def test_every_table_type_has_an_arrow_type() -> None:
    for spec in (FLOW, DNS, PROXY):
        assert all(t in ARROW_TYPES for _, t in (*spec.columns, *spec.partitions))


def _package_imports(module: Path) -> set[str]:
    """The ``spot_operators`` modules ``module`` imports, anywhere in it (as file names)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            dotted = [f"{node.module}.{alias.name}" for alias in node.names] if node.module else []
        elif isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        else:
            continue
        found |= {f"{name.split('.')[1]}.py" for name in dotted if name.startswith("spot_operators.")}
    return found


def test_the_listener_ships_every_module_its_executors_import() -> None:
    """Executors import only the zip the listener ships: a module the typing pass imports but the zip
    lacks would fail every batch on a cluster (locally the plugins folder may hide it)."""
    package = ROOT / "plugins" / "spot_operators"
    shipped = set(LISTENER.SHIPPED_MODULES)
    assert {"__init__.py", "listener_pass.py"} <= shipped
    for module in sorted(shipped):
        missing = _package_imports(package / module) - shipped
        assert not missing, f"{module} imports {sorted(missing)}, which the listener does not ship"
    # The functions the driver hands to mapInArrow come from the shipped modules.
    for function in (LISTENER.listen_messages, LISTENER.listen_texts):
        assert f"{function.__module__.split('.')[-1]}.py" in shipped
