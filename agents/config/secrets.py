"""The secrets a sync config names (each source's client secret, each schema registry
password): the log scrubber hides them and the start-up check refuses demo values.
:mod:`streams` knows only the settings' secrets; these are handed to it."""

from __future__ import annotations

from agents.config.runtime import sync_config
from streams.secrets_check import DEMO_SECRETS
from streams.settings import Settings


def config_secret_values(settings: Settings) -> list[str]:
    """Every secret the sync config resolves; none when it cannot be read (a secret that
    is not set cannot leak)."""
    values: list[str] = []
    try:
        config = sync_config(settings)
    except Exception:  # no readable sync config: the settings' secrets only
        return values
    for source in config.sources.values():
        try:
            values.append(source.credentials.resolve_secret())
        except Exception:
            continue
    for binding in config.inputs:  # schema registry basic-auth passwords
        try:
            if binding.schema_registry is not None:
                values.append(binding.schema_registry.resolve_password() or "")
        except Exception:
            continue
    return values


def source_secret_problems(settings: Settings) -> list[str]:
    """One line per source whose client secret is empty or a demo value, naming where it
    is set (never the value)."""
    problems = []
    for source_name, source in sync_config(settings).sources.items():
        credentials = source.credentials
        where = (
            credentials.client_secret_env
            if credentials.client_secret_env is not None
            else f"secret file {credentials.client_secret_file}"
        )
        try:
            value = credentials.resolve_secret()
        except Exception:  # not set, unreadable or empty
            problems.append(f"{where} (client secret of source {source_name}) is empty")
            continue
        if value in DEMO_SECRETS:
            problems.append(f"{where} (client secret of source {source_name}) holds a demo value")
    return problems
