"""The listener's single typing pass (``listen_messages``/``listen_units``) against the reference.

The reference is the listener's earlier pipeline, step by step: decode every message, keep one per
``(file_digest, segment_index)`` (the lowest ``(topic, partition, offset)``), type the units with
``type_units``, group the typed rows into load-log entries. The single pass must write the same good
rows, report the same messages, entries and quarantine rows, and leave out the duplicates it is told
to skip. No Spark: the functions are plain generators over Arrow record batches.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pytest

from spot_operators.envelope import (
    MESSAGE_SCHEMA_FILE,
    MESSAGE_SCHEMA_FILES,
    SCHEMA_VERSION,
    SCHEMAS_DIR,
    SPOT_LIST_SCHEMA_FILE,
    IngestMessage,
    Pointer,
    encode_message,
    encode_spot_list,
    load_schema,
    message_schema_jsons,
)
from spot_operators.listener_messages import (
    MESSAGE_COLUMNS,
    MESSAGE_NAMES,
    bytes_lines_schema,
    decode_message,
    duplicates,
    message_key,
)
from spot_operators.listener_pass import (
    BAD_COLUMNS,
    ENTRY_IDENTITY,
    PASS_COLUMNS,
    QUARANTINE_EXTRA,
    UNIT_EXTRA,
    arrow_schema,
    listen_messages,
    listen_texts,
    parquet_files,
    refused_texts_report,
    type_units,
    unit_numbers,
)
from spot_operators.listener_publish import glob_escaped
from spot_operators.tables import TABLES
from tests.unit.test_listener_columns import LISTENER, _with
from tests.unit.test_listener_rows import FLOW_LINE

ROOT = Path(__file__).resolve().parents[2]


def _good_columns(data_type: str) -> tuple[tuple[str, str], ...]:
    spec = TABLES[data_type]
    return (*spec.columns, *spec.partitions)


def _inline(rows: list[str], digest: str, index: int = 0, data_type: str = "flow") -> IngestMessage:
    return IngestMessage("INLINE", "it", data_type, f"file-{digest}", digest, index, 2, rows=tuple(rows))


def _version(message: IngestMessage, version: int) -> bytes:
    return _encode({**message.to_record(), "schema_version": version})


def v1_record(message: IngestMessage) -> dict[str, Any]:
    """``message`` as a v1 envelope datum (its rows an array of lines), as earlier collectors wrote it."""
    record = {**message.to_record(), "schema_version": 1, "rows": list(message.rows)}
    del record["csv"], record["row_count"]
    return record


def encode_v1(message: IngestMessage) -> bytes:
    """``message`` as a v1 envelope message: messages written before v2 must still load."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, load_schema(MESSAGE_SCHEMA_FILES[1]), v1_record(message))
    return buffer.getvalue()


def _encode(record: dict[str, Any]) -> bytes:
    """A datum of the current envelope, written as it is (a CSV text need not be UTF-8)."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, load_schema(MESSAGE_SCHEMA_FILE), record)
    return buffer.getvalue()


def _kafka(values: Sequence[bytes | None], topic: str = "t", partition: int = 0) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "value": pa.array(values, pa.binary()),
            "topic": [topic] * len(values),
            "partition": pa.array([partition] * len(values), pa.int32()),
            "offset": pa.array(range(100, 100 + len(values)), pa.int64()),
        }
    )


GOOD = [FLOW_LINE, _with("flow", FLOW_LINE, "unix_tstamp", "1674604800")]  # two hours
BAD = [FLOW_LINE, _with("flow", FLOW_LINE, "sport", "https"), "a,b"]
POINTER = IngestMessage(
    "POINTER", "it", "flow", "big", "d-pointer", 0, 1, pointer=Pointer("/stage/x.csv", 10, 3, "0" * 64)
)


def _values() -> list[bytes | None]:
    return [
        encode_message(_inline(GOOD, "d-good")),
        encode_message(_inline(BAD, "d-bad")),
        encode_message(_inline(GOOD, "d-good")),  # duplicate of offset 100
        encode_message(POINTER),
        encode_message(_inline(GOOD, "d-dns", data_type="dns")),
        b"\x00garbage",
        encode_message(_inline(GOOD, "d-cut"))[:-40],
        _version(_inline(GOOD, "d-v3"), 3),
        None,
        encode_message(_inline([], "d-empty")),
        encode_message(_inline(GOOD * 3, "d-good", index=1)),
        encode_v1(_inline(BAD, "d-v1-bad")),
        encode_v1(_inline(GOOD, "d-v1")),
        encode_v1(_inline([], "d-v1-empty")),
    ]


def _schema_json(message_format: str = "ingest", version: int = SCHEMA_VERSION) -> str:
    name = SPOT_LIST_SCHEMA_FILE if message_format == "spot_list" else MESSAGE_SCHEMA_FILES[version]
    return (SCHEMAS_DIR / name).read_text(encoding="utf-8")


def _run(frames: list[pa.RecordBatch], bad_only: bool) -> tuple[pa.Table, dict[str, Any]]:
    """A pass's output: the good rows read back from its Parquet files (with their folder's hour),
    and its report; or, with ``bad_only``, its quarantine rows."""
    import pyarrow.parquet as pq

    if bad_only:
        return pa.Table.from_batches(frames, schema=arrow_schema(BAD_COLUMNS)), {}
    out = pa.Table.from_batches(frames, schema=arrow_schema(PASS_COLUMNS)).to_pylist()
    reports = [__import__("json").loads(r["data"]) for r in out if r["kind"] == "report"]
    assert len(reports) == 1
    parts = []
    for r in out:
        if r["kind"] == "file":
            table = pq.read_table(io.BytesIO(r["data"]))
            hour = dict(part.split("=") for part in r["folder"].split("/"))
            assert list(hour) == ["y", "m", "d", "h"]
            for name, kind in TABLES["flow"].partitions:
                value = pa.scalar(int(hour[name]), arrow_schema([(name, kind)]).field(0).type)
                table = table.append_column(name, pa.repeat(value, table.num_rows))
            parts.append(table)
    schema = arrow_schema(_good_columns("flow"))
    good = pa.concat_tables([t.cast(schema) for t in parts]) if parts else schema.empty_table()
    return good, reports[0]


def _listen(
    batch: pa.RecordBatch,
    skip: frozenset[Any] = frozenset(),
    bad_limit: int = 1000,
    bad_only: bool = False,
    message_format: str = "ingest",
) -> tuple[pa.Table, dict[str, Any]]:
    frames = listen_messages(
        iter([batch.slice(0, 4), batch.slice(4)]),
        "flow",
        message_format,
        message_schema_jsons(message_format),
        "edge" if message_format == "spot_list" else "",
        _good_columns("flow"),
        skip,
        bad_limit,
        bad_only,
    )
    return _run(list(frames), bad_only)


def _reference(batch: pa.RecordBatch, message_format: str = "ingest") -> dict[str, Any]:
    """The earlier pipeline: decode, dedupe, type_units, group by unit and hour."""
    schemas = {
        version: fastavro.parse_schema(json.loads(text))
        for version, text in message_schema_jsons(message_format).items()
    }
    pipeline = "edge" if message_format == "spot_list" else ""
    decoded = [
        decode_message(v, t, p, o, schemas, "flow", message_format, pipeline)
        for v, t, p, o in zip(*(batch.column(n).to_pylist() for n in batch.schema.names), strict=True)
    ]
    first: dict[Any, Any] = {}
    for d in decoded:
        key = (d["file_digest"], d["segment_index"])
        if key not in first or message_key(d) < message_key(first[key]):
            first[key] = d
    unique = sorted(first.values(), key=message_key)
    units = [
        {
            **{n: d[n] for n in MESSAGE_NAMES},
            "lines": d["lines"],
            "text": None if d["text"] is None else d["text"].decode("utf-8"),
            "error": d["error"],
        }
        for d in unique
        if d["kind"] != "POINTER"
    ]
    spec = TABLES["flow"]
    out_columns = (*spec.columns, *spec.partitions, *MESSAGE_COLUMNS, *QUARANTINE_EXTRA)
    unit_batch = pa.RecordBatch.from_pylist(units, schema=arrow_schema((*MESSAGE_COLUMNS, *UNIT_EXTRA)))
    typed = pa.Table.from_batches(
        list(type_units(iter([unit_batch]), "flow", out_columns)),
        schema=arrow_schema(out_columns),
    ).to_pylist()
    entries: Counter[Any] = Counter()
    for row in typed:
        hour = tuple(None if row[n] is None else str(row[n]) for n in "ymdh")
        key = (*(row[n] for n in ENTRY_IDENTITY), *hour)
        entries[(*key, "rows" if row["reason"] is None else "quarantined")] += 1
    good_names = [n for n, _ in _good_columns("flow")]
    return {
        "decoded": decoded,
        "unique": unique,
        "good": sorted(tuple(r[n] for n in good_names) for r in typed if r["reason"] is None),
        "bad": sorted(
            (
                r["pipeline"],
                r["file_name"],
                r["file_digest"],
                r["segment_index"],
                r["line_no"],
                r["raw"],
                r["reason"],
            )
            for r in typed
            if r["reason"] is not None
        ),
        "entries": entries,
    }


def _entry_counts(entries: list[dict[str, Any]]) -> Counter[Any]:
    counts: Counter[Any] = Counter()
    for e in entries:
        key = (*(e[n] for n in ENTRY_IDENTITY), *(e[n] for n in "ymdh"))
        for what in ("rows", "quarantined"):
            if e[what]:
                counts[(*key, what)] += e[what]
    return counts


def encode_with_raw_lines(
    schema_json: str, record: dict[str, Any], lines_field: str, lines: list[bytes]
) -> bytes:
    """``record`` encoded with ``lines`` written as they are (Avro writes a string as its bytes), so a
    line may hold bytes that are not UTF-8, as an edge collector that does not check could send."""
    schema = fastavro.parse_schema(bytes_lines_schema(schema_json))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, {**record, lines_field: lines})
    return buffer.getvalue()


@pytest.mark.parametrize("message_format", ["ingest", "ingest (v1 envelope)", "spot_list"])
def test_a_line_that_is_not_utf8_is_quarantined_alone(message_format: str) -> None:
    """Only the damaged line goes to quarantine (its first bad byte named, shown as \\xNN); the
    message's other lines load, and the next message is typed column-wise as usual."""
    lines = [FLOW_LINE.encode(), FLOW_LINE.encode().replace(b",", b",\xff", 1), GOOD[1].encode()]
    if message_format == "spot_list":
        damaged = encode_with_raw_lines(_schema_json("spot_list"), {}, "list", lines)
        clean = encode_spot_list(GOOD)
    elif message_format == "ingest":
        record = {
            **_inline([], "d-odd").to_record(),
            "csv": b"".join(line + b"\n" for line in lines),
            "row_count": 3,
        }
        damaged = _encode(record)
        clean = encode_message(_inline(GOOD, "d-clean"))
    else:
        message_format = "ingest"
        damaged = encode_with_raw_lines(
            _schema_json(version=1), v1_record(_inline([], "d-odd")), "rows", lines
        )
        clean = encode_v1(_inline(GOOD, "d-clean"))
    good, report = _listen(_kafka([damaged, clean]), message_format=message_format)
    assert good.num_rows == 2 + 2
    [(_, bad)] = report["bad"]
    line_no, raw, reason = bad[-3:]
    comma = FLOW_LINE.index(",") + 2
    assert (line_no, reason) == (2, f"not UTF-8: byte 0xff at character {comma}")
    assert raw == FLOW_LINE.replace(",", ",\\xff", 1)
    assert [m["kind"] for m in report["messages"]] == ["INLINE", "INLINE"]


@pytest.mark.parametrize("message_format", ["ingest", "spot_list"])
def test_single_pass_equals_the_reference_pipeline(message_format: str) -> None:
    values: list[bytes | None]
    if message_format == "spot_list":
        values = [encode_spot_list(GOOD), encode_spot_list(BAD), b"\x04", encode_spot_list([])]
    else:
        values = _values()
    batch = _kafka(values)
    want = _reference(batch, message_format)

    _, first = _listen(batch, message_format=message_format)
    assert [message_key(m) for m in first["messages"]] == [message_key(d) for d in want["decoded"]]
    skip = duplicates(first["messages"])
    assert skip == frozenset(message_key(d) for d in want["decoded"] if d not in want["unique"])
    assert len(skip) == (1 if message_format == "ingest" else 0)

    good, report = _listen(batch, skip=skip, message_format=message_format)
    names = good.schema.names
    assert sorted(tuple(r[n] for n in names) for r in good.to_pylist()) == want["good"]
    assert sorted(tuple(row) for _, row in report["bad"]) == want["bad"]
    assert _entry_counts([e for _, e in report["entries"]]) == want["entries"]
    assert not report["overflow"]
    # Without the skip set, the duplicate's rows and entries are there, each tagged with its message.
    if skip:
        assert good.num_rows < _listen(batch, message_format=message_format)[0].num_rows
    assert _entry_counts([e for k, e in first["entries"] if tuple(k) not in skip]) == want["entries"]

    bad, _ = _listen(batch, skip=skip, bad_only=True, message_format=message_format)
    assert sorted(tuple(r.values()) for r in bad.to_pylist()) == want["bad"]


@pytest.mark.parametrize("encode", [encode_message, encode_v1], ids=["v2", "v1"])
@pytest.mark.parametrize("group_rows", [1, 5, 30_000])
def test_consecutive_messages_typed_together_equal_the_reference(
    monkeypatch: pytest.MonkeyPatch, group_rows: int, encode: Any
) -> None:
    """Clean INLINE messages in a row are typed as one body (up to ``INLINE_GROUP_ROWS`` lines); a
    group with a bad line, and messages around an error, give exactly the reference's rows, entries
    and quarantine rows. For both envelope versions (a CSV text or an array of lines)."""
    import spot_operators.listener_pass as listener_pass

    calls: list[int] = []  # the lines of each columnar typing call: a group's or one message's
    typed_columns, typed_text, typed_lines = (
        listener_pass.typed_columns,
        listener_pass.typed_text,
        listener_pass.typed_lines,
    )

    def counting_group(data_type: str, body: bytes, rows: int) -> Any:
        calls.append(rows)
        return typed_columns(data_type, body, rows)

    def counting_text(data_type: str, text: str | bytes) -> Any:
        calls.append(text.count(b"\n") if isinstance(text, bytes) else text.count("\n"))
        return typed_text(data_type, text)

    def counting_lines(data_type: str, lines: Any) -> Any:
        calls.append(len(lines))
        return typed_lines(data_type, lines)

    monkeypatch.setattr(listener_pass, "typed_columns", counting_group)
    monkeypatch.setattr(listener_pass, "typed_text", counting_text)
    monkeypatch.setattr(listener_pass, "typed_lines", counting_lines)
    monkeypatch.setattr("spot_operators.listener_pass.INLINE_GROUP_ROWS", group_rows)
    values = [encode(_inline(GOOD * k, f"d-{k}")) for k in (1, 2, 3)]  # 2, 4 and 6 lines
    values += [
        b"junk",
        encode(_inline(BAD, "d-bad")),  # 3 lines, 2 of them bad
        encode(_inline(GOOD, "d-4")),
        encode(_inline(GOOD * 2, "d-5")),
        encode(_inline(GOOD, "d-6")),
    ]
    batch = _kafka(values)
    want = _reference(batch)
    calls.clear()
    good, report = _listen(batch)
    names = good.schema.names
    assert sorted(tuple(r[n] for n in names) for r in good.to_pylist()) == want["good"]
    assert sorted(tuple(row) for _, row in report["bad"]) == want["bad"]
    assert _entry_counts([e for _, e in report["entries"]]) == want["entries"]
    # Typing calls and their lines: d-1..d-3 together (the error ends the group); then d-bad..d-6
    # together, which is not clean, so each of them alone.
    assert (
        calls
        == {
            30_000: [2 + 4 + 6, 3 + 2 + 4 + 2, 3, 2, 4, 2],
            5: [2 + 4, 6, 3 + 2, 3, 2, 4 + 2],  # a group ends once it holds 5 lines
            1: [2, 4, 6, 3, 2, 4, 2],  # every message alone
        }[group_rows]
    )
    bad, _ = _listen(batch, bad_only=True)
    assert sorted(tuple(r.values()) for r in bad.to_pylist()) == want["bad"]


def test_entries_have_the_load_log_fields_and_types() -> None:
    _, report = _listen(_kafka([encode_message(_inline(GOOD, "d-good")), b"junk"]))
    entries = sorted((e for _, e in report["entries"]), key=lambda e: (e["file_digest"], e["h"] or ""))
    assert entries[0] == {
        "pipeline": "it",
        "file_name": "file-d-good",
        "file_digest": "d-good",
        "segment_index": 0,
        "segment_count": 2,
        "expected_rows": 2,
        "y": "2023",
        "m": "1",
        "d": "25",
        "h": "0",
        "rows": 1,
        "quarantined": 0,
    }
    assert {(e["h"], e["rows"]) for e in entries if e["file_digest"] == "d-good"} == {("0", 1), ("18", 1)}
    junk = entries[-1]
    assert junk["file_digest"] == "kafka:t:0:101" and (junk["y"], junk["rows"], junk["quarantined"]) == (
        None,
        0,
        1,
    )
    assert [m["kind"] for m in report["messages"]] == ["INLINE", "ERROR"]


def test_quarantine_rows_above_the_limit_only_set_overflow() -> None:
    batch = _kafka([encode_message(_inline(BAD * 3, "d-bad")), encode_message(_inline(GOOD, "d-good"))])
    good, report = _listen(batch, bad_limit=5)
    assert report["overflow"] and report["bad"] == []
    assert sum(e["quarantined"] for _, e in report["entries"]) == 6
    assert good.num_rows == 3 + 2
    bad, _ = _listen(batch, bad_limit=5, bad_only=True)
    assert bad.num_rows == 6


def test_pointer_texts_are_typed_like_messages() -> None:
    text = "\n".join([*GOOD, *BAD]) + "\n"
    ident = {n: v for n, v in zip(MESSAGE_NAMES, ["t", 1, 7, "it", "big", "d-p", 0, 1, 5], strict=True)}
    uri = "hdfs://nn:8020/spot/flow/stage/big%20one.csv"
    texts = pa.RecordBatch.from_pylist(
        [{"uri": uri, "text": text}], schema=pa.schema([("uri", pa.string()), ("text", pa.string())])
    )
    again = {**ident, "kafka_offset": 9, "file_digest": "d-again"}  # a second message naming the same file
    out = listen_texts(iter([texts]), "flow", _good_columns("flow"), {uri: [ident, again]}, 100)
    good, report = _run(list(out), False)
    assert good.num_rows == 3 * 2
    assert sorted((row[2], row[4], row[6]) for _, row in report["bad"]) == [
        ("d-again", 4, "sport is not an integer: 'https'"),
        ("d-again", 5, "expected 28 fields for flow, got 2"),
        ("d-p", 4, "sport is not an integer: 'https'"),
        ("d-p", 5, "expected 28 fields for flow, got 2"),
    ]
    assert sorted(
        (e["file_digest"], e["h"] or "", e["rows"], e["quarantined"]) for _, e in report["entries"]
    ) == [
        ("d-again", "", 0, 2),
        ("d-again", "0", 1, 0),
        ("d-again", "18", 2, 0),
        ("d-p", "", 0, 2),
        ("d-p", "0", 1, 0),
        ("d-p", "18", 2, 0),
    ]


def test_staged_csv_bytes_that_are_not_utf8_cost_only_their_line() -> None:
    lines = [line.encode() for line in GOOD] + [_with("flow", FLOW_LINE, "proto", "T\xffP").encode("latin-1")]
    ident = {n: v for n, v in zip(MESSAGE_NAMES, ["t", 1, 7, "it", "big", "d-p", 0, 1, 3], strict=True)}
    data = pa.array([b"\n".join(lines) + b"\n"], pa.binary())  # as Spark sends it: a string, unchecked
    text = pa.Array.from_buffers(pa.string(), 1, data.buffers())
    texts = pa.RecordBatch.from_arrays([pa.array(["u"]), text], names=["uri", "text"])
    out = listen_texts(iter([texts]), "flow", _good_columns("flow"), {"u": [ident]}, 100)
    good, report = _run(list(out), False)
    assert good.num_rows == 2
    [(_, bad)] = report["bad"]
    assert bad[4:] == [3, lines[2].decode("utf-8", "backslashreplace"), bad[6]]
    assert "\\xff" in bad[5] and bad[6].startswith("not UTF-8: byte 0xff at character "), bad


def test_pointer_paths_are_read_as_themselves_not_as_globs() -> None:
    assert glob_escaped("/stage/a b.csv") == "/stage/a b.csv"
    assert glob_escaped("/s/x[1]{a,b}*?\\.csv") == "/s/x\\[1\\]\\{a,b\\}\\*\\?\\\\.csv"


def test_pointer_paths_outside_the_staging_root_or_file_system_are_not_read() -> None:
    from pyspark.errors import IllegalArgumentException

    class Files:  # the driver's Hdfs: what Hadoop answers for a few paths
        def qualified(self, path: str) -> str:
            if path.startswith("file:"):
                raise IllegalArgumentException("Wrong FS")
            return "hdfs://nn:8020" + path

        def kind(self, path: str) -> tuple[str, int]:
            found = {"/spot/flow/stage/d": "folder", "/spot/flow/stage/gone.csv": "missing"}.get(path, "file")
            return found, 7 if found == "file" else 0

    listener = object.__new__(LISTENER.Listener)  # no Spark: only its path check
    listener.hdfs = Files()
    kinds = {}
    for root in ("hdfs://nn:8020/spot/flow/stage", ""):
        listener.staging_root = root
        kinds[root] = [
            listener._staged_kind(path)[0]
            for path in (
                "/spot/flow/stage/a.csv",
                "/spot/flow/stage/d",
                "/spot/flow/stage/gone.csv",
                "/spot/flow/stage-2/a.csv",
                "/spot/flow/hive/a.csv",
                "file:///etc/passwd",
            )
        ]
    assert kinds["hdfs://nn:8020/spot/flow/stage"] == [
        "file",
        "folder",
        "missing",
        "outside",
        "outside",
        "foreign",
    ]
    assert kinds[""] == ["file", "folder", "missing", "file", "file", "foreign"]


def test_staged_files_too_big_for_a_task_heap_are_named_in_a_warning() -> None:
    mib = 2**20
    sizes = {
        "/stage/b.part-00001-of-00002.csv": 16 * mib,
        "/stage/a.csv": 160 * mib,
        "/stage/c.csv": 80 * mib,
    }
    warnings = LISTENER.heavy_staged_files(sizes, 1024 * mib)
    assert len(warnings) == 2
    assert warnings[0].startswith("staged CSV /stage/a.csv is 160 MiB: reading it whole takes about 2080 MiB")
    assert "a task has about 1024 MiB" in warnings[0]
    assert "raise spark-streaming.driver_memory" in warnings[0]
    assert warnings[1].startswith("staged CSV /stage/c.csv is 80 MiB")
    assert LISTENER.heavy_staged_files(sizes, 4096 * mib) == []


def test_missing_staged_csv_is_one_quarantine_row() -> None:
    ident = {n: v for n, v in zip(MESSAGE_NAMES, ["t", 1, 8, "it", "big", "d-gone", 0, 1, 5], strict=True)}
    report = refused_texts_report("flow", _good_columns("flow"), [(ident, "gone")])
    assert [list(row) for _, row in report["bad"]] == [["it", "big", "d-gone", 0, 0, "", "gone"]]
    assert [(k, e["rows"], e["quarantined"], e["h"]) for k, e in report["entries"]] == [
        (["t", 1, 8], 0, 1, None)
    ]


def test_duplicates_keep_the_lowest_topic_partition_offset() -> None:
    def m(topic: str, partition: int, offset: int, digest: str, index: int = 0) -> dict[str, Any]:
        return {
            "topic": topic,
            "kafka_partition": partition,
            "kafka_offset": offset,
            "file_digest": digest,
            "segment_index": index,
        }

    found = [m("b", 0, 1, "x"), m("a", 1, 9, "x"), m("a", 1, 3, "x"), m("a", 0, 5, "x", 1), m("a", 0, 2, "y")]
    assert duplicates(found) == {("b", 0, 1), ("a", 1, 9)}
    assert duplicates([]) == frozenset()


def test_unit_numbers_repeat_each_unit_number_by_its_size() -> None:
    assert unit_numbers([2, 1, 3]).to_pylist() == [0, 0, 1, 2, 2, 2]
    assert unit_numbers([0, 2, 0, 1]).to_pylist() == [1, 1, 3]  # an empty unit has no rows
    assert unit_numbers([]).to_pylist() == [] and unit_numbers([1]).type == pa.int32()


def test_parquet_files_are_one_per_hour_without_partition_columns() -> None:
    import pyarrow.parquet as pq

    schema = arrow_schema(_good_columns("flow"))
    lines = [*GOOD, GOOD[0], _with("flow", FLOW_LINE, "unix_tstamp", "1706745600")]
    from spot_operators.listener_columns import typed_lines

    typed = typed_lines("flow", lines)
    assert typed is not None
    files = parquet_files(typed.cast(schema), ["y", "m", "d", "h"])
    assert [f for f, _ in files] == ["y=2023/m=1/d=25/h=0", "y=2023/m=1/d=25/h=18", "y=2024/m=2/d=1/h=0"]
    tables = [pq.read_table(io.BytesIO(data)) for _, data in files]
    assert [t.num_rows for t in tables] == [1, 2, 1]
    assert all(t.schema.names == list(TABLES["flow"].column_names) for t in tables)
    assert tables[1].column("unix_tstamp").to_pylist() == [1674671760, 1674671760]
    assert (
        tables[0].schema.field("sport").type == pa.int32()
        and tables[0].schema.field("tdur").type == pa.float32()
    )


class _Spark:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def sql(self, statement: str) -> None:
        self.statements.append(statement)


def _listener(data_type: str) -> Any:
    import argparse

    listener = object.__new__(LISTENER.Listener)
    listener.spark = _Spark()
    listener.table = TABLES[data_type]
    listener.args = argparse.Namespace(data_type=data_type)
    return listener


def test_register_uses_hql_for_the_table_and_quotes_the_quarantine_table() -> None:
    from spot_operators.hql import register_hours_sql

    flow = _listener("flow")
    hours = [{"y": "2023", "m": "1", "d": "25", "h": "18"}, {"y": "2023", "m": "1", "d": "25", "h": "19"}]
    flow._register("spot.flow", "hdfs://nn:8020/user/spot/flow/hive", hours)
    assert flow.spark.statements == register_hours_sql(
        "spot", "flow", hours, "hdfs://nn:8020/user/spot/flow/hive"
    )
    assert "PARTITION (`y`=2023, `m`=1, `d`=25, `h`=18) LOCATION " in flow.spark.statements[0]

    proxy = _listener("proxy")
    proxy._register("db1.proxy_copy", "/p", [{"y": "2024", "m": "03", "d": "07", "h": "05"}])
    assert proxy.spark.statements == [
        "ALTER TABLE `db1`.`proxy_copy` ADD IF NOT EXISTS\n"
        "  PARTITION (`y`='2024', `m`='03', `d`='07', `h`='05') LOCATION '/p/y=2024/m=03/d=07/h=05'"
    ]

    flow._register("spot.quarantine", "/q", [{"y": "2026", "m": "11", "d": "3", "h": "2"}], quarantine=True)
    assert flow.spark.statements[-1] == (
        "ALTER TABLE `spot`.`quarantine` ADD IF NOT EXISTS\n  PARTITION "
        "(`data_type`='flow', `y`=2026, `m`=11, `d`=3, `h`=2) "
        "LOCATION '/q/data_type=flow/y=2026/m=11/d=3/h=2'"
    )
    for bad in ("flow", "spot.flow.x", "spot.fl-ow", "sp ot.flow", ".flow"):
        with pytest.raises(ValueError, match=r"db\.table"):
            flow._register(bad, "/t", hours)
    with pytest.raises(ValueError):
        flow._register("spot.flow", "/t", [{"y": "2023", "m": "13", "d": "1", "h": "0"}])
