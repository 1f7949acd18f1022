"""An intake process: the webhook intake alone, on ``intake_port``, beside a worker.

Started by the worker (``intake_processes`` of them, see
:mod:`norce_sync.intake_supervisor`) as ``python -m norce_sync.intake_process`` with the
worker's environment, so it reads the same settings, secret files and sync config. It
serves the same two URLs with the same :class:`agents.export.intake.Intake` (token,
size limit, schema, the order events' route, 200 only once the broker acknowledged)
through a producer of its own, so webhook intake is no longer bound to the worker's one
core: one Python process spends about as much CPU accepting a webhook as the worker
spends exporting it. Several share the port with SO_REUSEPORT; the kernel spreads
connections over them.

It reports to the worker on stdout, one JSON line each: ``{"listening": port}`` once,
then its counters' totals every second (:mod:`streams.counter_relay`). It stops on
SIGTERM or SIGINT (no new connections, requests in flight answered, the producer
flushed), and when its stdin closes: the worker is gone, even SIGKILLed, and no intake
may outlive it.

The worker starts it only after the topics it writes exist, so it checks none itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import os
import signal
import sys
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer

from agents.config.runtime import sync_config
from agents.config.secrets import config_secret_values
from agents.export.intake import Intake, add_intake_routes
from agents.orders.wiring import order_event_routes
from streams import gc_tuning, metrics
from streams.counter_relay import totals
from streams.event_routes import EventRoutes
from streams.kafka import PRODUCER_LINGER_MS, PRODUCER_MAX_BATCH_BYTES, producer
from streams.logging import logging_config
from streams.outage import BACKOFF_MAX_S, BACKOFF_MIN_S
from streams.settings import Settings

log = logging.getLogger("norce_sync.intake_process")

REPORT_INTERVAL_S = 1.0
EXIT_CANNOT_LISTEN = 3
# After a stop, requests in flight get their ack timeout and this long to be answered;
# then the connections are closed (Norce retries what was not answered).
SHUTDOWN_GRACE_S = 0.5


def _report(message: dict[str, Any]) -> None:
    """One line to the worker. stdout is non-blocking (``main``): a worker that stops
    reading must not stall this process's loop, so a line that does not fit is dropped
    (totals: the next line carries its counts). A line up to the pipe's atomic size is
    written whole or not at all."""
    # not read now, or the worker is gone (stdin's end stops this process)
    with contextlib.suppress(BlockingIOError, BrokenPipeError):
        os.write(sys.stdout.fileno(), orjson.dumps(message) + b"\n")


async def _started_producer(settings: Settings, stop: asyncio.Event) -> AIOKafkaProducer | None:
    """The producer, once the broker answers (waited out with a backoff and one line);
    None when stopped first."""
    backoff, warned = BACKOFF_MIN_S, False
    while not stop.is_set():
        # The same linger, batch size and acks as the worker's producer: the answer
        # waits for the ack, and batching makes thousands per second cheap.
        kafka = producer(
            settings, linger_ms=PRODUCER_LINGER_MS, max_batch_size=PRODUCER_MAX_BATCH_BYTES
        )
        starting = asyncio.ensure_future(kafka.start())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not starting.done():  # stopped while the broker did not answer
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
            await kafka.stop()
            return None
        try:
            starting.result()
        except Exception as exc:  # KafkaError, or TLS/SASL trouble
            await kafka.stop()
            if not warned:
                log.warning("intake process %d cannot reach the broker (%r); retrying",
                            os.getpid(), exc)  # fmt: skip
                warned = True
        else:
            if warned:
                log.info("intake process %d: the broker answers again", os.getpid())
            return kafka
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2, BACKOFF_MAX_S)
    return None


async def _until_stdin_closes() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (OSError, ValueError) as exc:  # started by hand, stdin a file or a terminal
        log.warning("stdin is not a pipe (%r): this process will not notice its worker go", exc)
        await asyncio.Event().wait()
    while await reader.read(1024):
        pass


async def serve(settings: Settings) -> None:
    config = sync_config(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    orphaned = asyncio.ensure_future(_until_stdin_closes())
    orphaned.add_done_callback(lambda _: stop.set())
    kafka = await _started_producer(settings, stop)
    if kafka is None:
        orphaned.cancel()
        return

    async def send(topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Any:
        delivery = await kafka.send(topic, value, key=key, headers=headers)
        return await delivery

    async def topics_ready() -> None:
        return None  # the worker starts intake processes once its topics exist

    routes = EventRoutes()
    order_event_routes(settings, config, send, routes)
    intake = Intake(settings, send, topics_ready, routes)
    app = web.Application(client_max_size=settings.webhook_max_body_bytes)
    add_intake_routes(app.router, intake)
    runner = web.AppRunner(
        app, access_log=None, shutdown_timeout=settings.webhook_ack_timeout_s + SHUTDOWN_GRACE_S
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.web_host, settings.intake_port, reuse_port=True)

    try:
        try:
            await site.start()
        except OSError as exc:  # the port taken, the address not this host's
            log.error(
                "intake process %d cannot listen on %s:%d: %s",
                os.getpid(), settings.web_host, settings.intake_port, exc,
            )  # fmt: skip
            raise SystemExit(EXIT_CANNOT_LISTEN) from None
        log.info(
            "intake process %d serving webhooks on %s:%d",
            os.getpid(), settings.web_host, settings.intake_port,
        )  # fmt: skip
        _report({"listening": settings.intake_port})
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPORT_INTERVAL_S)
            _report({"counters": totals(metrics.REGISTRY)})
    finally:
        orphaned.cancel()
        await runner.cleanup()  # stops listening, answers what is in flight
        await kafka.stop()  # flushes what was handed over
        _report({"counters": totals(metrics.REGISTRY)})
        log.info("intake process %d stopped", os.getpid())


def main() -> None:
    os.set_blocking(sys.stdout.fileno(), False)  # see _report
    settings = Settings()
    logging.config.dictConfig(logging_config(settings, secrets=config_secret_values(settings)))
    if settings.gc_young_threshold:
        gc_tuning.tune(settings.gc_young_threshold)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
