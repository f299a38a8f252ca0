"""job_support: the streaming timings the listener and the bench's plain job report alike."""

from __future__ import annotations

from spot_operators.job_support import streaming_timings


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
