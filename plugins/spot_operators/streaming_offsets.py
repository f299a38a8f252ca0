"""How many Kafka messages a micro-batch holds, read from Spark's offset log before the batch runs.

Spark writes each batch's end offsets to ``<checkpoint>/offsets/<batch id>`` before it runs the batch
(the write-ahead log its exactly-once replay rests on); the previous entry holds where the batch
starts. The listener uses the difference to type a batch of a few messages in its driver instead of
starting a Spark job with Python workers for them (``spot_listener``). The count only chooses where the
typing runs, never what is typed, so an entry this module cannot read gives ``None`` and the listener
takes its usual path.
"""

from __future__ import annotations

import json

OFFSET_LOG_VERSION = "v1"
"""The first line of an offset-log entry in the Spark versions this was checked with (3.x, 4.x)."""


def kafka_positions(entry: str) -> dict[tuple[str, int], int] | None:
    """The end offset of each ``(topic, partition)`` in one offset-log entry, or None when the entry is
    not a single Kafka source's offsets in the layout Spark writes: the version line, the batch's
    metadata (JSON), then the source's offsets as ``{"topic": {"partition": offset, ...}, ...}``."""
    lines = entry.splitlines()
    if len(lines) != 3 or lines[0] != OFFSET_LOG_VERSION:
        return None
    try:
        offsets = json.loads(lines[2])
    except ValueError:
        return None
    if not isinstance(offsets, dict):
        return None
    positions: dict[tuple[str, int], int] = {}
    for topic, partitions in offsets.items():
        if not isinstance(partitions, dict):
            return None
        for partition, offset in partitions.items():
            if not partition.isdigit() or type(offset) is not int or offset < 0:
                return None
            positions[(topic, int(partition))] = offset
    return positions


def messages_between(start: str, end: str) -> int | None:
    """At most how many messages lie between two offset-log entries (the previous batch's and this
    one's), or None if either cannot be read or a partition of ``end`` has no start (a new partition or
    topic: it would start at its earliest offset, which the log does not say). Kafka offsets can skip
    (transaction markers, compaction), so the count is an upper bound."""
    first, last = kafka_positions(start), kafka_positions(end)
    if first is None or last is None:
        return None
    total = 0
    for key, stop in last.items():
        begin = first.get(key)
        if begin is None or stop < begin:
            return None
        total += stop - begin
    return total
