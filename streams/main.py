"""The service's Faust app: ``norce-sync worker`` runs it.

Agents, timers, views and commands live in :mod:`agents` and attach themselves to this
app (Faust's autodiscovery imports them when the command line starts).
"""

from __future__ import annotations

from streams.app import create_app
from streams.health import install_health_views
from streams.settings import Settings

settings = Settings()
app = create_app(settings, autodiscover=["agents"])
install_health_views(app)
