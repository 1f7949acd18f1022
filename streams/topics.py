"""Names of the topics this service owns, derived from the app id so that two
deployments (or two tests) never share data."""

from __future__ import annotations

from streams.settings import Settings


def changes_topic(settings: Settings) -> str:
    """Mapped changes and pending-table commands, keyed by ``source|kind|key``."""
    return f"{settings.app_id}-changes"


def job_events_topic(settings: Settings) -> str:
    """Job lifecycle events (intent, posted, status, completed ...), keyed by batch id, or
    ``job:<JobId>`` for a ``JobCompletedEvent`` routed from the export path."""
    return f"{settings.app_id}-job-events"


def batches_topic(settings: Settings) -> str:
    """One record per submission intent: the keys and versions of a batch."""
    return f"{settings.app_id}-batches"


def commands_topic(settings: Settings) -> str:
    """Requests for the cluster (full imports), one partition: one worker runs them."""
    return f"{settings.app_id}-commands"


def norce_events_topic(settings: Settings) -> str:
    """Norce Event webhooks as received, keyed by entity id."""
    return f"{settings.app_id}-norce-events"


def target_topic(target: str, kind: str) -> str:
    """Enriched records for downstream systems."""
    return f"out.{target}.{kind}"
