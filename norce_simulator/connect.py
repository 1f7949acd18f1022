"""Connect: the import endpoints (streamed body, header and row validation) and Job/*."""

from __future__ import annotations

import tempfile
from typing import Any

import orjson
from aiohttp import web

from norce_simulator.header import HeaderError, parse_header
from norce_simulator.identity import check_auth
from norce_simulator.jobs import MAX_MESSAGES, STATUS_NAMES, Job, JobRunner, JobStatus
from norce_simulator.jsonarray import JsonArrayError, iter_json_batches
from norce_simulator.kinds import KINDS, ItemError, prepare
from norce_simulator.state import SimState

# Import path -> item kind.
IMPORTS = {
    "Product/ImportProducts": "product",
    "Product/ImportSkuPriceLists": "price",
    "Product/ImportOnhands": "stock",
    "Product/ImportPriceLists": "pricelist",
    "Customer/ImportCustomers": "customer",
    "Customer/ImportCompanies": "company",
    "Supplier/ImportProducts": "supplier",
}


def connect_error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"StatusCode": status, "Description": message}),
        content_type="application/json",
    )


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


class ConnectHandlers:
    def __init__(self, state: SimState, runner: JobRunner) -> None:
        self.state = state
        self.runner = runner

    def routes(self) -> list[web.RouteDef]:
        base = "/commerce/connect/4.0/"
        defs = [web.post(base + path, self._import_handler(kind)) for path, kind in IMPORTS.items()]
        # The vendor's reference lists the job service under "api/", public client code
        # calls it without: both forms answer.
        for prefix in ("", "api/"):
            defs += [
                web.get(base + prefix + "Job/Get", self.job_get),
                web.get(base + prefix + "Job/GetLog", self.job_log),
                web.get(base + prefix + "Job/List", self.job_list),
                web.get(base + prefix + "Job/Ping", self.ping),
            ]
        return defs

    def _import_handler(self, kind: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return await self.import_items(request, kind)

        return handler

    async def import_items(self, request: web.Request, kind: str) -> web.Response:
        if denied := check_auth(self.state, request, connect_error):
            return denied
        endpoint = request.path.removeprefix("/commerce/connect/4.0/")
        try:
            header = parse_header(request.headers.get("X-StormConnect-Header"))
        except HeaderError as exc:
            return connect_error(400, str(exc))
        if header.FullFile and not KINDS[kind].full_file:
            return connect_error(400, f"FullFile is not supported by {endpoint}.")

        # Accepted rows go to a spool file (Norce stores the import file too), so a body of
        # any size costs memory only for the element being parsed.
        # A 1 MiB buffer: one write system call per ~6,000 price rows, not per 48.
        spool = tempfile.TemporaryFile(  # noqa: SIM115
            dir=self.state.config.spool_dir, buffering=1 << 20
        )
        total = failed = 0
        failures: list[tuple[int, str]] = []
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        try:
            batches = iter_json_batches(request.content, self.state.config.max_item_bytes)
            async for batch in batches:  # the elements of one read of the body
                accepted = []
                for raw in batch:
                    index = total
                    total += 1
                    try:
                        row = prepare(kind, raw, index, header)
                    except ItemError as exc:
                        failed += 1
                        if len(failures) < MAX_MESSAGES:
                            failures.append((index, str(exc)))
                        continue
                    accepted.append(dumps(row, option=newline))
                spool.write(b"".join(accepted))
        except JsonArrayError as exc:
            spool.close()
            return connect_error(400, f"The body is not a valid JSON array: {exc}")
        except BaseException:
            spool.close()
            raise

        job_id = self.state.next_job_id()
        job = Job(
            id=job_id,
            kind=kind,
            endpoint=endpoint,
            header=header,
            storage_name=header.StorageName or f"{job_id}_{endpoint.replace('/', '_')}.json",
            spool=spool,
            totals=total,
            fail=failed,
            failures=failures,
        )
        self.runner.submit(job)
        messages = [m for _, m in failures]
        if failed > len(failures):
            messages.append(f"{failed - len(failures)} more rows failed validation.")
        return _json(
            {
                "StatusCode": 200,
                "Description": "Job queued.",
                "JobId": str(job_id),
                "ValidationSummary": {
                    "NrOfItemsInTotal": total,
                    "NrOfValidationFailures": failed,
                    "Messages": messages,
                },
            }
        )

    def _job(self, request: web.Request) -> Job | web.Response:
        if denied := check_auth(self.state, request, connect_error):
            return denied
        raw = request.query.get("id", "")
        try:
            job_id = int(raw)
        except ValueError:
            return connect_error(400, f"id must be a job id, got {raw!r}.")
        job = self.state.jobs.get(job_id)
        if job is None:
            return connect_error(404, f"Job {job_id} not found.")
        return job

    async def job_get(self, request: web.Request) -> web.Response:
        job = self._job(request)
        return job if isinstance(job, web.Response) else _json(job.to_api())

    async def job_log(self, request: web.Request) -> web.Response:
        job = self._job(request)
        return job if isinstance(job, web.Response) else _json(job.log)

    async def job_list(self, request: web.Request) -> web.Response:
        """Recent jobs, newest first. Filters (inferred): statusId, isFinished, top (100)."""
        if denied := check_auth(self.state, request, connect_error):
            return denied
        q = request.query
        try:
            top = int(q.get("top", "100"))
            status = JobStatus(int(q["statusId"])) if "statusId" in q else None
        except ValueError as exc:
            return connect_error(400, f"Bad filter: {exc}")
        finished = q.get("isFinished")
        jobs = sorted(self.state.jobs.values(), key=lambda j: j.id, reverse=True)
        if status is not None:
            jobs = [j for j in jobs if j.status == status]
        if finished is not None:
            want = finished.lower() == "true"
            jobs = [j for j in jobs if j.is_finished == want]
        return _json([j.to_api() for j in jobs[: max(0, top)]])

    async def ping(self, request: web.Request) -> web.Response:
        if denied := check_auth(self.state, request, connect_error):
            return denied
        return _json({"StatusCode": 200, "Description": "Pong"})


__all__ = ["IMPORTS", "STATUS_NAMES", "ConnectHandlers", "connect_error"]
