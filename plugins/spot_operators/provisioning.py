"""Creating what the pipelines write into: Kafka topics and Spot's HDFS folders (spot_setup DAG)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from spot_operators.config import IngestConfig, load_ingest_config
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spot_operators.provisioning topics``: what ``scripts/stack.sh up`` runs.

    The stack creates the config's topics as it creates its HDFS folders, so the UI, the demo and the
    tests find them on a fresh stack without running ``spot_setup`` first (which stays the way to
    provision a real cluster).
    """
    from confluent_kafka.admin import AdminClient

    parser = argparse.ArgumentParser(prog="python -m spot_operators.provisioning", description=__doc__)
    parser.add_argument("what", choices=("topics",))
    parser.add_argument("--config", default=None, help="ingest_conf.json (default: SPOT_INGEST_CONF)")
    parser.add_argument("--bootstrap", default=None, help="host:port (default: the config's kafka)")
    args = parser.parse_args(argv)
    config = load_ingest_config(args.config)
    admin = AdminClient({"bootstrap.servers": args.bootstrap or config.kafka.bootstrap_servers})
    try:
        outcome = ensure_topics(admin, config)
    except Exception as exc:
        print(f"cannot create the Kafka topics: {exc}", file=sys.stderr)
        return 1
    print(", ".join(f"{topic} {state}" for topic, state in sorted(outcome.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
