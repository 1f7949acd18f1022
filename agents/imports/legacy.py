"""TEMPORARY (issue 18): the installed import flow, for the modules of reconcile and ops
that still read the import flow's old module-level names at import. The root fills it
(``legacy.flow = flow``) before Faust's autodiscovery imports them; the lead deletes this
module when reconcile and ops take an ``ImportFlow`` in their own ``install``.

The names below resolve on use, not at import, so importing those modules (autodiscovery,
tests that scan every module) needs no installed flow."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.imports.wiring import ImportFlow

flow: ImportFlow | None = None
_pending: list[Callable[[ImportFlow], None]] = []


def current() -> ImportFlow:
    if flow is None:
        raise RuntimeError("the import flow is not installed (norce_sync.worker.build)")
    return flow


def fill(installed: ImportFlow) -> None:
    global flow
    flow = installed
    while _pending:
        _pending.pop(0)(installed)


def on_install(hook: Callable[[ImportFlow], None]) -> None:
    """Run ``hook`` with the flow now, or once it is installed."""
    if flow is None:
        _pending.append(hook)
    else:
        hook(flow)


class Attr:
    """A stand-in for one of the flow's values, forwarding every attribute to it."""

    def __init__(self, get: Callable[[ImportFlow], Any]) -> None:
        self._get = get

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(current()), name)


config: Any = Attr(lambda f: f.config)
clients: Any = Attr(lambda f: f.clients)
projector: Any = Attr(lambda f: f.projector)
reference_state: Any = Attr(lambda f: f.references)
commands: Any = Attr(lambda f: f.commands.topic)
jobs_table: Any = Attr(lambda f: f.jobs.table)
job_events: Any = Attr(lambda f: f.jobs.events)


def job_records() -> list[Any]:
    return current().jobs.records()


def open_jobs(source: str, kind: str) -> list[Any]:
    return current().jobs.open_jobs(source, kind)


async def request_full_import(
    source: str, kind: str, *, requested_by: str, force: bool = False
) -> str:
    return await current().full_imports.request(
        source, kind, requested_by=requested_by, force=force
    )
