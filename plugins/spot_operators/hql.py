"""HQL statement builders for Spot's tables: partition registration, compaction, staged CSV loads.

Pure functions (no I/O): they return statement lists that :class:`~spot_operators.triggers.hive.
HiveQueryTrigger` runs on HiveServer2, so the text can be unit-tested and logged before anything runs.
Every name and value that reaches the SQL text is validated and quoted here, because database names,
HDFS folders and hours come from configs, XComs and DAG params; a bad one raises ``ValueError`` naming
what was wrong instead of producing injectable or silently wrong HQL.

Checked against the stack's HiveServer2 endpoint (Spark Thrift Server 4.3):

* Spark refuses ``INSERT OVERWRITE`` of a table it reads in the same statement
  (``UNSUPPORTED_OVERWRITE.TABLE``), so compaction copies the hour into a uniquely named staging
  table first, overwrites the partition from it, checks the counts, and drops it.
* ``org.apache.hadoop.hive.serde2.OpenCSVSerde`` reads RFC 4180 CSV (quoted commas, doubled quotes
  ``""``), but treats a backslash as an escape unless ``escapeChar`` is something else: setting it to
  ``"`` does not help (the serde then falls back to the backslash default), so it is U+0001, which
  CSV text never holds; backslashes of user agents and Windows paths then arrive intact. Every column
  it exposes is a STRING, so the load casts to the table's types.
* ``raise_error`` fails a statement with our own message (Spark SQL, not Hive), used for checks.
* Spark's default ANSI mode makes ``CAST('abc' AS INT)`` fail the statement: a staged CSV with a bad
  number fails loudly instead of loading NULLs. Empty fields become NULL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from spot_operators.tables import TABLES, HiveTable

__all__ = [
    "CSV_SERDE",
    "HourPartition",
    "HqlPlan",
    "compact_partition_sql",
    "load_staged_csv_sql",
    "msck_repair_sql",
    "quote_identifier",
    "quote_literal",
    "quote_location",
    "register_hours_sql",
    "split_statements",
    "temp_table_name",
]

CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s]*/\S*")
_FORBIDDEN_IN_LOCATION = set("'\\;\"`") | {chr(c) for c in range(32)} | {"\x7f"}
_NUMERIC_TYPES = {"BIGINT", "INT", "SMALLINT", "TINYINT", "FLOAT", "DOUBLE"}
_MAX_PARTITIONS_PER_STATEMENT = 100


@dataclass(frozen=True)
class HqlPlan:
    """Statements to run in order, and ``final_statements`` to run afterwards even when one failed."""

    statements: list[str]
    final_statements: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Quoting and splitting
# --------------------------------------------------------------------------------------------


def quote_identifier(name: Any, what: str = "identifier") -> str:
    """Back-quoted name; ``what`` (database, table, column) is named in the error."""
    if not isinstance(name, str) or not _IDENT_RE.fullmatch(name):
        raise ValueError(f"invalid Hive {what} name {name!r}: must match {_IDENT_RE.pattern}")
    return f"`{name}`"


def quote_literal(value: Any) -> str:
    """A single-quoted string literal (backslash escapes work in Hive and Spark SQL)."""
    text = str(value)
    if any(ord(c) < 32 and c not in "\t" for c in text):
        raise ValueError(f"invalid Hive string literal {text!r}: control characters are not allowed")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_location(location: Any, what: str = "location") -> str:
    """A quoted HDFS location: an absolute path or a full URI, without quotes or control characters."""
    if (
        not isinstance(location, str)
        or not location
        or any(c in _FORBIDDEN_IN_LOCATION for c in location)
        or not (location.startswith("/") or _URI_RE.fullmatch(location))
    ):
        raise ValueError(
            f"invalid HDFS {what} {location!r}: need an absolute path or a full URI, "
            "without quotes, backslashes, semicolons or control characters"
        )
    return f"'{location}'"


def _qualified(database: str, table: str) -> str:
    return f"{quote_identifier(database, 'database')}.{quote_identifier(table, 'table')}"


def temp_table_name(prefix: str) -> str:
    """``<prefix>_<32 hex>``: never shared between two loads (Spot's shared staging table was)."""
    quote_identifier(prefix, "table prefix")
    return f"{prefix}_{uuid.uuid4().hex}"


def split_statements(hql: str | Sequence[str]) -> list[str]:
    """Statements of an HQL script: split on ``;`` outside quotes, back-quotes and ``--`` comments.

    A list is taken as already split (each item is still split, so a list of scripts works). Empty
    statements and comment-only ones are dropped; the text of each is kept as written.
    """
    if not isinstance(hql, str):
        return [stmt for item in hql for stmt in split_statements(item)]
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i, n = 0, len(hql)
    while i < n:
        c = hql[i]
        if quote:
            current.append(c)
            if c == "\\" and quote != "`" and i + 1 < n:
                current.append(hql[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"`":
            quote = c
            current.append(c)
        elif c == "-" and hql.startswith("--", i):
            end = hql.find("\n", i)
            end = n if end < 0 else end
            current.append(hql[i:end])
            i = end
            continue
        elif c == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    if quote:
        raise ValueError(f"unterminated {quote} quote in HQL: {hql[:200]!r}")
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    """False for whitespace and ``--`` comments only."""
    return any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())


# --------------------------------------------------------------------------------------------
# Hour partitions
# --------------------------------------------------------------------------------------------


def _table(table: str | HiveTable) -> HiveTable:
    if isinstance(table, HiveTable):
        quote_identifier(table.name, "table")
        return table
    if table not in TABLES:
        raise ValueError(f"invalid Spot table {table!r}: expected one of {sorted(TABLES)}")
    return TABLES[table]


def _string_partitions(table: HiveTable) -> bool:
    """Proxy's y/m/d/h are zero-padded STRINGs; flow and dns use SMALLINT/TINYINT."""
    names = [name for name, _ in table.partitions]
    if names != ["y", "m", "d", "h"]:
        raise ValueError(f"table {table.name!r} is not partitioned by y/m/d/h: {names}")
    return all(t.upper() == "STRING" for _, t in table.partitions)


@dataclass(frozen=True, order=True)
class HourPartition:
    """One UTC hour (a y/m/d/h partition), valid by construction."""

    year: int
    month: int
    day: int
    hour: int

    def __post_init__(self) -> None:
        try:
            parts = [int(v) for v in (self.year, self.month, self.day, self.hour)]
            if any(isinstance(v, bool) for v in (self.year, self.month, self.day, self.hour)):
                raise TypeError("bool")
            date(parts[0], parts[1], parts[2])
            if not 0 <= parts[3] <= 23:
                raise ValueError("hour must be in 0..23")
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"invalid hour partition y={self.year!r} m={self.month!r} d={self.day!r} "
                f"h={self.hour!r}: {exc}"
            ) from None
        for name, value in zip(("year", "month", "day", "hour"), parts, strict=True):
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, value: Any) -> HourPartition:
        """From a datetime (converted to UTC; naive means UTC), ``"2026-03-07T05"`` / ISO text,
        ``"y=2026/m=3/d=7/h=5"``, a ``(y, m, d, h)`` sequence or a ``{"y":..,"m":..,"d":..,"h":..}`` map.
        """
        if isinstance(value, HourPartition):
            return value
        if isinstance(value, datetime):
            t = value.astimezone(UTC) if value.tzinfo else value
            return cls(t.year, t.month, t.day, t.hour)
        if isinstance(value, Mapping):
            try:
                return cls(*(value[k] for k in "ymdh"))
            except KeyError:
                raise ValueError(f"invalid hour partition {value!r}: needs keys y, m, d, h") from None
        if isinstance(value, str):
            text = value.strip()
            folders = re.fullmatch(r"y=(\d{4})/m=(\d{1,2})/d=(\d{1,2})/h=(\d{1,2})/?", text)
            if folders:
                return cls(*(int(g) for g in folders.groups()))
            short = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2})", text)
            if short:
                return cls(*(int(g) for g in short.groups()))
            try:
                return cls.of(datetime.fromisoformat(text.replace("Z", "+00:00")))
            except ValueError:
                raise ValueError(f"invalid hour partition {value!r}") from None
        if isinstance(value, Sequence) and len(value) == 4:
            return cls(*value)
        raise ValueError(f"invalid hour partition {value!r}")

    def values(self, table: HiveTable) -> tuple[str, str, str, str]:
        """As the table spells them: ``('2026','03','07','05')`` (proxy), else ``('2026','3','7','5')``."""
        if _string_partitions(table):
            return (f"{self.year:04d}", f"{self.month:02d}", f"{self.day:02d}", f"{self.hour:02d}")
        return (str(self.year), str(self.month), str(self.day), str(self.hour))

    def spec(self, table: HiveTable) -> str:
        """``y=2026, m=3, d=7, h=5`` (numbers) or ``y='2026', m='03', d='07', h='05'`` (proxy)."""
        quoted = _string_partitions(table)
        return ", ".join(
            f"`{k}`={quote_literal(v) if quoted else v}"
            for k, v in zip("ymdh", self.values(table), strict=True)
        )

    def where(self, table: HiveTable) -> str:
        return " AND ".join(part.replace("=", " = ", 1) for part in self.spec(table).split(", "))

    def folder(self, table: HiveTable) -> str:
        """``y=2026/m=3/d=7/h=5`` (Spot's layout; proxy zero-padded), relative to the table location."""
        return "/".join(f"{k}={v}" for k, v in zip("ymdh", self.values(table), strict=True))


def hours_of(values: Iterable[Any]) -> list[HourPartition]:
    """Distinct hours in order; accepts whatever :meth:`HourPartition.of` accepts."""
    if isinstance(values, str | bytes | Mapping):
        raise ValueError(f"hours must be a list of hours, not {type(values).__name__} {values!r}")
    return sorted({HourPartition.of(v) for v in values})


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def msck_repair_sql(database: str, table: str | HiveTable) -> list[str]:
    """Register every partition folder under the table location (scans the whole table: slow when big)."""
    return [f"MSCK REPAIR TABLE {_qualified(database, _table(table).name)}"]


def register_hours_sql(
    database: str,
    table: str | HiveTable,
    hours: Iterable[Any],
    location: str | None = None,
    leading: Mapping[str, Any] | None = None,
) -> list[str]:
    """``ALTER TABLE ... ADD IF NOT EXISTS PARTITION (...) [LOCATION ...]`` for the given hours.

    ``location`` is the table location (``<hdfs_app_path>/<type>/hive``); each partition then points at
    ``<location>/y=.../h=...`` explicitly. Without it the server derives the same folder from the table
    location. Idempotent (IF NOT EXISTS); at most 100 partitions per statement.

    ``leading`` gives the values of partition columns that come before y/m/d/h, in the table's order
    (the quarantine table's ``data_type``): ``PARTITION (`data_type`='flow', `y`=2026, ...)`` at
    ``<location>/data_type=flow/y=2026/...``.
    """
    spec = _table(table)
    prefix, folder_prefix, hourly = _leading_partitions(spec, leading or {})
    target = _qualified(database, spec.name)
    root = None if location is None else location.rstrip("/")
    if root is not None:
        quote_location(root, "table location")
    clauses = []
    for hour in hours_of(hours):
        clause = f"PARTITION ({prefix}{hour.spec(hourly)})"
        if root is not None:
            folder = f"{root}/{folder_prefix}{hour.folder(hourly)}"
            clause += f" LOCATION {quote_location(folder, 'partition location')}"
        clauses.append(clause)
    return [
        f"ALTER TABLE {target} ADD IF NOT EXISTS\n  "
        + "\n  ".join(clauses[i : i + _MAX_PARTITIONS_PER_STATEMENT])
        for i in range(0, len(clauses), _MAX_PARTITIONS_PER_STATEMENT)
    ]


def _leading_partitions(table: HiveTable, leading: Mapping[str, Any]) -> tuple[str, str, HiveTable]:
    """The spec and folder prefixes of the partition values before the hour, and the hour-only view.

    The names must be exactly the table's partitions before y/m/d/h, in order; a value becomes a
    quoted literal (STRING) or a checked integer, and must be usable as a folder name.
    """
    names = [name for name, _ in table.partitions]
    given = list(leading)
    if names[: len(given)] != given:
        raise ValueError(f"table {table.name!r} is partitioned by {names}: no leading partitions {given}")
    hourly = HiveTable(table.name, (), table.partitions[len(given) :])
    _string_partitions(hourly)  # the rest must be y/m/d/h
    specs, folders = [], []
    for (name, hive_type), value in zip(table.partitions, leading.values(), strict=False):
        text = str(value)
        if not text or "/" in text or "=" in text or text in (".", ".."):
            raise ValueError(f"partition {name}={value!r} of {table.name!r} cannot be a folder name")
        if hive_type.upper() == "STRING":
            literal = quote_literal(text)
        elif re.fullmatch(r"-?[0-9]+", text):
            literal = text
        else:
            raise ValueError(f"partition {name} of {table.name!r} is {hive_type}, not {value!r}")
        specs.append(f"{quote_identifier(name, 'partition column')}={literal}, ")
        folders.append(f"{name}={text}/")
    return "".join(specs), "".join(folders), hourly


def _check(condition: str, message_parts: Sequence[str]) -> str:
    """A SELECT that fails the statement (Spark's raise_error) unless ``condition`` holds."""
    return f"IF({condition}, 'ok', raise_error(concat({', '.join(message_parts)})))"


def compact_partition_sql(
    database: str,
    table: str | HiveTable,
    hour: Any,
    files: int = 1,
    staging_table: str | None = None,
) -> HqlPlan:
    """Rewrite one hour partition into ``files`` Parquet files, through a uniquely named staging table.

    Steps: copy the hour into ``<db>._spot_compact_<uuid>`` (``CREATE TABLE IF NOT EXISTS ... AS``, so
    a re-run keeps the first copy), check the copy has as many rows as the partition, ``INSERT
    OVERWRITE`` the partition from the copy with a ``COALESCE(files)`` hint, check the counts again,
    drop the copy. There are deliberately no final statements: if a step after the copy fails, the
    copy is the only intact version of the hour, so it is kept and named in the failing statement.
    """
    if isinstance(files, bool) or not isinstance(files, int) or not 1 <= files <= 1000:
        raise ValueError(f"invalid number of files {files!r}: need an integer in 1..1000")
    spec = _table(table)
    part = HourPartition.of(hour)
    target = _qualified(database, spec.name)
    staging = _qualified(database, staging_table or temp_table_name("_spot_compact"))
    columns = ", ".join(quote_identifier(name, "column") for name in spec.column_names)
    where = part.where(spec)
    label = quote_literal(f"{database}.{spec.name} ({part.folder(spec)})")

    def counts_match(step: str) -> str:
        return (
            "SELECT "
            + _check(
                "s.n = p.n",
                [
                    quote_literal(f"compaction of {database}.{spec.name} {part.folder(spec)} {step}: "),
                    "'staging table has '",
                    "CAST(s.n AS STRING)",
                    "' rows, partition has '",
                    "CAST(p.n AS STRING)",
                    quote_literal(f"; the staging table {staging} keeps the hour's rows"),
                ],
            )
            + f" AS check_{step.replace(' ', '_')}\n"
            + f"FROM (SELECT count(*) AS n FROM {staging}) s\n"
            + f"CROSS JOIN (SELECT count(*) AS n FROM {target} WHERE {where}) p"
        )

    return HqlPlan(
        statements=[
            f"CREATE TABLE IF NOT EXISTS {staging}\nSTORED AS PARQUET\n"
            f"COMMENT {label}\n"
            f"AS SELECT {columns}\nFROM {target}\nWHERE {where}",
            counts_match("before overwrite"),
            f"INSERT OVERWRITE TABLE {target} PARTITION ({part.spec(spec)})\n"
            f"SELECT /*+ COALESCE({files}) */ {columns}\nFROM {staging}",
            counts_match("after overwrite"),
            f"DROP TABLE IF EXISTS {staging} PURGE",
        ]
    )


def _cast(name: str, hive_type: str) -> str:
    column = quote_identifier(name, "column")
    if hive_type.upper() == "STRING":
        return column
    return f"CAST(NULLIF({column}, '') AS {hive_type.upper()})"


def _partition_exprs(spec: HiveTable) -> tuple[list[str], str, str]:
    """(y, m, d, h expressions, a condition every row must meet, what it means) for the staged columns.

    flow/dns: the UTC hour of ``unix_tstamp`` computed with day arithmetic, so the session time zone
    cannot shift it; proxy: zero-padded text cut from ``p_date`` and ``p_time``.
    """
    if _string_partitions(spec):
        return (
            [
                "substr(`p_date`, 1, 4)",
                "substr(`p_date`, 6, 2)",
                "substr(`p_date`, 9, 2)",
                "substr(`p_time`, 1, 2)",
            ],
            "`p_date` RLIKE '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' AND `p_time` RLIKE '^[0-2][0-9]:'",
            "p_date YYYY-MM-DD and p_time hh:mm:ss",
        )
    if "unix_tstamp" not in spec.column_names:
        raise ValueError(f"table {spec.name!r} has no unix_tstamp to compute its hour partitions from")
    ts = "CAST(NULLIF(`unix_tstamp`, '') AS BIGINT)"
    day = f"date_add(DATE '1970-01-01', CAST(floor({ts} / 86400) AS INT))"
    types = dict(spec.partitions)
    return (
        [
            f"CAST(year({day}) AS {types['y'].upper()})",
            f"CAST(month({day}) AS {types['m'].upper()})",
            f"CAST(dayofmonth({day}) AS {types['d'].upper()})",
            f"CAST(floor(pmod({ts}, 86400) / 3600) AS {types['h'].upper()})",
        ],
        f"{ts} > 0",
        "a unix_tstamp > 0",
    )


def load_staged_csv_sql(
    database: str,
    table: str | HiveTable,
    csv_folder: str,
    temp_table: str | None = None,
) -> HqlPlan:
    """Load the CSV files of an HDFS folder into ``database.table`` through a temporary external table.

    The temporary table ``<db>._spot_csv_<uuid>`` (all columns STRING, OpenCSVSerde) is never shared;
    its DROP is a final statement, so it goes even when the load fails (EXTERNAL: the CSV stays). Before
    inserting, a check fails the load if any row lacks what its hour partition is computed from (UTC,
    per row, as the listener does). The INSERT uses dynamic partitions; new partitions are registered by
    the INSERT itself. Not idempotent: running the INSERT twice appends the rows twice.
    """
    spec = _table(table)
    target = _qualified(database, spec.name)
    tmp = _qualified(database, temp_table or temp_table_name("_spot_csv"))
    folder = quote_location(csv_folder.rstrip("/") or "/", "CSV folder")
    staged_columns = ",\n".join(f"  {quote_identifier(n, 'column')} STRING" for n in spec.column_names)
    partition_exprs, usable, meaning = _partition_exprs(spec)
    select = ",\n  ".join(
        [
            *(f"{_cast(n, t)} AS {quote_identifier(n, 'column')}" for n, t in spec.columns),
            *(f"{e} AS `{k}`" for e, k in zip(partition_exprs, "ymdh", strict=True)),
        ]
    )
    check = (
        "SELECT "
        + _check(
            "count(*) = 0",
            [
                "CAST(count(*) AS STRING)",
                quote_literal(f" rows of the staged CSV {csv_folder} lack {meaning}; nothing was loaded"),
            ],
        )
        + " AS check_partitions\n"
        + f"FROM {tmp}\nWHERE NOT coalesce({usable}, false)"
    )
    return HqlPlan(
        statements=[
            "SET hive.exec.dynamic.partition=true",
            "SET hive.exec.dynamic.partition.mode=nonstrict",
            f"CREATE EXTERNAL TABLE IF NOT EXISTS {tmp} (\n{staged_columns}\n)\n"
            f"ROW FORMAT SERDE {quote_literal(CSV_SERDE)}\n"
            "WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '\"', 'escapeChar' = '\\u0001')\n"
            f"STORED AS TEXTFILE\nLOCATION {folder}",
            check,
            f"INSERT INTO TABLE {target} PARTITION (`y`, `m`, `d`, `h`)\nSELECT\n  {select}\nFROM {tmp}",
        ],
        final_statements=[f"DROP TABLE IF EXISTS {tmp}"],
    )
