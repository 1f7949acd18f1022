"""The dashboard in headless Chromium: it loads, shows a job submitted during the test,
and shows it completed once Norce (the simulator) has finished it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from norce_simulator import SimulatorConfig, SimulatorServer
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce
from tests.support.stack import seed_skus, start_worker, trigger_delta, worker_env, write_config

pytestmark = pytest.mark.e2e

TOKEN = "dashboard-test-token"
LEAD_TIME_S = 4.0  # long enough to see the job open before it completes


async def test_dashboard_shows_a_job_from_submission_to_completion(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    assert HAVE_CHROMIUM, "install Debian's chromium: make browser"
    sim_cfg = SimulatorConfig(port=0, lead_time_s=LEAD_TIME_S, token_rate_limit=False)
    async with SimulatorServer(sim_cfg) as sim:
        seed_skus(sim, (f"SKU-{n:03d}" for n in range(3)))
        config, topics = write_config(tmp_path, unique)
        env = worker_env(
            kafka_servers, unique, sim.url, config, tmp_path, NORCE_SYNC_OPS_TOKEN=TOKEN
        )
        worker = await start_worker("norce_sync", env, tmp_path / "worker.log")
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = await browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                # The token in the fragment: the page keeps it and sends it as a header.
                await page.goto(f"{worker.url}/#token={TOKEN}")
                await expect(page.locator("#refreshed")).to_contain_text("updated")
                await expect(page.locator("#error")).to_have_text("")
                await expect(page.locator("#jobs tbody")).to_contain_text("none")

                rows = [price_row(f"SKU-{n:03d}", 10.0 + n) for n in range(3)]
                await produce(
                    kafka_servers,
                    topics["price"],
                    [(key_bytes(r, PRICE_KEY), envelope("prices", "c", r)) for r in rows],
                )
                backlog = page.locator("#backlog-erp-price")
                await expect(backlog).to_contain_text("3", timeout=20_000)

                posted = await trigger_delta(
                    worker, "erp", "price", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                [batch_id] = posted["batches"]

                row = page.locator(f"#job-{batch_id}")
                await expect(row).to_be_visible(timeout=10_000)
                # Seen open first (queued/initialized/validating), then completed.
                open_status = await row.get_attribute("data-status")
                assert open_status in {"intent", "queued", "initialized", "validating"}, open_status
                await expect(row).to_have_attribute("data-status", "succeeded", timeout=30_000)
                await expect(row.locator(".badge")).to_have_text("succeeded")
                await expect(row).to_contain_text("erp")
                await expect(page.locator("#job-counts")).to_contain_text("succeeded")

                # The last reconcile of the pair: Norce holds the three prices.
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.post(
                        f"{worker.url}/reconcile/erp/price",
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
                    assert response.status_code == 202
                reconciled = page.locator("#reconcile-erp-price")
                await expect(reconciled.locator(".badge")).to_have_text("matching", timeout=20_000)
                await expect(reconciled.locator("td.num").nth(1)).to_have_text("3")

                # The search box traces one item from its state to what Norce holds.
                await page.fill("#item-key", "SKU-001|STD|1")
                await page.click("#item-form button")
                result = page.locator("#item-result")
                await expect(result).to_contain_text("erp|price|SKU-001|STD|1", timeout=20_000)
                await expect(result).to_contain_text('"PriceSale":11,')
                await expect(result).to_contain_text("pending  no")
                await expect(result).to_contain_text("succeeded")
                await expect(result).to_contain_text("Norce    matching")
                await expect(page.locator("#error")).to_have_text("")
                assert errors == []
                await browser.close()
        finally:
            worker.stop()
