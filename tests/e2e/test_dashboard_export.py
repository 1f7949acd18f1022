"""The dashboard's export panel in headless Chromium: figures and the backlog/lag chart
move when webhooks come in, with the ops token required."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from playwright.async_api import async_playwright, expect

from norce_simulator import SimulatorServer
from tests.integration.export.support import (
    TOKEN as WEBHOOK_TOKEN,
)
from tests.integration.export.support import (
    TOKEN_HEADER,
    sim_config,
    start_worker,
    stop_worker,
    worker_env,
)
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM

pytestmark = pytest.mark.e2e

OPS_TOKEN = "export-dashboard-token"


async def test_export_panel_shows_figures_and_a_chart_of_backlog_and_lag(
    kafka_servers: str, tmp_path: Path
) -> None:
    assert HAVE_CHROMIUM, "install Debian's chromium: make browser"
    app_id = f"dash-{uuid.uuid4().hex[:8]}"
    async with SimulatorServer(sim_config()) as sim:
        part_nos = [f"W{i:03d}" for i in range(60)]
        sim.state.seed({"sku": [{"PartNo": p} for p in part_nos]})
        env = worker_env(
            app_id,
            kafka_servers,
            sim,
            tmp_path / "data",
            NORCE_SYNC_OPS_TOKEN=OPS_TOKEN,
            NORCE_SYNC_EXPORT_MONITOR_INTERVAL_S="0.5",
        )
        worker = await start_worker(env, tmp_path / "worker.log")
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = await browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                await page.goto(f"{worker.url}/#token={OPS_TOKEN}")
                await expect(page.locator("#refreshed")).to_contain_text("updated")
                await expect(page.locator("#error")).to_have_text("")
                figures = page.locator("#export-figures")
                await expect(figures.locator('[data-figure="events in"] b')).to_have_text("0")

                url = f"{worker.url}/norce/events/SkuPriceChangedNotification"
                async with httpx.AsyncClient(timeout=10) as http:
                    answers = await asyncio.gather(
                        *(
                            http.post(
                                url,
                                content=orjson.dumps({"ClientId": 1, "PartNo": p}),
                                headers={TOKEN_HEADER: WEBHOOK_TOKEN},
                            )
                            for p in part_nos
                        )
                    )
                assert [a.status_code for a in answers] == [200] * len(part_nos)

                await expect(figures.locator('[data-figure="events in"] b')).to_have_text(
                    "60", timeout=20_000
                )
                # two targets: 120 records once every SKU went out
                await expect(figures.locator('[data-figure="records out"] b')).to_have_text(
                    "120", timeout=30_000
                )
                await expect(figures.locator('[data-figure="events lag"] b')).to_have_text(
                    "0", timeout=20_000
                )
                await expect(figures.locator('[data-figure="latency"]')).to_contain_text("ms")
                await expect(page.locator("#export-note")).to_contain_text("Query calls per event")
                chart = page.locator("#export-chart")
                # the chart is drawn from the samples (two or more: a line)
                await expect(chart).not_to_have_attribute("data-points", "0", timeout=10_000)
                await expect(chart).not_to_have_attribute("data-points", "1", timeout=10_000)
                painted = await chart.evaluate(
                    """(c) => { const d = c.getContext("2d")
                                  .getImageData(0, 0, c.width, c.height).data;
                                let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
                                return n; }"""
                )
                assert painted > 100, "the chart has lines on it"
                # The search box traces one exported SKU: its event, a record per target.
                await page.fill("#item-source", "export")
                await page.fill("#item-kind", "sku")
                await page.fill("#item-key", "W007")
                await page.click("#item-form button")
                result = page.locator("#item-result")
                await expect(result).to_contain_text("sku:W007  (partition ", timeout=20_000)
                await expect(result).to_contain_text("SkuPriceChangedNotification")
                await expect(result).to_contain_text("target   search: ")
                await expect(result).to_contain_text("target   marketplace: ")
                await expect(result).to_contain_text("verdict  the newest event produced a record")
                await expect(page.locator("#error")).to_have_text("")
                assert errors == []
                await browser.close()
        finally:
            assert await stop_worker(worker) == 0, worker.tail()
