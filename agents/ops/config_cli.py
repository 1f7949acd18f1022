"""``norce-sync config check [FILE] [--online]``: validate a config as the worker loads it
(every binding, mapping and hook; ``streams.cli`` points the app at FILE and prints a
config error as one line per problem, exit 78). ``--online`` also checks what only the
running system can tell: the input topics exist on the broker, and each source's
credentials (and the service's own) get a Norce token."""

from __future__ import annotations

import click
from aiokafka.errors import KafkaError
from faust.cli.base import cli

from agents.config.runtime import NorceClients
from agents.ops.commands import OpsCommand
from norce.errors import NorceError
from streams.kafka import admin_client
from streams.settings import Settings


@cli.group(name="config")
def config_group() -> None:
    """Check a sync config."""


async def _missing_topics(settings: Settings, topics: list[str]) -> list[str]:
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return [t for t in topics if t not in existing]


async def _token_problems(clients: NorceClients, sources: list[str | None]) -> list[str]:
    problems = []
    try:
        for source in sources:
            who = f"source {source}" if source else "the service's own credentials"
            try:
                await clients.for_source(source).tokens.get_token()
            except NorceError as error:
                problems.append(f"Norce: {who}: no token: {error}")
    finally:
        await clients.aclose()
    return problems


class config_check(OpsCommand):
    """Validate the sync config (FILE, default NORCE_SYNC_CONFIG_FILE) without a broker;
    --online also checks the input topics and each source's Norce credentials."""

    group = config_group
    command_name = "check"
    options = [
        click.option("--online", is_flag=True, help="Also ask the broker and Norce."),
        click.argument("file", required=False),
    ]

    async def run(self, online: bool, file: str | None) -> None:
        settings, config = self.settings, self.ops.config
        name = settings.config_file
        status = config.order_status_input
        summary = (
            f"{len(config.inputs) + (status is not None)} inputs, {len(config.sources)} "
            f"sources, {len(config.targets)} export targets"
        )
        for warning in config.deprecations:
            self.say(f"warning: {name}: {warning}")
        if not online:
            self.say(f"{name}: valid ({summary})")
            return
        problems = []
        topics = [b.topic for b in config.inputs] + ([status.topic] if status else [])
        try:
            missing = await _missing_topics(settings, topics)
        except KafkaError as error:
            problems.append(f"Kafka {settings.broker}: not reachable: {error}")
        else:
            if missing and not settings.create_input_topics:
                problems += [f"Kafka: input topic {t} does not exist" for t in missing]
        problems += await _token_problems(self.ops.imports.clients, [None, *config.sources])
        if problems:
            raise SystemExit(f"error: {name}: valid, but online:\n" + "\n".join(problems))
        self.say(f"{name}: valid ({summary}); topics and Norce credentials answer")
