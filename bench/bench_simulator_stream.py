"""Stream a large ImportSkuPriceLists body into the simulator and measure it.

Starts the simulator in a subprocess, streams N price rows (default 100,000) from an
async generator through httpx (chunked transfer, never the whole body in memory),
waits for the job, and prints one JSON line: sizes, times and the peak RSS (VmHWM) of
the simulator and of this client.

    .venv/bin/python bench/bench_simulator_stream.py [--items 100000] [--history]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_kb(pid: int, field: str) -> int | None:
    """VmHWM (peak) or VmRSS of a process, in KiB, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def body(n: int, counter: list[int]) -> AsyncIterator[bytes]:
    buf = bytearray(b"[")
    for i in range(n):
        if i:
            buf += b","
        buf += orjson.dumps(
            {
                "PartNo": f"P{i:07d}",
                "PriceListCode": "STD",
                "QuantityBreak": 1,
                "PriceSale": i % 1000 + 0.95,
                "CostPurchase": 1.5,
                "CurrencyCode": "SEK",
                "IsActive": True,
            }
        )
        if len(buf) >= 64 * 1024:
            counter[0] += len(buf)
            yield bytes(buf)
            buf.clear()
    buf += b"]"
    counter[0] += len(buf)
    yield bytes(buf)


async def wait_ready(http: httpx.AsyncClient, url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited with {proc.returncode}")
        try:
            if (await http.get(url + "/_sim/stats")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("simulator did not start")


async def bench(
    proc: subprocess.Popen[bytes], url: str, items: int, history: bool
) -> dict[str, object]:
    async with httpx.AsyncClient(timeout=300.0) as http:
        await wait_ready(http, url, proc)
        rss_idle = proc_kb(proc.pid, "VmRSS")
        r = await http.post(
            url + "/identity/1.0/connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": os.environ.get("NORCE_SIM_CLIENT_ID", "norce-sync-demo"),
                "client_secret": os.environ.get("NORCE_SIM_CLIENT_SECRET", "demo-secret"),
                "scope": "stage",
            },
        )
        r.raise_for_status()
        headers = {
            "Authorization": f"Bearer {r.json()['access_token']}",
            "application-id": os.environ.get("NORCE_SIM_APPLICATION_ID", "demo-app"),
            "X-StormConnect-Header": '{"AccountId":1,"SkuPriceListFieldsThatAreSet":[3,4]}',
        }
        sent = [0]
        t0 = time.perf_counter()
        r = await http.post(
            url + "/commerce/connect/4.0/Product/ImportSkuPriceLists",
            content=body(items, sent),
            headers=headers,
        )
        r.raise_for_status()
        t_upload = time.perf_counter() - t0
        rss_after_upload = proc_kb(proc.pid, "VmHWM")
        job_id = r.json()["JobId"]
        while True:
            job = (
                await http.get(
                    url + "/commerce/connect/4.0/Job/Get",
                    params={"id": job_id},
                    headers=headers,
                )
            ).json()
            if job["IsFinished"]:
                break
            await asyncio.sleep(0.05)
        t_total = time.perf_counter() - t0
        return {
            "bench": "simulator_stream",
            "items": items,
            "body_bytes": sent[0],
            "history": history,
            "job_status": job["StatusId"],
            "inserts": job["Inserts"],
            "upload_s": round(t_upload, 3),
            "job_s": round(t_total - t_upload, 3),
            "total_s": round(t_total, 3),
            "items_per_s": round(items / t_total),
            "sim_rss_idle_kb": rss_idle,
            "sim_peak_rss_after_upload_kb": rss_after_upload,
            "sim_peak_rss_kb": proc_kb(proc.pid, "VmHWM"),
            "client_peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--history", action="store_true", help="keep per-item write history")
    args = p.parse_args()
    port = free_port()
    cmd = [sys.executable, "-m", "norce_simulator", "--port", str(port), "--lead-time", "0"]
    cmd += ["--no-token-rate-limit"] + ([] if args.history else ["--no-history"])
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        result = asyncio.run(bench(proc, f"http://127.0.0.1:{port}", args.items, args.history))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
