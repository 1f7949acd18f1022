"""Names of the topics this service owns, derived from the app id so that two
deployments (or two tests) never share data."""

from __future__ import annotations

from streams.settings import Settings


def state_topic(settings: Settings, input_topic: str) -> str:
    """The projection's compacted changelog for one input topic: one value per state key
    ``source|kind|key``, partitioned like the input topic."""
    return f"{settings.app_id}-state.{input_topic}"


def import_commands_topic(settings: Settings, input_topic: str) -> str:
    """Commands to the owner of an input partition (``requeue``), keyed by state key and
    partitioned like the input topic."""
    return f"{settings.app_id}-import-commands.{input_topic}"


def projection_group(settings: Settings) -> str:
    """The import projection's consumer group (it reads the input topics)."""
    return f"{settings.app_id}-projection"


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


def commands_group(settings: Settings) -> str:
    """The commands topic's reader (``agents.imports.command_reader``); the same name as
    the topic, in the groups' namespace."""
    return commands_topic(settings)


def reconcile_topic(settings: Settings) -> str:
    """Reconcile progress and the last result per (source, kind), one partition."""
    return f"{settings.app_id}-reconcile"


def norce_events_topic(settings: Settings) -> str:
    """Norce Event webhooks as received, keyed by entity id."""
    return f"{settings.app_id}-norce-events"


def target_topic(target: str, kind: str) -> str:
    """Enriched records for downstream systems."""
    return f"out.{target}.{kind}"


def orders_received_topic(settings: Settings) -> str:
    """Every order call the receiver accepted, as received (original bytes), keyed by
    ClientOrderRef: the receivers' ledger of refs. A retry racing on two workers can
    land twice here; the fan-out keeps one."""
    return f"{settings.app_id}-orders-received"


def orders_topic(settings: Settings) -> str:
    """Each order exactly once by ClientOrderRef, as received: what the ERP reads and
    what a replay starts from. Partitioned like the received topic."""
    return f"{settings.app_id}-orders"


def order_status_sent_topic(settings: Settings) -> str:
    """The last order status version sent to Norce per order (compacted): never send an
    older status after a newer one, across restarts."""
    return f"{settings.app_id}-order-status-sent"
