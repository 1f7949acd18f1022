"""``norce-sync item --source erp --kind price <key>``: one item from its source change to
Norce, asked of a running worker's ``/items/`` view (any worker of the group answers;
the command needs no Norce credentials, only the ops token when one is set).
``--export --kind sku <id>``: one export entity instead (``/items/export/...``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
import httpx
import orjson

from agents.ops.commands import OpsCommand
from agents.ops.export_cli import print_export


def _line(label: str, text: str) -> None:
    click.echo(f"{label:<15}{text}")


def _version(version: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in version.items() if k != "source_time")


def _print(trace: dict[str, Any]) -> None:
    state = trace["state"]
    _line("item", f"{trace['state_key']}  (partition {trace['partition']} of "
                  f"{trace['input_topic']}, held by {trace['worker']})")  # fmt: skip
    version = state["version"]
    _line("version", f"{_version(version)} (source time {version.get('source_time', '-')})")
    _line("row", orjson.dumps(state["row"]).decode() + ("  (deleted)" if state["deleted"] else ""))
    sent = "yes" if state["row_sent"] else "no (not since its last change)"
    _line("sent to Norce", sent)
    pending = trace["pending"]
    _line("pending", "no" if pending is None else pending["reason"])
    for entry in trace["jobs"]:
        lead = f", lead time {entry['lead_time_s']:.1f} s" if entry.get("lead_time_s") else ""
        what = entry.get("carried") or f"sent {_version(entry.get('version_sent') or {})}"
        _line("job", f"{entry['job_id'] or '-'} ({entry['mode']}, batch {entry['batch_id']}): "
                     f"{entry['status']}{lead}; {what}")  # fmt: skip
        for line in entry.get("log", []):
            _line("", f"log: {line}")
    for letter in trace["dead_letters"]:
        _line("dead letter", f"{letter['stage']}: {letter['reason']} (dlq offset "
                             f"{letter['dlq_offset']})")  # fmt: skip
    norce = trace["norce"]
    if "error" in norce or ("not_compared" in norce and "found" not in norce):
        _line("in Norce", norce.get("error") or norce["not_compared"])
    elif not norce["found"]:
        _line("in Norce", "not found")
    elif norce["matching"]:
        _line("in Norce", "matching")
    else:
        diff = "; ".join(f"{n}: expected {d['expected']!r}, Norce {d['norce']!r}"
                         for n, d in norce["different"].items())  # fmt: skip
        _line("in Norce", f"different: {diff}")


class item(OpsCommand):
    """One item from its source change to Norce: state, pending reason, jobs, dead letters,
    and what Norce holds now (asks a running worker).

    Example: norce-sync item --source erp --kind price 'P-1|STD|1'

    The export side (last events, last record per target, unchanged or not):
    norce-sync item --export --kind sku P-1
    """

    options = [
        click.option("--source", default=None, help="Source system, e.g. erp."),
        click.option(
            "--export", "export", is_flag=True,
            help="Trace an export entity (kind sku, customer or company; id as the webhook's).",
        ),
        click.option("--kind", required=True, help="Entity kind, e.g. price."),
        click.option(
            "--worker", default=None,
            help="A worker's web address (default http://127.0.0.1:<NORCE_SYNC_WEB_PORT>).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        click.argument("key"),
    ]  # fmt: skip

    async def run(
        self,
        source: str | None,
        export: bool,
        kind: str,
        worker: str | None,
        as_json: bool,
        key: str,
    ) -> None:
        if export == (source is not None):
            raise SystemExit("error: give one of --source (an import item) or --export")
        settings = self.settings
        base = (worker or f"http://127.0.0.1:{settings.web_port}").rstrip("/")
        headers = {}
        if settings.ops_token is not None:
            headers["Authorization"] = f"Bearer {settings.ops_token.get_secret_value()}"
        path = "export" if export else quote(source or "", safe="")
        url = f"{base}/items/{path}/{quote(kind, safe='')}/{quote(key, safe='|')}"
        try:
            async with httpx.AsyncClient(timeout=60) as http:
                answer = await http.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise SystemExit(f"error: no worker answered at {base}: {error}") from None
        if answer.status_code != 200:
            try:
                detail = answer.json().get("error", answer.text)
            except ValueError:
                detail = answer.text
            raise SystemExit(f"error: {answer.status_code}: {detail}")
        if as_json or self.json:
            self.emit(answer.json())
        elif export:
            print_export(answer.json())
        else:
            _print(answer.json())
