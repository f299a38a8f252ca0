"""job_support: the streaming timings the listener and the bench's plain job report alike."""

from __future__ import annotations

from spot_operators.job_support import kafka_stream, streaming_timings


def test_streaming_timings_sum_phases_and_list_batches_that_read() -> None:
    progress = [
        {"batchId": 0, "numInputRows": 82, "durationMs": {"triggerExecution": 4000, "addBatch": 3000}},
        {"batchId": 1, "numInputRows": 0, "durationMs": {"triggerExecution": 50, "latestOffset": 20}},
        {"batchId": 2, "numInputRows": 4, "durationMs": {"triggerExecution": 700, "addBatch": 500}},
    ]
    assert streaming_timings(progress) == {
        "duration_ms": {"triggerExecution": 4750, "addBatch": 3500, "latestOffset": 20},
        "progress": [
            {"batch": 0, "messages": 82, "trigger_ms": 4000},
            {"batch": 2, "messages": 4, "trigger_ms": 700},
        ],
    }
    assert streaming_timings([]) == {"duration_ms": {}, "progress": []}


class _RecordingReader:
    """Stands in for ``spark.readStream``: keeps the options in the order they are set."""

    def __init__(self) -> None:
        self.options: dict[str, str] = {}
        self.format_name = ""

    @property
    def readStream(self) -> _RecordingReader:  # Spark's name
        return self

    def format(self, name: str) -> _RecordingReader:
        self.format_name = name
        return self

    def option(self, key: str, value: str) -> _RecordingReader:
        self.options[key] = value
        return self

    def load(self) -> dict[str, str]:
        return self.options


def test_kafka_stream_sets_the_source_defaults_and_lets_the_connection_override_them() -> None:
    spark = _RecordingReader()
    options = kafka_stream(spark, "b:9092", "t1,t2", 83, {"kafka.fetch.max.wait.ms": "500", "kafka.a": "x"})
    assert spark.format_name == "kafka"
    assert options == {
        "kafka.bootstrap.servers": "b:9092",
        "subscribe": "t1,t2",
        "startingOffsets": "earliest",
        "failOnDataLoss": "true",
        "maxOffsetsPerTrigger": "83",
        "kafka.fetch.max.wait.ms": "500",
        "kafka.a": "x",
    }
    defaults = kafka_stream(_RecordingReader(), "b:9092", "t")
    assert defaults["kafka.fetch.max.wait.ms"] == "20" and "maxOffsetsPerTrigger" not in defaults
