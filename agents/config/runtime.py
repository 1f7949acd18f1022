"""Per-process resources built from the settings: the sync config and one Norce client
per source system (each source imports with its own account and credentials)."""

from __future__ import annotations

import functools

from agents.config.sync_config import SyncConfig, load_config
from norce.client import NorceClient
from norce.config import NorceCredentials, NorceEndpoints
from streams.settings import Settings


@functools.cache
def _load(path: str, hook_anywhere: bool) -> SyncConfig:
    return load_config(path, hook_anywhere=hook_anywhere)


def sync_config(settings: Settings) -> SyncConfig:
    return _load(str(settings.config_file), settings.hook_files_anywhere)


def norce_endpoints(settings: Settings) -> NorceEndpoints:
    if settings.norce_base_url:
        endpoints = NorceEndpoints.from_base_url(settings.norce_base_url)
    else:
        endpoints = NorceEndpoints.for_tenant(
            settings.norce_slug, settings.norce_region, settings.norce_environment
        )
    return endpoints.model_copy(update={"job_path_prefix": settings.norce_job_path_prefix})


class NorceClients:
    """Lazily created clients: the service's own and one per source system. The sync
    config is passed in (the composition root loads it once)."""

    def __init__(self, settings: Settings, config: SyncConfig) -> None:
        self.settings = settings
        self.config = config
        self._clients: dict[str, NorceClient] = {}

    def _credentials(self, source: str | None) -> NorceCredentials:
        s = self.settings
        if source is None:
            return NorceCredentials(
                client_id=s.norce_client_id,
                client_secret=s.norce_client_secret,
                application_id=s.norce_application_id,
                scope=s.norce_environment,
            )
        src = self.config.sources[source]
        return NorceCredentials(
            client_id=src.credentials.client_id,
            client_secret=src.credentials.resolve_secret(),  # type: ignore[arg-type]
            application_id=src.application_id or s.norce_application_id,
            scope=s.norce_environment,
        )

    def for_source(self, source: str | None) -> NorceClient:
        key = source or ""
        if key not in self._clients:
            self._clients[key] = NorceClient(
                self._credentials(source), norce_endpoints(self.settings)
            )
        return self._clients[key]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
