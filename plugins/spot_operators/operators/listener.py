"""The Spot listener's Spark operator: its Kafka endpoint and security come from the Kafka connection."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import BaseHook, Context
from airflow.sdk.exceptions import AirflowFailException

from spot_operators.kafka_options import (
    LISTENER_KAFKA_OPTIONS_ENV,
    KafkaOptionsError,
    redacted,
    spark_kafka_options,
)
from spot_operators.operators.spark_app import SparkApplicationOperator


def with_bootstrap(args: list[Any], bootstrap: str) -> list[Any]:
    """``args`` with the value after ``--bootstrap`` replaced (appended when missing)."""
    out = list(args)
    if "--bootstrap" in out:
        out[out.index("--bootstrap") + 1] = bootstrap
    else:
        out += ["--bootstrap", bootstrap]
    return out


class SparkListenerOperator(SparkApplicationOperator):
    """Runs ``include/jobs/spot_listener.py`` like :class:`SparkApplicationOperator`, reading Kafka as
    collect writes it: the ``bootstrap.servers`` and the TLS/SASL settings of ``kafka_conn_id`` (the
    one connection collect's producer uses too), translated by :mod:`spot_operators.kafka_options`.

    The options travel in the application's environment (``$SPOT_LISTENER_KAFKA_OPTIONS``), not on its
    command line, and only their redacted form is logged. A connection setting the listener cannot use
    fails the task before anything is submitted, naming the key.
    """

    def __init__(self, *, kafka_conn_id: str = "spot_kafka", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kafka_conn_id = kafka_conn_id

    def execute(self, context: Context) -> Any:
        extra = BaseHook.get_connection(self.kafka_conn_id).extra_dejson
        try:
            options = spark_kafka_options(extra)
        except KafkaOptionsError as exc:
            raise AirflowFailException(f"Kafka connection {self.kafka_conn_id}: {exc}") from None
        if extra.get("bootstrap.servers"):
            self.application_args = with_bootstrap(
                self.application_args or [], str(extra["bootstrap.servers"])
            )
        self.env_vars = {**(self.env_vars or {}), LISTENER_KAFKA_OPTIONS_ENV: json.dumps(options)}
        self.log.info(
            "Kafka via connection %s: %s, options %s",
            self.kafka_conn_id,
            extra.get("bootstrap.servers", "(bootstrap from the config)"),
            redacted(options) or "none (PLAINTEXT)",
        )
        return super().execute(context)
