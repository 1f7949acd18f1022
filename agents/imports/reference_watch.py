"""Releasing rows that wait for a reference: the delta of their pair runs as soon as a
reference they wait for exists, found in one of two ways:

- a job that creates references succeeded (``product`` creates SKUs, ``pricelist``
  price lists; any source's job, seen in this worker's mirror of the jobs ledger): the
  negative answers of that reference kind are dropped and the waiting references looked
  up again;
- every ``reference_recheck_s``, the missing references of every pair with waiting rows
  are looked up again (an entity created outside this service, e.g. in Norce's admin).

Only when a lookup finds one of them does the pair's delta run off-schedule; otherwise
the rows keep waiting for the pair's next scheduled delta, which checks them as well.
"""

from __future__ import annotations

import logging

from agents.imports import reference_state
from agents.imports.delta import run_delta_now
from agents.imports.pipeline import config
from agents.imports.references import CREATED_BY, Reference
from agents.imports.submit import job_records
from norce.errors import NorceError
from streams import metrics
from streams.main import app, settings
from streams.readiness import is_ready

log = logging.getLogger(__name__)

_seen: set[str] | None = None  # batch ids of creating jobs already seen succeeded


@app.timer(settings.delta_tick_s)
async def release_on_created() -> None:
    """A product or price list job succeeded: release what waits for its kind."""
    global _seen
    if not is_ready(app):
        return
    done = {
        r.batch_id: CREATED_BY[r.kind]
        for r in job_records()
        if r.kind in CREATED_BY and r.status == "succeeded"
    }
    if _seen is None:  # jobs finished before start-up: the first delta checks anyway
        _seen = set(done)
        return
    created = {ref for batch_id, ref in done.items() if batch_id not in _seen}
    _seen = set(done)
    for ref in created:
        reference_state.cache.forget_missing(ref)
        for pair in reference_state.waiting.waiting_on(ref):
            await _release(pair, only=ref, why="a job that creates them succeeded")


@app.timer(settings.reference_recheck_s)
async def recheck_waiting() -> None:
    if not is_ready(app):
        return
    for pair in list(reference_state.waiting.pairs):
        await _release(pair, only=None, why="re-check")


async def _release(pair: tuple[str, str], *, only: Reference | None, why: str) -> None:
    report = reference_state.waiting.pairs.get(pair)
    if report is None:
        return
    refs = [r for r in report.missing if only is None or r[0] == only]
    session = reference_state.lookups(pair[0], fresh=True)
    try:
        await session.resolve(refs)
    except NorceError as error:
        metrics.norce_calls.inc(api="query", outcome="error")
        log.warning("references of %s|%s not re-checked: %s", *pair, error)
        return
    metrics.norce_calls.inc(session.query_calls, api="query", outcome="ok")
    found = sum(1 for r in refs if session.known.get(r))
    if found:
        log.info("%s|%s: %d reference(s) now in Norce (%s): running its delta", *pair, found, why)
        run_delta_now(config.binding_for(*pair))
