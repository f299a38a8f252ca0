"""Delivery accounting of publish_messages with a fake producer (pure logic; the real broker is in
tests/integration)."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from spot_operators.envelope import IngestMessage, decode_message
from spot_operators.publish import PublishError, failed_segment_paths, publish_messages


class FakeMessage:
    def __init__(self, partition: int, offset: int) -> None:
        self._p, self._o = partition, offset

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o


class FakeProducer:
    """Acknowledges messages unless their index is in ``fail`` (error report) or ``silent`` (no report)."""

    def __init__(
        self,
        fail: Collection[int] = frozenset(),
        silent: Collection[int] = frozenset(),
        raise_on: Collection[int] = frozenset(),
    ):
        self.fail, self.silent, self.raise_on = fail, silent, raise_on
        self.pending: list[tuple[int, Any]] = []
        self.sent: list[dict[str, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes, headers: Any, on_delivery: Any) -> None:
        index = len(self.sent)
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": headers})
        if index in self.raise_on:
            raise BufferError("Local: Queue full")
        self.pending.append((index, on_delivery))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        left = 0
        for index, callback in self.pending:
            if index in self.silent:
                left += 1
            elif index in self.fail:
                callback("KafkaError{code=MSG_TIMED_OUT}", None)
            else:
                callback(None, FakeMessage(0, 100 + index))
        self.pending = []
        return left


def _messages(n: int) -> list[IngestMessage]:
    return [
        IngestMessage(
            kind="INLINE",
            pipeline="proxy_bluecoat",
            data_type="proxy",
            file_name="a b.log",
            file_digest="ef" * 32,
            segment_index=i,
            segment_count=n,
            rows=(f"row{i}",),
        )
        for i in range(n)
    ]


def test_all_acknowledged(tmp_path: Path) -> None:
    producer = FakeProducer()
    report = publish_messages(producer, "t", _messages(3), failed_dir=tmp_path)
    assert report.offsets == ((0, 100), (0, 101), (0, 102))
    assert {m["key"] for m in producer.sent} == {b"ef" * 32}
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["fail", "silent", "raise_on"])
def test_unacknowledged_segments_are_kept_for_replay_and_the_task_fails(tmp_path: Path, kind: str) -> None:
    messages = _messages(4)
    producer = FakeProducer(**{kind: {1, 3}})
    with pytest.raises(PublishError, match=r"2 of 4 segments of a b.log were not acknowledged"):
        publish_messages(producer, "t", messages, failed_dir=tmp_path, flush_timeout=0.1)
    for index in (1, 3):
        data, meta = failed_segment_paths(tmp_path, messages[index])
        assert decode_message(data.read_bytes()) == messages[index]
        info = json.loads(meta.read_text())
        assert info["topic"] == "t" and info["segment_index"] == index and info["error"]
    for index in (0, 2):
        assert not failed_segment_paths(tmp_path, messages[index])[0].exists()
