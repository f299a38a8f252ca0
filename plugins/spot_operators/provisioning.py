"""Creating what the pipelines write into: Kafka topics and Spot's HDFS folders (spot_setup DAG)."""

from __future__ import annotations

import logging
from typing import Any

from spot_operators.config import IngestConfig
from spot_operators.layout import hdfs_folders, local_folders

log = logging.getLogger(__name__)


def topic_specs(config: IngestConfig) -> dict[str, tuple[int, int]]:
    """topic -> (partitions, replication factor); pipelines may share a topic."""
    partitions = config.kafka.topic_partitions
    replication = config.kafka.replication_factor
    return {(p.topic or f"spot-{name}"): (partitions, replication) for name, p in config.pipelines.items()}


def ensure_topics(admin: Any, config: IngestConfig, timeout: float = 60.0) -> dict[str, str]:
    """Create missing topics with confluent-kafka's AdminClient; existing ones are left as they are."""
    from confluent_kafka.admin import NewTopic

    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = topic_specs(config)
    outcome = {topic: "exists" for topic in wanted if topic in existing}
    missing = [
        NewTopic(t, num_partitions=p, replication_factor=r)
        for t, (p, r) in wanted.items()
        if t not in existing
    ]
    if missing:
        for topic, future in admin.create_topics(missing, request_timeout=timeout).items():
            future.result(timeout)  # raises with the broker's reason
            outcome[topic] = "created"
    log.info("Kafka topics: %s", outcome)
    return outcome


def ensure_hdfs_folders(client: Any, config: IngestConfig) -> list[str]:
    folders = hdfs_folders(config)
    for folder in folders:
        client.makedirs(folder)
    log.info("HDFS folders ready: %s", ", ".join(folders))
    return folders


def ensure_local_folders(config: IngestConfig) -> list[str]:
    folders = local_folders(config)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return [str(f) for f in folders]
