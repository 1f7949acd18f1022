"""`tools/demo.sh --check`: the README's demo story, verified without a person watching.

Runs after tools/demo.sh has started the broker, the simulator and a worker and written the
sample change data. Each step polls for its condition until a deadline, printing progress,
and the first unmet condition ends the check with exit status 1 and a line saying which:

1. Norce (the simulator) received a delta job for every (source, kind) the demo data feeds;
2. every delta job Norce received is listed by `norce-sync jobs` as `succeeded`;
3. the on-demand full import (`norce-sync full-import`) reaches `succeeded`, and every job
   Norce received, the full import too, is listed by `norce-sync jobs`, in its mode, as
   `succeeded`;
4. the worker's JSON views (/jobs/, /jobs/<id>, /pending/, /dlq/) report the same;
5. records arrive on every example target's topics (out.search.*, out.marketplace.*).

What Norce received is read from the simulator (``/_sim/jobs``), never from the worker, so
a job the worker posted but failed to track is caught.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from agents.config.sync_config import SyncConfig, load_config
from streams.settings import Settings
from tests.support.kafka import read_all
from tools.demo_data import TOPICS

ROOT_CMD = [sys.executable, "-m", "norce_sync"]
PROGRESS_EVERY_S = 10.0
FULL_IMPORT = ("erp", "price")  # the README's on-demand full import


class CheckFailed(Exception):
    """One condition of the demo was not met; the message says which and what was seen."""


def say(text: str) -> None:
    print(f"[demo-check] {text}", flush=True)


Probe = Callable[[], Awaitable[tuple[bool, str]]]


async def wait_for(condition: str, probe: Probe, timeout: float) -> str:
    """Poll ``probe`` (-> done, what it saw) until done; raise CheckFailed at the deadline.
    A probe that raises CheckFailed ends the wait at once (a final, wrong state)."""
    say(f"waiting (up to {timeout:.0f}s): {condition}")
    started = time.monotonic()
    last_report = started
    seen = "nothing yet"
    while True:
        try:
            done, seen = await probe()
        except CheckFailed:
            raise
        except Exception as error:  # a view or command not answering yet: keep polling
            done, seen = False, f"{type(error).__name__}: {error}"
        elapsed = time.monotonic() - started
        if done:
            say(f"ok after {elapsed:.0f}s: {condition}: {seen}")
            return seen
        if elapsed > timeout:
            raise CheckFailed(f"{condition}: not met within {timeout:.0f}s; last seen: {seen}")
        if time.monotonic() - last_report >= PROGRESS_EVERY_S:
            say(f"  {elapsed:.0f}s: {seen}")
            last_report = time.monotonic()
        await asyncio.sleep(1.0)


def fed_pairs(config: SyncConfig) -> set[tuple[str, str]]:
    return {config.binding_for_topic(topic).pair for topic in TOPICS}


def job_label(job: dict[str, Any], sources: dict[int, str]) -> str:
    mode = "full" if job["FullFile"] else "delta"
    return (
        f"{job['JobId']} ({sources.get(job['AccountId'], job['AccountId'])}/{job['Kind']} {mode})"
    )


class DemoCheck:
    def __init__(self, settings: Settings, sim_url: str, worker_url: str, timeout: float) -> None:
        self.settings = settings
        self.config = load_config(settings.config_file)
        self.sim_url = sim_url
        self.worker_url = worker_url
        self.timeout = timeout
        self.sources = {s.account_id: name for name, s in self.config.sources.items()}
        self.http = httpx.AsyncClient(timeout=30)

    async def norce_jobs(self) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.sim_url}/_sim/jobs")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    async def worker_json(self, path: str) -> Any:
        response = await self.http.get(f"{self.worker_url}{path}")
        response.raise_for_status()
        return response.json()

    async def run(self) -> None:
        await wait_for(
            "Norce receives a delta job for each pair the demo data feeds",
            self.deltas_posted,
            self.timeout,
        )
        # Before the full import, so an untracked delta job is named as such.
        await wait_for(
            "every delta job Norce received is in `norce-sync jobs` and reaches succeeded",
            lambda: self.cli_tracks_jobs(full=False),
            self.timeout,
        )
        full_job = await self.full_import()
        jobs = await wait_for(
            "every job Norce received is in `norce-sync jobs` and reaches succeeded",
            self.cli_tracks_jobs,
            self.timeout,
        )
        await wait_for(
            "the dashboard's JSON views (/jobs/, /jobs/<id>, /pending/, /dlq/) report those jobs",
            lambda: self.views_report(full_job),
            self.timeout,
        )
        await wait_for(
            "/items/ traces a price the full import carried, with what Norce holds",
            self.item_traced,
            self.timeout,
        )
        topics = await wait_for(
            "records arrive on every example target's topics", self.targets_written, self.timeout
        )
        say(f"PASSED: {jobs}; {topics}")

    async def deltas_posted(self) -> tuple[bool, str]:
        accounts = {name: s.account_id for name, s in self.config.sources.items()}
        posted = {(j["AccountId"], j["Kind"]) for j in await self.norce_jobs() if not j["FullFile"]}
        missing = sorted(p for p in fed_pairs(self.config) if (accounts[p[0]], p[1]) not in posted)
        if missing:
            return False, "no delta job yet for " + ", ".join(f"{s}/{k}" for s, k in missing)
        return True, f"{len(posted)} pair(s) posted"

    async def full_import(self) -> int:
        """Run the README's full import with the CLI; its exit status says whether it ended
        `succeeded`. Returns Norce's JobId of it."""
        source, kind = FULL_IMPORT
        condition = f"the on-demand full import ({source}/{kind}) reaches succeeded"
        say(
            f"running (up to {self.timeout:.0f}s): norce-sync full-import --source {source} "
            f"--kind {kind}"
        )
        command = [
            *ROOT_CMD,
            "full-import",
            "--source",
            source,
            "--kind",
            kind,
            "--timeout",
            str(self.timeout),
        ]
        done = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=self.timeout + 120
        )
        output = (done.stdout + done.stderr).replace("\r", "\n")
        for line in output.splitlines()[-8:]:
            say(f"  | {line}")
        found = re.search(r"job (\d+): succeeded", output)
        if done.returncode != 0 or not found:
            raise CheckFailed(f"{condition}: full-import exited {done.returncode}")
        say(f"ok: {condition}: job {found.group(1)}")
        return int(found.group(1))

    async def cli_jobs(self) -> list[dict[str, Any]]:
        """Every job `norce-sync jobs --json` lists, page by page."""
        jobs: list[dict[str, Any]] = []
        while True:
            command = [*ROOT_CMD, "jobs", "--json", "--limit", "1000", "--offset", str(len(jobs))]
            done = await asyncio.to_thread(
                subprocess.run, command, capture_output=True, text=True, timeout=180
            )
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"norce-sync jobs exited {done.returncode}: {last}")
            page = orjson.loads(done.stdout)
            jobs.extend(page["jobs"])
            if not page["jobs"] or len(jobs) >= page["total"]:
                return jobs

    def compare(
        self, norce: list[dict[str, Any]], tracked: list[dict[str, Any]], where: str
    ) -> tuple[bool, str]:
        """Every job Norce received is in ``tracked`` in its mode and succeeded, and nothing
        tracked is stuck short of succeeded. A final, other status fails at once."""
        by_id = {j["job_id"]: j for j in tracked if j["job_id"] is not None}
        untracked, unfinished = [], []
        for job in norce:
            label = job_label(job, self.sources)
            record = by_id.get(job["JobId"])
            if record is None:
                untracked.append(label)
                continue
            mode = "full" if job["FullFile"] else "delta"
            if record["mode"] != mode:
                raise CheckFailed(f"{where}: job {label} is listed as a {record['mode']} job")
            if record["status"] in ("failed", "validation_failed", "submit_failed", "lost"):
                raise CheckFailed(
                    f"{where}: job {label} ended {record['status']}: {record['errors'][:1]}"
                )
            if record["status"] != "succeeded":
                unfinished.append(f"{label} {record['status']}")
        unposted = [
            f"{j['batch_id']} {j['status']}"
            for j in tracked
            if j["job_id"] is None and j["status"] != "succeeded"
        ]
        problems = []
        if untracked:
            problems.append(
                f"{len(untracked)} of {len(norce)} Norce jobs missing: " + ", ".join(untracked)
            )
        if unfinished:
            problems.append("not succeeded yet: " + ", ".join(unfinished))
        if unposted:
            problems.append("without a Norce job: " + ", ".join(unposted))
        if problems:
            return False, "; ".join(problems)
        deltas = sum(not j["FullFile"] for j in norce)
        return True, f"{deltas} delta job(s) and {len(norce) - deltas} full import(s) succeeded"

    async def cli_tracks_jobs(self, *, full: bool = True) -> tuple[bool, str]:
        # Norce's list first: a job posted after the CLI's read is then seen next round.
        norce = [j for j in await self.norce_jobs() if full or not j["FullFile"]]
        tracked = [j for j in await self.cli_jobs() if full or j["mode"] == "delta"]
        return self.compare(norce, tracked, "norce-sync jobs")

    async def views_report(self, full_job: int) -> tuple[bool, str]:
        norce = await self.norce_jobs()
        listed = await self.worker_json("/jobs/?limit=1000")
        done, seen = self.compare(norce, listed["jobs"], "/jobs/")
        if not done:
            return False, f"/jobs/: {seen}"
        detail = await self.worker_json(f"/jobs/{full_job}")
        if (detail.get("mode"), detail.get("status")) != ("full", "succeeded"):
            return False, f"/jobs/{full_job}: {detail.get('mode')} {detail.get('status')}"
        await self.worker_json("/pending/")
        await self.worker_json("/dlq/")
        return True, f"/jobs/: {seen}"

    async def item_traced(self) -> tuple[bool, str]:
        trace = await self.worker_json("/items/erp/price/SKU-00001|STD|1")
        carried = [j for j in trace["jobs"] if j["mode"] == "full" and j["status"] == "succeeded"]
        if not carried or not trace["norce"].get("found"):
            return False, f"jobs {trace['jobs']}, Norce {trace['norce']}"
        return True, f"{trace['state_key']}: Norce {trace['norce']}"

    async def targets_written(self) -> tuple[bool, str]:
        servers = self.settings.broker.removeprefix("kafka://")
        prefix = self.settings.export_topic_prefix
        per_target: dict[str, int] = {}
        seen = []
        for target, kind, _ in self.config.target_mappings():
            topic = prefix + self.config.target_topic(target, kind)
            count = len(await read_all(servers, topic))
            per_target[target] = per_target.get(target, 0) + count
            seen.append(f"{topic}: {count}")
        empty = [target for target, count in per_target.items() if not count]
        if empty:
            return False, f"no records yet for target(s) {', '.join(empty)} ({', '.join(seen)})"
        return True, ", ".join(seen)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-url", required=True)
    parser.add_argument("--worker-url", required=True)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per condition")
    args = parser.parse_args(argv)
    check = DemoCheck(Settings(), args.sim_url, args.worker_url, args.timeout)
    try:
        await check.run()
    except CheckFailed as failure:
        say(f"FAILED: {failure}")
        return 1
    finally:
        await check.http.aclose()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C: tools/demo.sh says so and cleans up
