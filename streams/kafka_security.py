"""Kafka security from :class:`~streams.settings.Settings`: the aiokafka keyword arguments
every client gets (:func:`client_security`), the Faust app's broker credentials
(:func:`faust_credentials`), and a start-up check (:func:`check_broker_access`) that turns
a refused password or an untrusted certificate into one line naming the setting.

Only :mod:`streams.kafka` builds clients with these; nothing here logs a secret value."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

import faust
from aiokafka.conn import create_conn
from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError
from aiokafka.helpers import create_ssl_context

from streams.settings import ENV_PREFIX, Settings

log = logging.getLogger(__name__)

SSL_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


class KafkaAccessRefused(RuntimeError):
    """The brokers refused this worker's security settings: retrying cannot help."""


def setting(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def sasl_password(settings: Settings) -> str:
    """The password from the setting, else from ``kafka_sasl_password_file``."""
    value = settings.kafka_sasl_password.get_secret_value()
    if value or settings.kafka_sasl_password_file is None:
        return value
    try:
        return Path(settings.kafka_sasl_password_file).read_text().strip()
    except OSError as error:
        raise KafkaAccessRefused(
            f"{setting('kafka_sasl_password_file')} cannot be read ({error.strerror})"
        ) from None


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS context for ``SSL``/``SASL_SSL`` (None otherwise): the CA file or the system's
    CAs, the client certificate for mTLS, hostname checking as set."""
    if settings.kafka_security_protocol not in SSL_PROTOCOLS:
        return None
    key_password = settings.kafka_ssl_key_password.get_secret_value() or None
    try:
        context = create_ssl_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
            certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
            keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
            password=key_password,
        )
    except (OSError, ssl.SSLError) as error:
        raise KafkaAccessRefused(
            f"{setting('kafka_ssl_cafile')}, {setting('kafka_ssl_certfile')} or "
            f"{setting('kafka_ssl_keyfile')} cannot be loaded ({type(error).__name__}: "
            f"{getattr(error, 'strerror', None) or getattr(error, 'reason', None) or 'invalid'})"
        ) from None
    if not settings.kafka_ssl_check_hostname:
        context.check_hostname = False
    return context


def client_security(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for every client (consumer, producer, admin, client)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in SSL_PROTOCOLS:
        options["ssl_context"] = ssl_context(settings)
    if protocol in SASL_PROTOCOLS:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = sasl_password(settings)
    return options


def faust_credentials(settings: Settings) -> faust.auth.Credentials | None:
    """The same settings as Faust's ``broker_credentials`` (its consumer, producer and
    admin client)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=sasl_password(settings),
        ssl_context=ssl_context(settings),  # None for SASL_PLAINTEXT
        mechanism=settings.kafka_sasl_mechanism,
    )


def _hosts(servers: str) -> list[tuple[str, int]]:
    hosts = []
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        hosts.append((host.strip("[]") or server, int(port or 9092)))
    return hosts


async def check_broker_access(settings: Settings, servers: str, *, timeout: float = 10.0) -> None:
    """Connect to each bootstrap server with the security settings once. Raises
    :class:`KafkaAccessRefused` (one line, naming the setting, never a value) when a
    broker answers but refuses them: an untrusted certificate, a refused password, TLS
    spoken to a plaintext listener. A broker that does not answer is no verdict: the
    worker waits it out as before."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return  # nothing to refuse: no credentials, no certificate
    options = client_security(settings)
    for host, port in _hosts(servers):
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(timeout * 1000), **options),
                timeout,
            )
        except (SaslAuthenticationFailed, UnsupportedSaslMechanismError) as error:
            raise KafkaAccessRefused(
                f"{setting('kafka_sasl_username')}/{setting('kafka_sasl_password')}/"
                f"{setting('kafka_sasl_mechanism')}: broker {host}:{port} refused the "
                f"credentials ({type(error).__name__})"
            ) from None
        except Exception as error:  # refused, timed out, closed: the broker may be away
            tls_error = _tls_error(error)
            if tls_error is not None:
                raise KafkaAccessRefused(_tls_refusal(tls_error, host, port)) from None
            log.warning(
                "cannot check Kafka access at %s:%s yet (%s); going on",
                host,
                port,
                type(error).__name__,
            )
            continue
        conn.close()
        return


def _tls_error(error: BaseException) -> ssl.SSLError | None:
    """The TLS failure behind ``error`` (aiokafka wraps an alert the broker sends after
    the handshake, such as a refused client certificate, in a connection error)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _tls_refusal(error: ssl.SSLError, host: str, port: int) -> str:
    where = f"broker {host}:{port}"
    if isinstance(error, ssl.SSLCertVerificationError):
        message = error.verify_message or ""
        name = "kafka_ssl_check_hostname" if "match" in message.lower() else "kafka_ssl_cafile"
        return f"{setting(name)}: the certificate of {where} is not trusted ({message})"
    reason = (error.reason or str(error)).upper()
    if any(alert in reason for alert in ("BAD_CERTIFICATE", "CERTIFICATE_REQUIRED", "UNKNOWN_CA")):
        return (
            f"{setting('kafka_ssl_certfile')}/{setting('kafka_ssl_keyfile')}: {where} refused "
            f"the client certificate ({error.reason})"
        )
    return (
        f"{setting('kafka_security_protocol')}: TLS with {where} failed ({error.reason}); "
        "is that listener TLS?"
    )
