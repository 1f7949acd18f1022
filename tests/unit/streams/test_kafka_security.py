"""The security settings become the same aiokafka options for every client and the same
credentials for the Faust app; the password comes from the setting or a secret file and
never shows in what the settings print."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from streams.kafka import admin_client, consumer, group_consumer, producer
from streams.kafka_security import (
    KafkaAccessRefused,
    client_security,
    faust_credentials,
    sasl_password,
)
from streams.settings import Settings


def settings(**values: object) -> Settings:
    return Settings(broker="kafka://b1:9093;kafka://b2:9093", **values)  # type: ignore[arg-type]


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    s = settings()
    assert client_security(s) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(s) is None


async def test_sasl_ssl_with_scram_reaches_every_client_kind() -> None:
    s = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password="s3cret-value",
    )
    options = client_security(s)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "svc",
        "s3cret-value",
    )
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.check_hostname
    # each builder's network client (aiokafka keeps it private) got the same options
    readers = (consumer(s), group_consumer(s, group_id="g"))
    clients = [r._client for r in readers] + [producer(s).client, admin_client(s)._client]
    for client in clients:
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_password == "s3cret-value"
        assert sorted(h[:2] for h in client.hosts) == [("b1", 9093), ("b2", 9093)]
    for reader in readers:
        await reader.stop()
    credentials = faust_credentials(s)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (
        credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"
    )
    assert "s3cret-value" not in repr(s) and "s3cret-value" not in repr(credentials)


def test_password_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("from-file\n")
    s = settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_password_file=secret)
    assert sasl_password(s) == "from-file"
    assert client_security(s)["sasl_plain_password"] == "from-file"
    assert "ssl_context" not in client_security(s)
    missing = settings(kafka_sasl_password_file=tmp_path / "absent")
    with pytest.raises(KafkaAccessRefused, match="NORCE_SYNC_KAFKA_SASL_PASSWORD_FILE"):
        sasl_password(missing)


def test_ssl_only_and_hostname_check_off(tmp_path: Path) -> None:
    s = settings(kafka_security_protocol="SSL", kafka_ssl_check_hostname=False)
    assert client_security(s)["ssl_context"].check_hostname is False
    assert isinstance(faust_credentials(s), faust.SSLCredentials)
    broken = settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "none.pem")
    with pytest.raises(KafkaAccessRefused, match="NORCE_SYNC_KAFKA_SSL_CAFILE"):
        client_security(broken)


def test_a_password_from_its_file_is_scrubbed_from_logs(tmp_path: Path) -> None:
    from streams.logging import Scrubber, secret_values

    secret = tmp_path / "kafka-password"
    secret.write_text("file-kafka-password-42\n")
    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_password_file=secret)
    scrub = Scrubber(secret_values(s))
    assert "file-kafka-password-42" not in scrub("login with file-kafka-password-42 failed")
