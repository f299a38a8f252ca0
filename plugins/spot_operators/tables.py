"""Spot's Hive tables: column names, order and types, exactly as spot-ml and spot-oa read them.

Dissectors emit fields in this order; the listener types them with these Hive types; the DDL in
``include/schemas/`` is generated from here. Changing a name, order or type breaks Spot's consumers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HiveTable:
    """A table's data columns and partition columns, as (name, Hive type) pairs."""

    name: str
    columns: tuple[tuple[str, str], ...]
    partitions: tuple[tuple[str, str], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def width(self) -> int:
        return len(self.columns)


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """``"a STRING, b INT"`` -> ``(("a", "STRING"), ("b", "INT"))``."""
    pairs = (part.strip().split() for part in spec.split(","))
    return tuple((name, hive_type) for name, hive_type in pairs)


_NUMERIC_PARTITIONS = _cols("y SMALLINT, m TINYINT, d TINYINT, h TINYINT")

FLOW = HiveTable(
    name="flow",
    columns=_cols(
        "treceived STRING, unix_tstamp BIGINT, tryear INT, trmonth INT, trday INT, trhour INT, "
        "trminute INT, trsec INT, tdur FLOAT, sip STRING, dip STRING, sport INT, dport INT, "
        "proto STRING, flag STRING, fwd INT, stos INT, ipkt BIGINT, ibyt BIGINT, opkt BIGINT, "
        "obyt BIGINT, input INT, output INT, sas INT, das INT, dtos INT, dir INT, rip STRING"
    ),
    partitions=_NUMERIC_PARTITIONS,
)

DNS = HiveTable(
    name="dns",
    columns=_cols(
        "frame_time STRING, unix_tstamp BIGINT, frame_len INT, ip_dst STRING, ip_src STRING, "
        "dns_qry_name STRING, dns_qry_class STRING, dns_qry_type INT, dns_qry_rcode INT, dns_a STRING"
    ),
    partitions=_NUMERIC_PARTITIONS,
)

PROXY = HiveTable(
    name="proxy",
    columns=_cols(
        "p_date STRING, p_time STRING, clientip STRING, host STRING, reqmethod STRING, "
        "useragent STRING, resconttype STRING, duration INT, username STRING, authgroup STRING, "
        "exceptionid STRING, filterresult STRING, webcat STRING, referer STRING, respcode STRING, "
        "action STRING, urischeme STRING, uriport STRING, uripath STRING, uriquery STRING, "
        "uriextension STRING, serverip STRING, scbytes INT, csbytes INT, virusid STRING, "
        "bcappname STRING, bcappoper STRING, fulluri STRING"
    ),
    # Spot's proxy table has zero-padded string partitions (m='03').
    partitions=_cols("y STRING, m STRING, d STRING, h STRING"),
)

TABLES: dict[str, HiveTable] = {t.name: t for t in (FLOW, DNS, PROXY)}
