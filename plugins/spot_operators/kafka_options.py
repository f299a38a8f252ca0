"""A Kafka connection's client settings (librdkafka names) -> options of Spark's Kafka source.

Collect publishes with confluent-kafka (librdkafka), which reads the ``spot_kafka`` connection's extras
as they are; the listener reads with Spark's Kafka source (the Java client), whose settings have other
names and put SASL credentials into a JAAS line. This module translates, so one connection secures
both sides. Pure: no Airflow, no Kafka.

Extras starting with ``spark.kafka.`` are passed to the Spark source as ``kafka.<rest>`` unchanged: the
escape hatch for Java-only settings (a PEM or JKS keystore for mutual TLS, OAUTHBEARER, ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

LISTENER_KAFKA_OPTIONS_ENV = "SPOT_LISTENER_KAFKA_OPTIONS"
"""Environment variable carrying the options (JSON) to the listener: not on its command line."""

SOURCE_DEFAULTS = {"kafka.fetch.max.wait.ms": "20"}
"""Options of Spark's Kafka source that the listener (and the bench's limit job) set unless the
connection does. A task reads a bounded offset range; when the range ends at a partition's end, as
every batch of a caught-up listener does, the Java consumer's last fetch waits on the broker for data
that is not there, ``fetch.max.wait.ms`` (500 ms by default), and the task waits with it. Measured on
the stack, reading two messages at a partition's end: 0.73-3.3 s with the default, 0.21-0.28 s with
20 ms (0.17-0.35 s for the same read in mid-topic)."""

SECRET_OPTIONS = frozenset(
    {
        "kafka.sasl.jaas.config",
        "kafka.ssl.key.password",
        "kafka.ssl.keystore.password",
        "kafka.ssl.truststore.password",
        "kafka.ssl.keystore.key",
    }
)
"""Options whose values must never be logged."""

_RENAMED = {
    "security.protocol": "kafka.security.protocol",
    "sasl.mechanism": "kafka.sasl.mechanism",
    "sasl.mechanisms": "kafka.sasl.mechanism",
    "sasl.kerberos.service.name": "kafka.sasl.kerberos.service.name",
    "ssl.endpoint.identification.algorithm": "kafka.ssl.endpoint.identification.algorithm",
    "client.id": "kafka.client.id",
}
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
_PROTOCOLS = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
_MUTUAL_TLS = ("ssl.certificate.location", "ssl.key.location", "ssl.key.password", "ssl.keystore.location")


class KafkaOptionsError(ValueError):
    """A connection setting the listener cannot use; the message names the key."""


def _jaas_quote(value: str) -> str:
    """A JAAS string literal: double quotes, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _jaas(mechanism: str, extra: Mapping[str, str]) -> str:
    if mechanism in _LOGIN_MODULES:
        missing = [k for k in ("sasl.username", "sasl.password") if not extra.get(k)]
        if missing:
            raise KafkaOptionsError(
                f"sasl.mechanism {mechanism} needs {' and '.join(missing)} in the connection"
            )
        user, password = _jaas_quote(extra["sasl.username"]), _jaas_quote(extra["sasl.password"])
        return f"{_LOGIN_MODULES[mechanism]} required username={user} password={password};"
    if mechanism == "GSSAPI":
        missing = [k for k in ("sasl.kerberos.keytab", "sasl.kerberos.principal") if not extra.get(k)]
        if missing:
            raise KafkaOptionsError(f"sasl.mechanism GSSAPI needs {' and '.join(missing)} in the connection")
        keytab, principal = (
            _jaas_quote(extra["sasl.kerberos.keytab"]),
            _jaas_quote(extra["sasl.kerberos.principal"]),
        )
        return (
            "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true "
            f"keyTab={keytab} principal={principal};"
        )
    raise KafkaOptionsError(
        f"sasl.mechanism {mechanism!r} is not translated for the listener (PLAIN, SCRAM-SHA-256, "
        "SCRAM-SHA-512, GSSAPI are); set spark.kafka.sasl.jaas.config in the connection"
    )


def spark_kafka_options(extra: Mapping[str, Any]) -> dict[str, str]:
    """Spark Kafka source options (``kafka.*``) for the settings in a connection's extras.

    Producer-only and unknown librdkafka settings are left out (they do not apply to a reader);
    settings the Java client cannot take from librdkafka's form fail with a message naming the key.
    """
    values = {str(k): str(v) for k, v in extra.items() if v is not None}
    options: dict[str, str] = {}
    for key, value in values.items():
        if key in _RENAMED:
            options[_RENAMED[key]] = value
        elif key.startswith("spark.kafka."):
            options["kafka." + key[len("spark.kafka.") :]] = value
    protocol = options.get("kafka.security.protocol", "PLAINTEXT").upper()
    if protocol not in _PROTOCOLS:
        raise KafkaOptionsError(f"security.protocol {protocol!r} is not one of {sorted(_PROTOCOLS)}")
    if "kafka.security.protocol" in options:
        options["kafka.security.protocol"] = protocol
    if protocol.startswith("SASL_") and "kafka.sasl.jaas.config" not in options:
        mechanism = options.get("kafka.sasl.mechanism", "GSSAPI").upper()
        options["kafka.sasl.mechanism"] = mechanism
        options["kafka.sasl.jaas.config"] = _jaas(mechanism, values)
    if protocol in ("SSL", "SASL_SSL"):
        if values.get("ssl.ca.location") and "kafka.ssl.truststore.location" not in options:
            options["kafka.ssl.truststore.type"] = "PEM"
            options["kafka.ssl.truststore.location"] = values["ssl.ca.location"]
        client_side = [k for k in _MUTUAL_TLS if k in values]
        if client_side and "kafka.ssl.keystore.location" not in options:
            raise KafkaOptionsError(
                f"{', '.join(client_side)} (mutual TLS) cannot be translated for the listener: give it a "
                "keystore with spark.kafka.ssl.keystore.location (and .type, .password) in the connection"
            )
    return options


def redacted(options: Mapping[str, str]) -> dict[str, str]:
    """The options as they may appear in a log."""
    return {k: ("***" if k in SECRET_OPTIONS or "password" in k else v) for k, v in options.items()}


def options_from_env(text: str | None) -> dict[str, str]:
    """The listener's side: parse and check ``$SPOT_LISTENER_KAFKA_OPTIONS``."""
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KafkaOptionsError(f"{LISTENER_KAFKA_OPTIONS_ENV} is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise KafkaOptionsError(f"{LISTENER_KAFKA_OPTIONS_ENV} must be a JSON object")
    bad = sorted(k for k in parsed if not str(k).startswith("kafka."))
    if bad:
        raise KafkaOptionsError(f"{LISTENER_KAFKA_OPTIONS_ENV} keys must start with 'kafka.': {bad}")
    return {str(k): str(v) for k, v in parsed.items()}
