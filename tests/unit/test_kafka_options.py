"""Connection extras (librdkafka names) -> Spark Kafka source options for the listener."""

from __future__ import annotations

import json

import pytest

from spot_operators.kafka_options import (
    LISTENER_KAFKA_OPTIONS_ENV,
    SOURCE_DEFAULTS,
    KafkaOptionsError,
    options_from_env,
    redacted,
    spark_kafka_options,
)


def test_the_local_stack_connection_needs_no_options() -> None:
    extra = {"bootstrap.servers": "127.0.0.1:9092", "group.id": "spot-airflow", "acks": "all"}
    assert spark_kafka_options(extra) == {}


def test_sasl_plain_becomes_a_jaas_line() -> None:
    options = spark_kafka_options(
        {
            "bootstrap.servers": "b1:9094",
            "security.protocol": "sasl_plaintext",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "spot",
            "sasl.password": "s3cret",
            "enable.idempotence": "true",
        }
    )
    assert options == {
        "kafka.security.protocol": "SASL_PLAINTEXT",
        "kafka.sasl.mechanism": "PLAIN",
        "kafka.sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="spot" password="s3cret";',
    }


def test_scram_over_tls_with_a_ca_file() -> None:
    options = spark_kafka_options(
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "spot",
            "sasl.password": 'with "quotes" and \\',
            "ssl.ca.location": "/etc/kafka/ca.pem",
            "ssl.endpoint.identification.algorithm": "https",
        }
    )
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="spot" password="with \\"quotes\\" and \\\\";'
    )
    assert options["kafka.ssl.truststore.type"] == "PEM"
    assert options["kafka.ssl.truststore.location"] == "/etc/kafka/ca.pem"
    assert options["kafka.ssl.endpoint.identification.algorithm"] == "https"


def test_kerberos_uses_the_keytab_and_principal() -> None:
    options = spark_kafka_options(
        {
            "security.protocol": "SASL_SSL",
            "sasl.kerberos.service.name": "kafka",
            "sasl.kerberos.keytab": "/etc/security/spot.keytab",
            "sasl.kerberos.principal": "spot@EXAMPLE.COM",
        }
    )
    assert options["kafka.sasl.mechanism"] == "GSSAPI"  # librdkafka's default mechanism
    assert options["kafka.sasl.kerberos.service.name"] == "kafka"
    assert (
        'keyTab="/etc/security/spot.keytab" principal="spot@EXAMPLE.COM";'
        in options["kafka.sasl.jaas.config"]
    )


def test_spark_prefixed_extras_pass_through_and_win() -> None:
    options = spark_kafka_options(
        {
            "security.protocol": "SSL",
            "ssl.certificate.location": "/c.pem",
            "ssl.key.location": "/k.pem",
            "spark.kafka.ssl.keystore.location": "/etc/kafka/spot.p12",
            "spark.kafka.ssl.keystore.type": "PKCS12",
            "spark.kafka.ssl.keystore.password": "pw",
        }
    )
    assert options == {
        "kafka.security.protocol": "SSL",
        "kafka.ssl.keystore.location": "/etc/kafka/spot.p12",
        "kafka.ssl.keystore.type": "PKCS12",
        "kafka.ssl.keystore.password": "pw",
    }
    jaas = spark_kafka_options(
        {"security.protocol": "SASL_SSL", "spark.kafka.sasl.jaas.config": "X required;"}
    )
    assert jaas["kafka.sasl.jaas.config"] == "X required;"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "u"},
            "needs sasl.password",
        ),
        ({"security.protocol": "SASL_PLAINTEXT"}, "GSSAPI needs sasl.kerberos.keytab"),
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"}, "spark.kafka.sasl.jaas.config"),
        ({"security.protocol": "TLS"}, "security.protocol 'TLS'"),
        ({"security.protocol": "SSL", "ssl.key.location": "/k.pem"}, "ssl.key.location .mutual TLS."),
    ],
)
def test_settings_it_cannot_translate_fail_naming_the_key(extra: dict[str, str], message: str) -> None:
    with pytest.raises(KafkaOptionsError, match=message):
        spark_kafka_options(extra)


def test_secrets_are_redacted_for_logs() -> None:
    options = spark_kafka_options(
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "u",
            "sasl.password": "pw9",
        }
    )
    shown = redacted({**options, "kafka.ssl.truststore.password": "x"})
    assert shown == {
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "PLAIN",
        "kafka.sasl.jaas.config": "***",
        "kafka.ssl.truststore.password": "***",
    }
    assert "pw9" not in json.dumps(shown)


def test_the_listener_accepts_only_kafka_options_from_its_environment() -> None:
    assert options_from_env(None) == {} and options_from_env("") == {}
    assert options_from_env('{"kafka.security.protocol": "SSL"}') == {"kafka.security.protocol": "SSL"}
    with pytest.raises(KafkaOptionsError, match=r"must start with 'kafka\.'"):
        options_from_env('{"subscribe": "other-topic"}')
    with pytest.raises(KafkaOptionsError, match=f"{LISTENER_KAFKA_OPTIONS_ENV} is not JSON"):
        options_from_env("{nope")
    with pytest.raises(KafkaOptionsError, match="JSON object"):
        options_from_env("[1]")


def test_the_listener_operator_swaps_in_the_connections_bootstrap_servers() -> None:
    from spot_operators.operators.listener import with_bootstrap

    args = ["--data-type", "flow", "--bootstrap", "127.0.0.1:9092", "--mode", "availableNow"]
    assert with_bootstrap(args, "b1:9094,b2:9094") == [
        "--data-type",
        "flow",
        "--bootstrap",
        "b1:9094,b2:9094",
        "--mode",
        "availableNow",
    ]
    assert args[3] == "127.0.0.1:9092", "the DAG's own argument list is not changed"
    assert with_bootstrap(["--mode", "x"], "b1:9094")[-2:] == ["--bootstrap", "b1:9094"]


def test_the_source_defaults_can_be_overridden_by_the_connection() -> None:
    """The listener applies SOURCE_DEFAULTS first, then the connection's options: an extra
    ``spark.kafka.fetch.max.wait.ms`` must land on the same key to replace the default."""
    assert SOURCE_DEFAULTS == {"kafka.fetch.max.wait.ms": "20"}
    options = spark_kafka_options({"spark.kafka.fetch.max.wait.ms": "500"})
    assert {**SOURCE_DEFAULTS, **options}["kafka.fetch.max.wait.ms"] == "500"
