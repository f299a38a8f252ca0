"""Reading a micro-batch's size from Spark's offset log (``streaming_offsets``), which decides whether
the listener types a batch in its driver."""

from __future__ import annotations

import json

import pytest

from spot_operators.streaming_offsets import kafka_positions, messages_between

METADATA = json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 1795563802272, "conf": {"a": "b"}})


def entry(offsets: object, version: str = "v1", metadata: str = METADATA) -> str:
    """An offset-log entry as Spark 4 writes it (no final line feed)."""
    return f"{version}\n{metadata}\n{json.dumps(offsets)}"


def test_positions_of_a_kafka_entry_as_spark_writes_it() -> None:
    text = entry({"spot-flow": {"0": 2, "1": 1}, "spot-dns": {"3": 40}})
    assert kafka_positions(text) == {("spot-flow", 0): 2, ("spot-flow", 1): 1, ("spot-dns", 3): 40}


@pytest.mark.parametrize(
    "text",
    [
        entry({"t": {"0": 1}}, version="v2"),  # a later layout
        "v1\n" + METADATA,  # no source line
        entry({"t": {"0": 1}}) + "\n" + json.dumps({"u": {"0": 1}}),  # two sources
        entry({"t": {"0": 1}})[:-3],  # truncated JSON
        entry(["t", 0, 1]),
        entry({"t": [1, 2]}),
        entry({"t": {"zero": 1}}),
        entry({"t": {"0": "1"}}),
        entry({"t": {"0": 1.5}}),
        entry({"t": {"0": True}}),
        entry({"t": {"0": -2}}),  # earliest/latest markers belong in options, not in the log
        "",
    ],
)
def test_an_entry_in_another_layout_gives_none(text: str) -> None:
    assert kafka_positions(text) is None


def test_messages_between_two_entries_sum_the_partitions() -> None:
    start = entry({"t": {"0": 10, "1": 20}})
    end = entry({"t": {"0": 13, "1": 25}})
    assert messages_between(start, end) == 8


def test_a_partition_with_no_start_makes_the_count_unknown() -> None:
    """A partition added since the last batch starts at its earliest offset, which the log lacks."""
    start = entry({"t": {"0": 10}})
    end = entry({"t": {"0": 12, "1": 5}})
    assert messages_between(start, end) is None


def test_a_partition_only_in_the_start_is_not_counted() -> None:
    start = entry({"t": {"0": 10}, "gone": {"0": 4}})
    end = entry({"t": {"0": 12}})
    assert messages_between(start, end) == 2


def test_offsets_that_go_back_or_an_unreadable_entry_give_none() -> None:
    assert messages_between(entry({"t": {"0": 10}}), entry({"t": {"0": 9}})) is None
    assert messages_between("garbage", entry({"t": {"0": 9}})) is None
    assert messages_between(entry({"t": {"0": 1}}), "v1\n{}\n{") is None
