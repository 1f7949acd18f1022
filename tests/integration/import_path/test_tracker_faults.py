"""The job tracker on a real worker (issue 23, items 6 and 13): a job whose source was
renamed while it was open gets the failure recorded on it and the tracker goes on with
the other jobs; finished records past the retention are pruned from the ledger."""

from __future__ import annotations

from pathlib import Path

import httpx

from norce.client import NorceClient
from norce.config import NorceCredentials, NorceEndpoints
from norce.connect_header import ConnectHeader
from norce_simulator import SimulatorServer
from streams.messages import Intent, Posted
from tests.support.kafka import produce
from tests.support.stack import import_worker, ledger, wait_until


async def test_a_renamed_source_is_recorded_on_its_job_and_the_tracker_goes_on(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    credentials = NorceCredentials(
        client_id="norce-sync-demo", client_secret="demo-secret", application_id="demo-app"
    )
    async with NorceClient(credentials, NorceEndpoints(base_url=sim.url)) as norce:
        answer = await norce.connect.import_sku_price_lists(
            ConnectHeader(AccountId=1),
            [{"PartNo": "T1", "PriceListCode": "STD", "PriceSale": 1.0}],
        )
    job_id = answer.job_id_int
    async with import_worker(
        kafka_servers,
        unique,
        tmp_path,
        sim.url,
        env_extra={"NORCE_SYNC_JOB_RETENTION_S": "3", "NORCE_SYNC_JOB_PRUNE_INTERVAL_S": "1"},
    ) as (worker, env, _topics):
        app_id = env["NORCE_SYNC_APP_ID"]
        events = [
            # The renamed source's job first: before the fix its KeyError ended the tick
            # (and escaped the timer), so the job after it was never polled.
            Intent(batch_id="b-renamed", source="erp-old", kind="price", mode="delta"),
            Posted(batch_id="b-renamed", job_id=job_id + 1000),
            Intent(batch_id="b-ok", source="erp", kind="price", mode="delta"),
            Posted(batch_id="b-ok", job_id=job_id),
        ]
        await produce(
            kafka_servers,
            f"{app_id}-job-events",
            [(e.batch_id.encode(), e.to_bytes()) for e in events],
            raw=True,
        )

        async def both_handled() -> bool:
            records = await ledger(kafka_servers, app_id)
            ok, gone = records.get("b-ok"), records.get("b-renamed")
            return bool(
                ok
                and ok.status == "succeeded"
                and gone
                and any("KeyError" in e and "erp-old" in e for e in gone.errors)
            )

        await wait_until(both_handled, timeout=60, what="the tracker to poll and record")
        records = await ledger(kafka_servers, app_id)
        failures = [e for e in records["b-renamed"].errors if "KeyError" in e]
        assert len(failures) == 1, records["b-renamed"].errors  # once, not every tick

        # b-ok is finished: past the 3 s retention it leaves the ledger (the worker's view)
        async def pruned() -> bool:
            async with httpx.AsyncClient(timeout=10) as http:
                body = (await http.get(f"{worker.url}/jobs/?limit=50")).json()
            text = str(body)
            return "b-ok" not in text and "b-renamed" in text

        await wait_until(pruned, timeout=60, what="the finished job to be pruned")
        assert worker.proc is not None and worker.proc.poll() is None, "the worker kept running"
