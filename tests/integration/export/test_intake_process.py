"""One intake process (``python -m norce_sync.intake_process``) on its own, as the worker
starts it (settings from the environment, a pipe on stdin, reports on stdout), on the
real broker over real HTTP: it reports ``listening``, stores an accepted event and
reports its counts; it stops cleanly on SIGTERM and when its stdin closes (the worker is
gone); a port it cannot listen on ends it with exit code 3 and one clear line."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from tests.integration.export.support import TOKEN, TOKEN_HEADER
from tests.support.broker import ROOT, free_port
from tests.support.kafka import create_topics, read_all

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="function")]


class Intake:
    def __init__(self, servers: str, tmp: Path, port: int | None = None) -> None:
        self.app_id = f"ip-{uuid.uuid4().hex[:8]}"
        self.servers = servers
        self.port = port or free_port()
        self.log = tmp / "intake.log"
        self.env = {
            "PATH": "/usr/bin:/bin",
            "NORCE_SYNC_APP_ID": self.app_id,
            "NORCE_SYNC_BROKER": f"kafka://{servers}",
            "NORCE_SYNC_WEBHOOK_TOKEN": TOKEN,
            "NORCE_SYNC_INTAKE_PORT": str(self.port),
            "NORCE_SYNC_ERP_CLIENT_SECRET": "erp-secret",
            "NORCE_SYNC_PIM_CLIENT_SECRET": "pim-secret",
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "norce_sync.intake_process",
            cwd=ROOT, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log.open("ab"),
        )  # fmt: skip

    async def report(self, key: str, timeout: float = 30) -> Any:
        """The next report line that has ``key``."""
        assert self.proc is not None and self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while line := await self.proc.stdout.readline():
                message = orjson.loads(line)
                if key in message:
                    return message[key]
        raise AssertionError(f"stdout ended before a {key!r} line: {self.log.read_text()}")

    async def exit_code(self, timeout: float = 15) -> int:
        assert self.proc is not None
        async with asyncio.timeout(timeout):
            return await self.proc.wait()


@pytest_asyncio.fixture
async def intake(kafka_servers: str, tmp_path: Path) -> AsyncIterator[Intake]:
    running = Intake(kafka_servers, tmp_path)
    # The events topic exists before an intake process starts (the worker sees to it).
    await create_topics(kafka_servers, [f"{running.app_id}-norce-events"], partitions=2)
    await running.start()
    try:
        yield running
    finally:
        if running.proc is not None and running.proc.returncode is None:
            running.proc.kill()
            await running.proc.wait()


async def test_an_accepted_event_is_stored_and_counted_and_sigterm_stops_it_cleanly(
    intake: Intake,
) -> None:
    assert await intake.report("listening") == intake.port
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            f"http://127.0.0.1:{intake.port}/norce/events/SkuPriceChangedNotification",
            content=b'{"ClientId":1,"PartNo":"IP-1"}',
            headers={TOKEN_HEADER: TOKEN},
        )
    assert answer.status_code == 200, answer.text
    records = await read_all(intake.servers, f"{intake.app_id}-norce-events")
    assert [r.key for r in records] == [b"sku:IP-1"]
    async with asyncio.timeout(30):
        while True:
            counts = await intake.report("counters")
            rows = counts.get("norce_sync_webhooks_total", [])
            if ["SkuPriceChangedNotification", "200", 1.0] in rows:
                break
    assert intake.proc is not None
    intake.proc.send_signal(signal.SIGTERM)
    assert await intake.exit_code() == 0
    assert f"intake process {intake.proc.pid} stopped" in intake.log.read_text()


async def test_it_stops_when_its_stdin_closes(intake: Intake) -> None:
    await intake.report("listening")
    assert intake.proc is not None and intake.proc.stdin is not None
    intake.proc.stdin.close()  # as when the worker dies: the pipe's write end closes
    assert await intake.exit_code() == 0
    assert f"intake process {intake.proc.pid} stopped" in intake.log.read_text()


async def test_while_the_broker_does_not_answer_it_waits_and_still_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    with socket.socket() as silent:  # a port that accepts and never speaks Kafka
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(30)
        intake = Intake(f"127.0.0.1:{silent.getsockname()[1]}", tmp_path)
        await intake.start()
        assert intake.proc is not None
        try:
            # its producer connected and waits for an answer that never comes
            connection, _ = await asyncio.to_thread(silent.accept)
            assert intake.proc.returncode is None
            intake.proc.send_signal(signal.SIGTERM)
            assert await intake.exit_code(timeout=10) == 0
            connection.close()
        finally:
            if intake.proc.returncode is None:
                intake.proc.kill()


async def test_a_port_it_cannot_listen_on_ends_it_with_a_clear_line(
    kafka_servers: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        intake = Intake(kafka_servers, tmp_path, port=taken.getsockname()[1])
        await intake.start()
        assert await intake.exit_code() == 3
    assert f"cannot listen on 127.0.0.1:{intake.port}" in intake.log.read_text()
