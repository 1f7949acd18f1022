"""Shared fixtures: one real Kafka broker per test session, unique names per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.broker import SecuredBroker, kafka_broker, secured_broker
from tests.support.registry import schema_registry

# A failing test's report shows the log tail of each worker process it started.
pytest_plugins = ["tests.support.worker_logs"]


@pytest.fixture(scope="session")
def kafka_servers() -> Iterator[str]:
    """Bootstrap servers of a real broker; fails (never skips) when none can be had."""
    with kafka_broker() as servers:
        yield servers


@pytest.fixture(scope="session")
def secured_kafka() -> Iterator[SecuredBroker]:
    """A broker of this session with a SASL_SSL (SCRAM-SHA-512) listener; started only by
    the tests that ask for it, and a failure to start fails them."""
    with secured_broker() as broker:
        yield broker


@pytest.fixture
def unique() -> str:
    """A short id for this test's topics and app id, so tests never share data."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def registry_url() -> Iterator[str]:
    """Base URL of a real Confluent-compatible schema registry (Apicurio from tools/registry);
    fails (never skips) when none can be had."""
    with schema_registry() as url:
        yield url
