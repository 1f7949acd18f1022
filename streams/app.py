"""The Faust app factory.

``create_app`` builds a :class:`faust.App` from :class:`~streams.settings.Settings`; the
composition root (``norce_sync.worker.build``) builds the service's app with it, and
tests build small apps of their own with the same factory so that every process is
configured the same way.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust

import streams.codecs  # noqa: F401  (registers the "orjson" codec with Faust)
from streams import gc_tuning
from streams.kafka import (
    PRODUCER_LINGER_MS,
    PRODUCER_MAX_BATCH_BYTES,
    FaustTransport,
    TopicSpec,
    bootstrap_servers,
    declare_and_confirm,
)
from streams.kafka_security import KafkaAccessRefused, check_broker_access, faust_credentials
from streams.own_topics import Registrable, StrictAssignor, collect
from streams.readiness import Readiness
from streams.secrets_check import InsecureSettings, check_secrets, check_web_exposure
from streams.settings import Settings

log = logging.getLogger(__name__)

EXIT_CONFIG = 78  # sysexits' EX_CONFIG: a setting is wrong, restarting will not help


class ServiceApp(faust.App):  # type: ignore[misc]
    """A Faust app that makes every topic it owns ready before its consumer subscribes
    (see :mod:`streams.own_topics`)."""

    settings: Settings
    topic_patience_s = 120.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registered: list[Registrable] = []
        self.own_topic_specs: list[TopicSpec] = []
        self.own_topic_names: frozenset[str] = frozenset()
        self.readiness = Readiness()
        # Secret checks beyond the settings' (the sync config's sources), set by the
        # layer that reads the sync config.
        self.more_secret_problems: Callable[[Settings], list[str]] | None = None

    def _new_transport(self) -> FaustTransport:
        return FaustTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> FaustTransport:
        return FaustTransport(self.conf.broker_producer, self)

    def register_topics(self, *items: Registrable) -> None:
        """Topics the worker creates at start besides its agents' and tables' (topics it
        only writes to, or families of its own): Faust topics or plain specs."""
        self._registered.extend(items)

    async def on_first_start(self) -> None:
        # Before anything is started. A demo secret, an ops surface open to other hosts,
        # a refused Kafka password or an untrusted certificate: one line naming the
        # setting and an exit, not a traceback or a worker retrying forever.
        problems = []
        checks = (  # every problem in one line
            lambda: check_secrets(self.settings, self.more_secret_problems),
            lambda: check_web_exposure(self.settings),
        )
        for check in checks:
            try:
                check()
            except InsecureSettings as refused:
                problems.append(str(refused).removeprefix("refusing to start: "))
        try:
            if not problems:
                await check_broker_access(self.settings, bootstrap_servers(self.settings))
        except KafkaAccessRefused as refused:
            problems.append(str(refused).removeprefix("refusing to start: "))
        if problems:
            log.critical("refusing to start: %s", "; ".join(problems))
            raise SystemExit(EXIT_CONFIG) from None
        if self.settings.gc_young_threshold:
            # the start-up heap is built by now: freeze it out of collections
            gc_tuning.tune(self.settings.gc_young_threshold)
        await super().on_first_start()

    async def on_start(self) -> None:
        await super().on_start()
        if self.producer_only or self.client_only:
            return
        # Runs before the children start: the consumer has not subscribed yet.
        self.own_topic_specs = collect(self, self._registered)
        self.own_topic_names = frozenset(s.name for s in self.own_topic_specs)
        await declare_and_confirm(
            self.settings,
            self.own_topic_specs,
            patience_s=self.topic_patience_s,
            should_stop=lambda: self.should_stop,
        )


def canonical_url(settings: Settings) -> str:
    """Where other workers reach this one's web server (``web_url``, else derived)."""
    if settings.web_url:
        return settings.web_url.rstrip("/")
    host = settings.web_host
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    return f"http://{host}:{settings.web_port}"


def create_app(settings: Settings) -> ServiceApp:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    app = ServiceApp(
        settings.app_id,
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),
        store=settings.store_url,
        datadir=str(Path(settings.data_dir) / "{conf.name}"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        processing_guarantee=settings.processing_guarantee,
        key_serializer="raw",
        value_serializer="orjson",
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        canonical_url=canonical_url(settings),
        autodiscover=False,  # the composition root installs every flow explicitly
        # Tables recover from their changelogs; standbys make a failover quicker.
        table_standby_replicas=1,
        # A slow Norce call inside an agent must not get the worker kicked from the group.
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=3.0,
        stream_wait_empty=True,
        # Batch produce requests (streams.kafka.PRODUCER_LINGER_MS says why).
        producer_linger=PRODUCER_LINGER_MS / 1000,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        logging_config=None,
        PartitionAssignor=StrictAssignor,
    )
    app.settings = settings  # type: ignore[attr-defined]  # agents read their settings here
    return app
