"""Kafka through the Airflow provider's hooks and the ``spot_kafka`` connection, on the real broker.

The collect DAG publishes with ``KafkaProducerHook`` and deletes a segment only after Kafka acknowledged
it, so these tests check what that relies on: the connection builds an idempotent ``acks=all``
producer, every delivery report is a success, and what comes back from the broker is byte-for-byte
what was sent (keys, values, headers, per-partition order), with nothing lost and nothing duplicated.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook
from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

KAFKA_CONN_ID = "spot_kafka"
PARTITIONS = 3
MESSAGES = 60
TIMEOUT_S = 30.0

Headers = list[tuple[str, str | bytes | None]]  # what confluent_kafka takes and returns


def _wait_topic_gone(admin: KafkaAdminClientHook, topic: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while topic in admin.get_conn.list_topics(timeout=10).topics:
        if time.monotonic() > deadline:
            pytest.fail(f"topic {topic} still listed {timeout_s:.0f}s after its deletion")
        time.sleep(0.2)


@pytest.fixture
def kafka_topic(unique_name: str) -> Iterator[str]:
    """A fresh topic with several partitions, deleted (and checked gone) afterwards."""
    admin = KafkaAdminClientHook(kafka_config_id=KAFKA_CONN_ID)
    # create_topic only logs a warning when the topic already exists: make sure it is really new.
    assert unique_name not in admin.get_conn.list_topics(timeout=10).topics
    admin.create_topic([(unique_name, PARTITIONS, 1)])
    metadata = admin.get_conn.list_topics(topic=unique_name, timeout=10).topics[unique_name]
    assert metadata.error is None, metadata.error
    assert len(metadata.partitions) == PARTITIONS
    yield unique_name
    admin.delete_topic([unique_name])
    _wait_topic_gone(admin, unique_name)


def _message(i: int) -> tuple[bytes, bytes, Headers]:
    """Key, value and headers of message ``i``: binary values, one empty, repeated header names."""
    key = f"file-digest-{i:04d}".encode()
    value = hashlib.sha256(key).digest() * (i % 7) + bytes([0, 255, i % 256])
    if i == 0:
        value = b""
    headers: Headers = [
        ("seq", str(i).encode()),
        ("source", b"spot-integration-test"),
        ("binary", bytes([i % 256, 0, 255, 10, 13])),
        ("dup", b"first"),
        ("dup", b"second"),
    ]
    return key, value, headers


def _fields(msg: Message) -> tuple[bytes, bytes, Headers, int, int]:
    """Key, value, headers, partition and offset of a message, asserting none is missing."""
    key, value, headers, partition, offset = (
        msg.key(),
        msg.value(),
        msg.headers(),
        msg.partition(),
        msg.offset(),
    )
    assert isinstance(key, bytes), key
    assert isinstance(value, bytes), f"{key!r}: value {value!r}"
    assert isinstance(headers, list), f"{key!r}: headers {headers!r}"
    assert partition is not None and offset is not None and offset >= 0, (key, partition, offset)
    return key, value, headers, partition, offset


def _consume_from_beginning(topic: str, expected: int) -> list[Message]:
    consumer: Consumer = KafkaConsumerHook([topic], kafka_config_id=KAFKA_CONN_ID).get_consumer()

    # The connection has no auto.offset.reset, so a group without committed offsets starts at the end
    # of the log and would see nothing already produced: rewind every assigned partition explicitly.
    def _rewind(c: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            tp.offset = OFFSET_BEGINNING
        c.assign(partitions)

    consumer.subscribe([topic], on_assign=_rewind)
    received: list[Message] = []
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(received) < expected and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                pytest.fail(f"consumer error: {err}")
            received.append(msg)
        # Keep polling briefly: a duplicate delivered after the expected count must be seen too.
        linger = time.monotonic() + 2.0
        while time.monotonic() < linger:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                received.append(msg)
    finally:
        consumer.close()
    return received


def test_connection_gives_an_idempotent_acks_all_producer() -> None:
    hook = KafkaProducerHook(kafka_config_id=KAFKA_CONN_ID)
    extra: dict[str, Any] = hook.get_connection(hook.kafka_config_id).extra_dejson

    host, port = os.environ["SPOT_BIND_HOST"], os.environ["SPOT_KAFKA_PORT"]
    assert extra["bootstrap.servers"] == f"{host}:{port}"
    assert str(extra["acks"]).lower() in {"all", "-1"}
    assert str(extra["enable.idempotence"]).lower() == "true"
    # librdkafka itself validates the pair (idempotence with acks other than all is refused), so a
    # producer built from these extras is the idempotent acks=all producer the ingest relies on.
    assert hook.get_producer() is not None
    ok, message = hook.test_connection()
    assert ok, message


def test_produce_and_consume_round_trip(kafka_topic: str) -> None:
    producer = KafkaProducerHook(kafka_config_id=KAFKA_CONN_ID).get_producer()
    sent = {key: (value, headers) for key, value, headers in map(_message, range(MESSAGES))}
    reports: list[tuple[KafkaError | None, Message]] = []

    for key, (value, headers) in sent.items():
        producer.produce(
            kafka_topic,
            key=key,
            value=value,
            headers=headers,
            on_delivery=lambda err, msg: reports.append((err, msg)),
        )
        producer.poll(0)
    assert producer.flush(TIMEOUT_S) == 0, "messages still in the producer queue after flush"

    # Every message got exactly one successful delivery report, with a real offset.
    assert len(reports) == MESSAGES
    failures = [(err, msg.key()) for err, msg in reports if err is not None]
    assert not failures, failures
    delivered: dict[bytes, tuple[int, int]] = {}
    for _, msg in reports:
        # Delivery reports carry key, value, partition and offset, but not the headers.
        report_key, partition, offset = msg.key(), msg.partition(), msg.offset()
        assert isinstance(report_key, bytes), report_key
        key = report_key
        assert partition is not None and offset is not None and offset >= 0, (key, partition, offset)
        assert msg.topic() == kafka_topic
        assert key not in delivered, f"two delivery reports for {key!r}"
        delivered[key] = (partition, offset)
    assert set(delivered) == set(sent)
    assert {p for p, _ in delivered.values()} == set(range(PARTITIONS)), "keys should spread"

    received = _consume_from_beginning(kafka_topic, MESSAGES)

    assert len(received) == MESSAGES, f"consumed {len(received)} messages, produced {MESSAGES}"
    got: dict[bytes, tuple[bytes, Headers, int, int]] = {}
    for msg in received:
        key, value, headers, partition, offset = _fields(msg)
        assert key not in got, f"duplicate message {key!r}"
        got[key] = (value, headers, partition, offset)
    assert set(got) == set(sent)
    for key, (value, headers) in sent.items():
        got_value, got_headers, partition, offset = got[key]
        assert got_value == value, key
        assert got_headers == headers, key
        assert (partition, offset) == delivered[key], key
    assert got[_message(0)[0]][0] == b""

    # Within each partition the log order is the produce order (what idempotence guarantees on retry).
    produce_order = {key: i for i, key in enumerate(sent)}
    for partition in range(PARTITIONS):
        in_log = sorted((off, key) for key, (_, _, p, off) in got.items() if p == partition)
        seqs = [produce_order[key] for _, key in in_log]
        assert seqs == sorted(seqs), f"partition {partition} out of produce order"
