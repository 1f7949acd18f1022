"""The worker's intake processes (``intake_processes``): started, watched, restarted.

Each slot runs one ``python -m norce_sync.intake_process`` (:mod:`norce_sync.intake_process`)
with the worker's environment. Its stdout is read line by line: ``listening`` marks it
serving, ``counters`` go through a :class:`streams.counter_relay.CounterRelay` into the
worker's ``/metrics`` (a restarted process gets a relay of its own, at zero). A process
that exits while the worker runs is started again after a backoff (0.5 s doubling to
30 s, back to 0.5 s after it ran a minute), with one warning per exit. On stop: SIGTERM
(the process answers what is in flight and flushes its producer), SIGKILL after
``webhook_ack_timeout_s`` plus a grace. The processes hold a pipe on stdin: when the
worker dies, even SIGKILLed, the pipe closes and they stop.

The worker serves webhooks on its own web server too; ``/ready`` asks that at least one
intake process listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from typing import Any

import orjson
from mode import Service

from streams import metrics
from streams.counter_relay import CounterRelay
from streams.metrics import Registry
from streams.outage import BACKOFF_MAX_S, BACKOFF_MIN_S
from streams.settings import Settings

log = logging.getLogger(__name__)

COMMAND = (sys.executable, "-m", "norce_sync.intake_process")
STOP_GRACE_S = 5.0
HEALTHY_AFTER_S = 60.0  # a process that ran this long restarts without the backoff
LINE_LIMIT = 1 << 20  # a counters line is a few hundred bytes; far more is a fault


class IntakeProcesses(Service):
    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry = metrics.REGISTRY,
        command: tuple[str, ...] = COMMAND,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings, self.registry, self.command = settings, registry, command
        self.count = settings.intake_processes
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._listening: set[int] = set()
        self.restarts = 0

    @property
    def listening(self) -> int:
        """Intake processes serving ``intake_port`` now."""
        return len(self._listening)

    def stats(self) -> dict[str, Any]:
        return {
            "wanted": self.count,
            "listening": self.listening,
            "restarts": self.restarts,
            "port": self.settings.intake_port,
            "pids": sorted(p.pid for p in self._procs.values()),
        }

    async def on_start(self) -> None:
        for slot in range(self.count):
            self.add_future(self._keep(slot))

    async def on_stop(self) -> None:
        procs = list(self._procs.values())
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        grace = self.settings.webhook_ack_timeout_s + STOP_GRACE_S
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                log.warning("intake process %d did not stop in %.0f s; killing it", proc.pid, grace)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def _keep(self, slot: int) -> None:
        backoff = BACKOFF_MIN_S
        while not self.should_stop:
            started = time.monotonic()
            try:
                code: int | str | None = await self._run_once(slot)
            except Exception as exc:  # could not start it, or its output broke the reader
                code = repr(exc)
            if self.should_stop:
                return
            ran = time.monotonic() - started
            backoff = BACKOFF_MIN_S if ran >= HEALTHY_AFTER_S else backoff
            self.restarts += 1
            log.warning(
                "intake process %d exited with code %s after %.1f s; starting another in %.1f s",
                slot, code, ran, backoff,
            )  # fmt: skip
            await self.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _run_once(self, slot: int) -> int | None:
        proc = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,  # its end closing tells the process we are gone
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        self._procs[slot] = proc
        relay = CounterRelay(self.registry)
        try:
            assert proc.stdout is not None
            async for line in proc.stdout:
                self._on_line(slot, proc.pid, relay, line)
            return await proc.wait()
        except BaseException:
            if proc.returncode is None:  # the reader failed, not the process: stop it
                proc.kill()
                await proc.wait()
            raise
        finally:
            self._listening.discard(slot)
            metrics.intake_processes.set(self.listening)
            if self._procs.get(slot) is proc:
                del self._procs[slot]

    def _on_line(self, slot: int, pid: int, relay: CounterRelay, line: bytes) -> None:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("intake process %d wrote a line that is not JSON: %.200r", pid, line)
            return
        if "counters" in message:
            relay.apply(message["counters"])
        elif "listening" in message:
            self._listening.add(slot)
            metrics.intake_processes.set(self.listening)
