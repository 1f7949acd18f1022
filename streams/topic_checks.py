"""Checks of the configuration of topics the service relies on, at start (issue 23 item 5).

A state changelog that is not compacted loses the values of keys that have not changed
for ``retention.ms``: a rebuilt store, and every full import read from it, would then
miss them, and a full file deactivates what it misses. Such a topic is refused with a
message that names it and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.kafka import admin_client
from streams.settings import Settings


class TopicConfigError(RuntimeError):
    """An own topic exists with a configuration the service cannot work with."""


async def cleanup_policies(settings: Settings, names: Iterable[str]) -> dict[str, str]:
    """Topic -> its ``cleanup.policy`` as the broker reports it."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    admin = admin_client(settings)
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    policies: dict[str, str] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            for entry in resource["config_entries"]:
                if entry["config_names"] == "cleanup.policy":
                    policies[resource["resource_name"]] = entry["config_value"] or ""
    return policies


async def require_compacted(settings: Settings, names: Iterable[str]) -> None:
    """Raise ``TopicConfigError`` naming every topic whose cleanup.policy lacks compact."""
    policies = await cleanup_policies(settings, names)
    wrong = {name: policy for name, policy in policies.items() if "compact" not in policy}
    if wrong:
        listed = ", ".join(f"{name} (cleanup.policy={policy})" for name, policy in wrong.items())
        raise TopicConfigError(
            f"state changelog topics must be compacted, or keys unchanged for retention.ms "
            f"are lost (and a full import would deactivate them): {listed}. Set "
            f"cleanup.policy=compact on them (kafka-configs --alter --add-config "
            f"cleanup.policy=compact) and start again."
        )
