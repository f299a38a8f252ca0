"""Replay of kept Kafka segments: sent once with delivery checked, then removed; superseded ones dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spot_operators.config import IngestConfig
from spot_operators.envelope import IngestMessage, encode_message
from spot_operators.ledger import FileLedger, FileVersion, State
from spot_operators.publish import keep_failed_segment
from spot_operators.replay import (
    ReplayReport,
    SegmentError,
    pending_failed_segments,
    read_kept_file,
    replay_pipeline,
)


class FakeMessage:
    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 1


class FakeProducer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[tuple[str, bytes]] = []
        self.callbacks: list[Any] = []

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None:
        self.sent.append((topic, kwargs["value"]))
        self.callbacks.append(kwargs["on_delivery"])

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        for callback in self.callbacks:
            callback("broker down" if self.fail else None, FakeMessage())
        self.callbacks = []
        return 0


def _config(tmp_path: Path) -> IngestConfig:
    return IngestConfig.model_validate(
        {
            "dbname": "spot",
            "kafka": {"kafka_server": "127.0.0.1", "kafka_port": 9092},
            "pipelines": {
                "proxy_a": {
                    "type": "proxy",
                    "collector_path": str(tmp_path / "c"),
                    "local_staging": str(tmp_path / "s"),
                },
                "flow_a": {
                    "type": "flow",
                    "collector_path": str(tmp_path / "c2"),
                    "local_staging": str(tmp_path / "s2"),
                },
            },
        }
    )


def _keep(staging: Path, name: str = "x.log", digest: str = "d" * 64, segments: int = 2) -> list[bytes]:
    payloads = []
    for index in range(segments):
        message = IngestMessage(
            "INLINE", "proxy_a", "proxy", name, digest, index, segments, rows=(f"row{index}",)
        )
        payload = encode_message(message)
        keep_failed_segment(staging / "failed", "topic-a", message, payload, "down")
        payloads.append(payload)
    return payloads


def test_segments_are_sent_once_then_removed(tmp_path: Path) -> None:
    config = _config(tmp_path)
    pipeline = config.pipelines["proxy_a"]
    payloads = _keep(pipeline.local_staging)
    assert pending_failed_segments(config) == {"proxy_a": 2, "flow_a": 0}
    producer = FakeProducer()
    report = ReplayReport()
    replay_pipeline(pipeline, lambda: producer, report)
    assert [v for _, v in producer.sent] == payloads and {t for t, _ in producer.sent} == {"topic-a"}
    assert report.sent_segments == 2 and not report.errors
    assert pending_failed_segments(config) == {"proxy_a": 0, "flow_a": 0}
    replay_pipeline(pipeline, lambda: producer, ReplayReport())
    assert len(producer.sent) == 2, "a second pass sends nothing"


def test_unacknowledged_segments_stay(tmp_path: Path) -> None:
    config = _config(tmp_path)
    pipeline = config.pipelines["proxy_a"]
    _keep(pipeline.local_staging)
    report = ReplayReport()
    replay_pipeline(pipeline, lambda: FakeProducer(fail=True), report)
    assert report.errors and "not acknowledged" in report.errors[0]
    assert pending_failed_segments(config)["proxy_a"] == 2


def test_superseded_folder_is_removed_without_sending(tmp_path: Path) -> None:
    config = _config(tmp_path)
    pipeline = config.pipelines["proxy_a"]
    digest = "e" * 64
    _keep(pipeline.local_staging, digest=digest)
    ledger = FileLedger(pipeline.local_staging / "ledger.sqlite3")
    version = FileVersion("proxy_a", "/collector/x.log", 10, 1, digest)
    ledger.claim(version, "o", 60)
    for state in (State.STORED, State.PUBLISHED, State.DONE):
        ledger.advance(version, "o", state)
    producer = FakeProducer()
    report = ReplayReport()
    replay_pipeline(pipeline, lambda: producer, report)
    assert producer.sent == [] and report.superseded == 1
    assert pending_failed_segments(config)["proxy_a"] == 0


def test_damaged_segment_is_named_and_kept(tmp_path: Path) -> None:
    config = _config(tmp_path)
    pipeline = config.pipelines["proxy_a"]
    _keep(pipeline.local_staging, segments=1)
    folder = next((pipeline.local_staging / "failed").iterdir())
    (folder / "segment-00000.json").write_text(json.dumps({"topic": "t", "key": "other"}))
    with pytest.raises(SegmentError, match=r"segment-00000\.avro: metadata key"):
        read_kept_file(folder)
    report = ReplayReport()
    replay_pipeline(pipeline, FakeProducer, report)
    assert report.errors and folder.exists()
