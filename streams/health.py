"""Liveness and readiness views (``/health``, ``/ready``) for any app of this project.

``/ready`` is 503 while the worker cannot reach the broker (a cheap metadata request
every ``broker_probe_interval_s``), so an orchestrator routes webhooks elsewhere. Its body
names every dependency that is out (``dependencies_down``: the broker, a schema registry,
Norce; ``streams.outage``). A schema registry or Norce outage leaves it 200: intake still
stores webhooks, and the work that needs the service waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import faust
from aiokafka import AIOKafkaClient
from aiokafka.errors import NodeNotReadyError
from aiokafka.protocol.metadata import MetadataRequest
from faust.web import Request, Response, View

from streams import outage
from streams.kafka import metadata_client
from streams.readiness import is_ready
from streams.settings import Settings

log = logging.getLogger(__name__)


async def brokers_answer(client: AIOKafkaClient) -> Any:
    """One metadata request for no topic (the brokers only) to a known broker; raises when
    none answers. Not ``fetch_all_metadata``: on a cluster of thousands of topics its answer
    took 60-240 ms of the event loop to decode, every probe interval, and held every
    answer the worker was giving meanwhile (order receiver, webhooks)."""
    node = client.get_random_node()
    if node is None:
        raise NodeNotReadyError("no broker known")
    return await client.send(node, MetadataRequest([]))


class BrokerProbe:
    """Whether the broker answers a metadata request; logs each change once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reachable = True  # until a probe says otherwise
        self.since = time.monotonic()
        self._client: AIOKafkaClient | None = None

    async def probe(self) -> bool:
        timeout = max(1.0, self.settings.broker_probe_interval_s * 2)
        try:
            if self._client is None:
                self._client = metadata_client(
                    self.settings, request_timeout_ms=int(timeout * 1000)
                )
                await asyncio.wait_for(self._client.bootstrap(), timeout)
            await asyncio.wait_for(brokers_answer(self._client), timeout)
        except Exception as error:
            await self.close()
            self._set(False, f"{type(error).__name__}: {error}")
            return False
        self._set(True, "")
        return True

    def _set(self, reachable: bool, why: str) -> None:
        if reachable == self.reachable:
            return
        lasted = time.monotonic() - self.since
        self.reachable, self.since = reachable, time.monotonic()
        if reachable:
            log.warning("broker reachable again after %.0fs; /ready answers 200", lasted)
        else:
            log.error(
                "broker unreachable (%s): %s; /ready answers 503, webhooks are refused, "
                "imports and exports wait",
                self.settings.broker,
                why,
            )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # its broker may be gone
                await client.close()

    async def run(self, app: faust.App) -> None:
        try:
            while not app.should_stop:
                await self.probe()
                await asyncio.sleep(self.settings.broker_probe_interval_s)
        finally:
            await self.close()


def install_health_views(app: faust.App) -> None:
    settings: Settings | None = getattr(app, "settings", None)
    probe = BrokerProbe(settings) if settings is not None else None
    if probe is not None:

        @app.task
        async def probe_broker() -> None:
            await probe.run(app)

    @app.page("/health")
    async def health(self: View, request: Request) -> Response:
        return self.json({"status": "ok", "app": app.conf.id})

    @app.page("/ready")
    async def ready(self: View, request: Request) -> Response:
        ok = is_ready(app, probe)
        reachable = probe is None or probe.reachable
        down = outage.down()
        if not reachable:
            down.insert(0, {"name": "broker", "down": True, "reason": "no metadata answer"})
        body = {
            "ready": ok,
            "rebalancing": bool(app.rebalancing),
            "broker_reachable": reachable,
            "dependencies_down": down,
            "unprocessed_partitions": app.readiness.unprocessed(),
        }
        return self.json(body, status=200 if ok else 503)
