"""Bench: stream a 100,000-item ImportSkuPriceLists through ConnectClient.

Starts the simulator as a subprocess, generates the price rows lazily from an async
generator (the payload never exists whole on either side), waits for the job, and prints
one JSON line: items, seconds, client and simulator peak RSS (VmHWM).

    .venv/bin/python bench/bench_connect_stream.py [--items 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from norce.client import NorceClient  # noqa: E402
from norce.config import NorceCredentials, NorceEndpoints  # noqa: E402
from norce.connect_header import ConnectHeader  # noqa: E402
from norce.fields import SkuPriceListField  # noqa: E402
from norce.jsonstream import encode_item  # noqa: E402

DEMO = NorceCredentials(
    client_id="norce-sync-demo",
    client_secret="demo-secret",
    application_id="demo-app",
    scope="playground",
)


def vm_hwm_kib(pid: int | str = "self") -> int | None:
    """Peak resident set size (VmHWM) of a process in KiB, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def vm_rss_kib(pid: int | str = "self") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(url: str, proc: subprocess.Popen[bytes], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"simulator exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                await client.get(url + "/_sim/stats", timeout=1.0)
                return
            await asyncio.sleep(0.1)
    raise RuntimeError("simulator did not come up")


class Counter:
    def __init__(self) -> None:
        self.items = 0
        self.bytes = 2  # the brackets


async def price_rows(n: int, counter: Counter) -> AsyncIterator[dict[str, object]]:
    for i in range(n):
        row = {
            "PartNo": f"P{i:07d}",
            "PriceListCode": "STD" if i % 2 else "B2B",
            "QuantityBreak": 1,
            "PriceSale": round(10 + (i % 1000) * 0.25, 2),
            "CostPurchase": 5.5,
            "CostUnit": 6.0,
            "IsPriceDiscountable": True,
            "CurrencyCode": "SEK",
            "IsActive": True,
        }
        counter.items += 1
        counter.bytes += len(encode_item(row)) + (1 if i else 0)
        yield row


async def run(
    args: argparse.Namespace, proc: subprocess.Popen[bytes], url: str
) -> dict[str, object]:
    await wait_until_up(url, proc, 30.0)
    sim_rss_start = vm_rss_kib(proc.pid)
    client_rss_start = vm_rss_kib()
    header = ConnectHeader(
        account_id=1,
        full_file=False,
        sku_price_list_fields_that_are_set=[
            SkuPriceListField.PriceSale,
            SkuPriceListField.CostPurchase,
            SkuPriceListField.CostUnit,
            SkuPriceListField.IsPriceDiscountable,
            SkuPriceListField.IsActive,
        ],
    )
    counter = Counter()
    timeout = httpx.Timeout(300.0, connect=10.0)
    async with NorceClient(DEMO, NorceEndpoints(base_url=url), timeout=timeout) as norce:
        started = time.perf_counter()
        response = await norce.connect.import_sku_price_lists(
            header, price_rows(args.items, counter)
        )
        uploaded = time.perf_counter()
        job = await norce.connect.wait_for_job(
            response.job_id_int, poll_interval=0.2, max_interval=1.0, max_wait=600
        )
        finished = time.perf_counter()
        log = await norce.connect.get_job_log(job.job_id)
    async with httpx.AsyncClient() as plain:
        stats = orjson.loads((await plain.get(url + "/_sim/stats")).content)
    summary = response.validation_summary
    return {
        "items": counter.items,
        "payload_bytes": counter.bytes,
        "seconds": round(finished - started, 3),
        "upload_seconds": round(uploaded - started, 3),
        "job_seconds": round(finished - uploaded, 3),
        "items_per_second": round(counter.items / (finished - started)),
        "job_id": job.job_id,
        "job_status": job.status.name,
        "job_totals": job.totals,
        "validated": summary.nr_of_items_in_total if summary else None,
        "validation_failures": summary.nr_of_validation_failures if summary else None,
        "sim_price_items": stats.get("items", {}).get("price"),
        "log_lines": len(log),
        "client_rss_start_kib": client_rss_start,
        "client_peak_rss_kib": vm_hwm_kib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "sim_rss_start_kib": sim_rss_start,
        "sim_peak_rss_kib": vm_hwm_kib(proc.pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--sim-arg", action="append", default=[], help="extra simulator argument (repeatable)"
    )
    args = parser.parse_args()
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "norce_simulator", "--port", str(port), *args.sim_arg]
    # The simulator's log goes to a file: an unread pipe could fill up and stall it.
    with tempfile.TemporaryFile() as sim_log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=sim_log, stderr=subprocess.STDOUT)
        try:
            result = asyncio.run(run(args, proc, url))
        except BaseException:
            sim_log.seek(0)
            sys.stderr.write(sim_log.read()[-4000:].decode("utf-8", "replace"))
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    print(orjson.dumps(result).decode())
    if result["job_status"] != "SUCCEEDED" or result["sim_price_items"] != args.items:
        sys.exit(1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
