"""Serve the simulator forever: ``python -m norce_simulator --port 8300``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

from norce_simulator.app import SimulatorServer
from norce_simulator.config import SimulatorConfig


def parse_args(argv: Sequence[str] | None) -> SimulatorConfig:
    p = argparse.ArgumentParser(prog="norce-simulator", description="Norce Commerce simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8300)
    p.add_argument("--workers", type=int, default=2, help="concurrent import jobs")
    p.add_argument("--lead-time", type=float, default=1.0, help="seconds a job runs")
    p.add_argument("--token-lifetime", type=float, default=3600.0)
    p.add_argument("--no-token-rate-limit", action="store_true")
    p.add_argument("--webhook-time-factor", type=float, default=1.0)
    p.add_argument("--page-size", type=int, default=500)
    p.add_argument("--query-rate-limit", type=float, default=None, help="Query calls per second")
    p.add_argument("--no-history", action="store_true", help="do not keep per-item history")
    args = p.parse_args(argv)
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        workers=args.workers,
        lead_time_s=args.lead_time,
        token_lifetime_s=args.token_lifetime,
        token_rate_limit=not args.no_token_rate_limit,
        webhook_time_factor=args.webhook_time_factor,
        page_size=args.page_size,
        query_rate_limit_per_s=args.query_rate_limit,
        record_history=not args.no_history,
    )


async def run(config: SimulatorConfig) -> None:
    """Serve until cancelled or SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with SimulatorServer(config) as sim:
        logging.getLogger(__name__).info("Norce simulator listening on %s", sim.url)
        print(f"Norce simulator listening on {sim.url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run(parse_args(argv)))
    return 0
