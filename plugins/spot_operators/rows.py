"""What dissectors produce: rows in the Hive column order with their own UTC hour, or quarantine.

A dissector never drops a line silently: each input line either becomes a :class:`Row` or a
:class:`QuarantinedLine` that names the file, the line number and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, order=True)
class HourPartition:
    """The y/m/d/h partition of a row, always computed in UTC from the row's own time."""

    y: int
    m: int
    d: int
    h: int

    @classmethod
    def of_epoch(cls, seconds: float) -> HourPartition:
        t = datetime.fromtimestamp(seconds, tz=UTC)
        return cls(t.year, t.month, t.day, t.hour)

    def start_epoch(self) -> int:
        """Epoch seconds at the start of this hour."""
        return int(datetime(self.y, self.m, self.d, self.h, tzinfo=UTC).timestamp())

    def folder(self, zero_padded: bool = False) -> str:
        """``y=2026/m=3/d=5/h=7`` (flow, dns) or ``y=2026/m=03/d=05/h=07`` (proxy)."""
        if zero_padded:
            return f"y={self.y:04d}/m={self.m:02d}/d={self.d:02d}/h={self.h:02d}"
        return f"y={self.y}/m={self.m}/d={self.d}/h={self.h}"


@dataclass(frozen=True)
class Row:
    """One table row as text fields in the Hive column order (see :mod:`spot_operators.tables`)."""

    fields: tuple[str, ...]
    partition: HourPartition
    line_no: int


@dataclass(frozen=True)
class QuarantinedLine:
    """An input line that could not become a row, kept with why, for an operator to read."""

    source: str
    line_no: int
    raw: str
    reason: str
