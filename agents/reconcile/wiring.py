"""The reconcile flow on the app: the results topic and its mirror, the schedule timer,
the command reader's ``reconcile`` handler, and the ``/reconcile/`` pages."""

from __future__ import annotations

from dataclasses import dataclass

from faust.web import Request, Response, View

from agents.config.sync_config import SyncConfig
from agents.imports.wiring import ImportFlow
from agents.reconcile.service import Reconciler
from streams.app import ServiceApp
from streams.settings import Settings


@dataclass(frozen=True)
class ReconcileFlow:
    reconciler: Reconciler


def install(
    app: ServiceApp, settings: Settings, config: SyncConfig, imports: ImportFlow
) -> ReconcileFlow:
    reconciler = Reconciler(app, settings, config, imports)
    results_topic = app.topic(
        reconciler.results_topic_name,
        internal=True,
        partitions=1,
        compacting=True,  # not deleting: the last result of a pair stays however old
        key_serializer="raw",
        value_serializer="raw",
    )
    app.register_topics(results_topic)  # created and confirmed at start
    app.task(reconciler.follow_results)
    app.timer(10.0, on_leader=True, name="reconcile.schedules")(reconciler.schedules)
    # One topic, one owner: a reconcile and a full import never overlap.
    imports.commands.register("reconcile", reconciler.run_command)
    _register_pages(app, reconciler, config)
    return ReconcileFlow(reconciler=reconciler)


def _register_pages(app: ServiceApp, reconciler: Reconciler, config: SyncConfig) -> None:
    @app.page("/reconcile/")
    class ReconcileResults(View):
        async def get(self, request: Request) -> Response:
            return self.json(reconciler.view())

    @app.page("/reconcile/{source}/{kind}")
    class ReconcileTrigger(View):
        async def post(self, request: Request, source: str, kind: str) -> Response:
            """Queue a reconcile of the pair now (``?repair=true`` to queue its drift for
            the next delta); 202 with the request id, whose result ``GET /reconcile/``
            shows."""
            try:
                config.binding_for(source, kind)
            except KeyError as error:
                return self.json({"error": str(error.args[0])}, status=404)
            repair = request.query.get("repair", "").lower() in ("1", "true", "yes")
            request_id = await reconciler.request(source, kind, by="http", repair=repair)
            return self.json({"request_id": request_id, "repair": repair}, status=202)
