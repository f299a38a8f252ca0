"""The Kafka producer of the ingest: the provider's hook, with the delivery guarantees forced on."""

from __future__ import annotations

from typing import Any

from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook
from confluent_kafka import Producer

#: Headroom over max_request_size for the record's key, headers and batch framing.
FRAME_HEADROOM = 64 * 1024


class IdempotentProducerHook(KafkaProducerHook):
    """A producer from a Kafka connection, always with acks=all and idempotence.

    The connection supplies the endpoint, TLS and SASL settings; these guarantees are not left to
    it, because a lost or duplicated segment would break the exactly-once promise downstream.
    """

    def __init__(self, kafka_config_id: str, max_request_size: int) -> None:
        super().__init__(kafka_config_id=kafka_config_id)
        self.max_request_size = max_request_size

    def _get_client(self, config: dict[str, Any]) -> Producer:
        consumer_only = {"group.id", "auto.offset.reset", "enable.auto.commit", "session.timeout.ms"}
        config = {key: value for key, value in config.items() if key not in consumer_only}
        config.update(
            {
                "enable.idempotence": True,
                "acks": "all",
                "message.max.bytes": max(
                    int(config.get("message.max.bytes", 0)), self.max_request_size + FRAME_HEADROOM
                ),
            }
        )
        return Producer(config)
