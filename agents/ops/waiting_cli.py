"""``norce-sync waiting``: rows held back because what they refer to is not in Norce.

The reasons live in the workers' memory (``agents.imports.references``) and reach every
worker through the ops backlog reports, so this asks one worker's ``/pending/`` view."""

from __future__ import annotations

from typing import Any

import click
import httpx

from agents.ops.commands import OpsCommand, _json_option, _table


class waiting(OpsCommand):
    """Rows waiting for a SKU or price list to exist in Norce, per source and kind, with
    examples, as a worker's /pending/ view reports them.

    Example: norce-sync waiting --worker http://127.0.0.1:6066
    """

    options = [
        click.option(
            "--worker",
            "worker_url",
            default=None,
            help="The worker's web address (default: this host's NORCE_SYNC_WEB_PORT).",
        ),
        _json_option,
    ]

    async def run(self, worker_url: str | None, as_json: bool) -> None:
        settings = self.settings
        url = (worker_url or f"http://127.0.0.1:{settings.web_port}").rstrip("/")
        headers = {}
        if settings.ops_token is not None:
            headers["Authorization"] = f"Bearer {settings.ops_token.get_secret_value()}"
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(f"{url}/pending/", headers=headers)
        response.raise_for_status()
        waiting: dict[str, Any] = response.json().get("waiting_for_references", {})
        if as_json or self.json:
            self.emit(waiting)
            return
        rows = []
        for pair, report in waiting.items():
            source, kind = pair.split("|", 1)
            for n, example in enumerate(report["examples"] or [{"key": "", "reason": ""}]):
                count = report["count"] if n == 0 else ""
                rows.append([source, kind, count, example["key"], example["reason"]])
        self.say(_table(rows, ["source", "kind", "rows", "example key", "reason"]))
        self.say(f"{sum(r['count'] for r in waiting.values())} row(s) waiting for references")
