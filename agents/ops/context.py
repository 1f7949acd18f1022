"""What the ops surface reads: the settings, the sync config and every flow the root
built. The views get it from :func:`agents.ops.wiring.install`; the commands from their
app (:func:`of`), since Faust hands a command the app it runs, not its arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from agents.config.sync_config import SyncConfig
from agents.export.wiring import ExportFlow
from agents.imports.wiring import ImportFlow
from agents.orders.wiring import OrdersFlow
from agents.reconcile.wiring import ReconcileFlow
from streams.settings import Settings


@dataclass(frozen=True)
class OpsContext:
    settings: Settings
    config: SyncConfig
    imports: ImportFlow
    export: ExportFlow
    orders: OrdersFlow
    reconcile: ReconcileFlow


def attach(app: Any, context: OpsContext) -> None:
    app.ops_context = context


def of(app: Any) -> OpsContext:
    """The context the root attached to ``app`` (every command runs on a built app)."""
    return cast(OpsContext, app.ops_context)
