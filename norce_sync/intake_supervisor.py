"""The worker's intake processes (``intake_processes``): started, watched, restarted.

Each slot runs one ``python -m norce_sync.intake_process`` (:mod:`norce_sync.intake_process`)
with the worker's environment, in a session of its own: a signal meant for the worker's
process group (Ctrl-C, a service manager's stop) reaches only the worker, which then
stops its intake processes in order. Their stdout is read line by line: ``listening``
marks one serving, ``counters`` go through a :class:`streams.counter_relay.CounterRelay`
into the worker's ``/metrics`` (a restarted process gets a relay of its own, at zero).

A process that exits while the worker runs is started again after a backoff (0.5 s
doubling to 30 s; back to 0.5 s once one listened for a minute). The first exit of a
run of failures is one warning; the next ones are quiet until a process listens again
("serves again"), so a port that stays taken is not a line every 30 s. A process that
listens and then writes nothing for ``SILENT_AFTER_S`` is hung (its loop blocked): it is
killed and replaced. On stop: SIGTERM to all (each answers what is in flight and
flushes its producer), SIGKILL to what is left after ``webhook_ack_timeout_s`` plus a
grace, one deadline for all. The processes hold a pipe on stdin: when the worker dies,
even SIGKILLed, the pipe closes and they stop.

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
HEALTHY_AFTER_S = 60.0  # one that listened this long restarts without the backoff
SILENT_AFTER_S = 15.0  # a listening process reports every second
LINE_LIMIT = 1 << 20  # a counters line is a few hundred bytes; far more is a fault


class IntakeSupervisor(Service):
    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry = metrics.REGISTRY,
        command: tuple[str, ...] = COMMAND,
        stop_grace_s: float = STOP_GRACE_S,
        silent_after_s: float = SILENT_AFTER_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings, self.registry, self.command = settings, registry, command
        self.stop_grace_s, self.silent_after_s = stop_grace_s, silent_after_s
        self.count = settings.intake_processes
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._listening: set[int] = set()
        self._failing: set[int] = set()  # slots whose last process failed to listen
        self.restarts = 0

    @property
    def listening(self) -> int:
        """Intake processes serving ``intake_port`` now."""
        return len(self._listening)

    async def on_start(self) -> None:
        for slot in range(self.count):
            self.add_future(self._keep(slot))

    async def on_stop(self) -> None:
        # Processes started while this runs are stopped by _run_once itself (it sees
        # should_stop right after the spawn); these are the ones running now.
        procs = list(self._procs.values())
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        grace = self.settings.webhook_ack_timeout_s + self.stop_grace_s
        waits = [asyncio.ensure_future(p.wait()) for p in procs]
        if waits:
            await asyncio.wait(waits, timeout=grace)
        for proc in procs:
            if proc.returncode is None:
                log.warning("intake process %d did not stop in %.0f s; killing it", proc.pid, grace)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def _keep(self, slot: int) -> None:
        backoff = BACKOFF_MIN_S
        while not self.should_stop:
            started = time.monotonic()
            listened = False
            try:
                code, listened = await self._run_once(slot)
            except Exception as exc:  # could not start it, or its output broke the reader
                code = repr(exc)
            if self.should_stop:
                return
            ran = time.monotonic() - started
            if listened and ran >= HEALTHY_AFTER_S:
                backoff = BACKOFF_MIN_S
            self.restarts += 1
            message = (
                "intake process %d exited with code %s after %.1f s; starting another in %.1f s"
            )
            if slot in self._failing:  # still failing: said so already
                log.debug(message, slot, code, ran, backoff)
            else:
                log.warning(message, slot, code, ran, backoff)
            if not listened:
                self._failing.add(slot)
            await self.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _run_once(self, slot: int) -> tuple[int | None, bool]:
        """Runs one process to its end: (exit code, whether it listened)."""
        proc = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,  # its end closing tells the process we are gone
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
            start_new_session=True,  # the worker's process group's signals are the worker's
        )
        self._procs[slot] = proc
        listened = False
        try:
            if self.should_stop:  # on_stop ran while it was being started
                proc.send_signal(signal.SIGTERM)
            relay = CounterRelay(self.registry)
            assert proc.stdout is not None
            while True:
                timeout = self.silent_after_s if listened else None
                try:
                    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
                except TimeoutError:
                    log.warning(
                        "intake process %d reported nothing for %.0f s; killing it",
                        proc.pid, self.silent_after_s,
                    )  # fmt: skip
                    proc.kill()
                    break
                if not line:
                    break
                listened = self._on_line(slot, proc.pid, relay, line) or listened
            return await proc.wait(), listened
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

    def _on_line(self, slot: int, pid: int, relay: CounterRelay, line: bytes) -> bool:
        """Handles one report; True when it says the process listens."""
        try:
            message = orjson.loads(line)
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError:  # orjson.JSONDecodeError is a ValueError
            log.warning("intake process %d wrote a line that is not a report: %.200r", pid, line)
            return False
        if "counters" in message:
            try:
                relay.apply(message["counters"])
            except (TypeError, ValueError, AttributeError) as exc:
                log.warning("intake process %d sent counters that do not add up: %r", pid, exc)
        elif "listening" in message:
            if slot in self._failing:
                self._failing.discard(slot)
                log.info("intake process %d serves again", slot)
            self._listening.add(slot)
            metrics.intake_processes.set(self.listening)
            return True
        return False
