"""The Faust app factory.

``create_app`` builds a :class:`faust.App` from :class:`~streams.settings.Settings`; the
service's own app is :data:`streams.main.app`, and tests build small apps of their own
with the same factory so that every process is configured the same way.
"""

from __future__ import annotations

from pathlib import Path

import faust

import streams.codecs  # noqa: F401  (registers the "orjson" codec with Faust)
from streams.settings import Settings


def create_app(settings: Settings, *, autodiscover: bool | list[str] = False) -> faust.App:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
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
        autodiscover=autodiscover,
        # Tables recover from their changelogs; standbys make a failover quicker.
        table_standby_replicas=1,
        # A slow Norce call inside an agent must not get the worker kicked from the group.
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=3.0,
        stream_wait_empty=True,
        # Batch produce requests: without a linger every message is its own request, and
        # the ingest path (one changes record and two changelog records per event) spends
        # its time in socket writes. 5 ms costs webhook intake little.
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,
        logging_config=None,
    )
    app.settings = settings  # type: ignore[attr-defined]  # agents read their settings here
    return app


def app_settings(app: faust.App) -> Settings:
    return app.settings  # type: ignore[attr-defined, no-any-return]
