"""How the tests get a real Kafka broker.

1. ``KAFKA_BOOTSTRAP_SERVERS`` when set (an existing cluster or one started by CI);
2. otherwise the local broker from ``tools/kafka`` (jars from Maven Central), started once
   per test session on a free port and stopped at the end, also if pytest is killed.

The secured tests always start their own ``tools/kafka`` broker with a SASL_SSL listener
(:func:`secured_broker`). There is no fallback to skipping: when none of these works the
session fails. (No Docker path: see the README, "Kafka".)
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "tools" / "kafka" / "kafka.sh"


class BrokerUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def script_up(script: Path, env: dict[str, str], failure: RuntimeError) -> None:
    """``script up``, watched by this process (the service stops when pytest dies);
    raises ``failure`` with the script's output when it does not come up."""
    started = subprocess.run(
        [str(script), "up", "--watch-pid", str(os.getpid())],
        env=env,
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise type(failure)(f"{failure}:\n{started.stdout}\n{started.stderr}")


@contextmanager
def _local_broker() -> Iterator[str]:
    port, controller_port = free_port(), free_port()
    data = tempfile.mkdtemp(prefix="norce-sync-kafka-")
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_DATA_DIR": data,
    }
    script_up(KAFKA_SH, env, BrokerUnavailable("local Kafka broker failed to start"))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(KAFKA_SH), "down"], env=env, capture_output=True)


@dataclass(frozen=True)
class SecuredBroker:
    """A broker whose ``servers`` listener is SASL_SSL with SCRAM-SHA-512 (TLS by a CA of
    its own) and whose ``mtls_servers`` listener is SSL requiring a client certificate;
    ``plaintext`` is its plaintext listener, for checks only."""

    servers: str
    plaintext: str
    username: str
    password: str
    cafile: Path
    mtls_servers: str  # an SSL listener that requires a client certificate
    client_cert: Path
    client_key: Path

    def env(self, **changes: str) -> dict[str, str]:
        """The worker's settings for this broker (``changes`` override by name)."""
        env = {
            "NORCE_SYNC_BROKER": f"kafka://{self.servers}",
            "NORCE_SYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "NORCE_SYNC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "NORCE_SYNC_KAFKA_SASL_USERNAME": self.username,
            "NORCE_SYNC_KAFKA_SASL_PASSWORD": self.password,
            "NORCE_SYNC_KAFKA_SSL_CAFILE": str(self.cafile),
        }
        return {**env, **changes}

    def settings(self) -> Any:
        from streams.settings import Settings

        values = {k.removeprefix("NORCE_SYNC_").lower(): v for k, v in self.env().items()}
        return Settings(**values)


@contextmanager
def secured_broker() -> Iterator[SecuredBroker]:
    """A local broker (tools/kafka) with SASL_SSL and mTLS listeners, for this session;
    fails when it cannot start (never a fallback to plaintext)."""
    port, controller_port, sasl_port, ssl_port = free_port(), free_port(), free_port(), free_port()
    data = Path(tempfile.mkdtemp(prefix="norce-sync-kafka-secured-"))
    password = secrets.token_hex(16)
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_SASL_SSL_PORT": str(sasl_port),
        "KAFKA_SSL_PORT": str(ssl_port),
        "KAFKA_SASL_USER": "norce-sync-test",
        "KAFKA_SASL_PASSWORD": password,
        "KAFKA_DATA_DIR": str(data),
    }
    script_up(KAFKA_SH, env, BrokerUnavailable("secured Kafka broker failed to start"))
    try:
        yield SecuredBroker(
            servers=f"localhost:{sasl_port}",
            plaintext=f"127.0.0.1:{port}",
            username="norce-sync-test",
            password=password,
            cafile=data / "tls" / "ca.pem",
            mtls_servers=f"localhost:{ssl_port}",
            client_cert=data / "tls" / "client.pem",
            client_key=data / "tls" / "client.key",
        )
    finally:
        subprocess.run([str(KAFKA_SH), "down"], env=env, capture_output=True)
        shutil.rmtree(data, ignore_errors=True)  # keys and passwords do not linger


class PrivateBroker:
    """A broker of one test's own (tools/kafka, own ports, empty data dir), which the test
    may stop and start again; the session broker that other tests share is never stopped."""

    def __init__(self, prefix: str = "norce-sync-kafka-private-") -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_DATA_DIR": tempfile.mkdtemp(prefix=prefix),
        }

    @property
    def servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, *args: str) -> None:
        done = subprocess.run([str(KAFKA_SH), *args], env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BrokerUnavailable(f"kafka.sh {args}: {done.stdout}\n{done.stderr}")

    def up(self) -> None:
        self._run("up", "--watch-pid", str(os.getpid()))

    def down(self) -> None:
        self._run("down")


@contextmanager
def kafka_broker() -> Iterator[str]:
    """Yield bootstrap servers (``host:port``) of a running broker."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
    else:
        with _local_broker() as servers:
            yield servers
