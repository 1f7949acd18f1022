"""Writer schemas by id from a Confluent-compatible schema registry, fetched and cached.

Avro inputs (``schema_registry`` on a binding) carry a schema id in every message; the
decoder is sync and runs in the projector's batch fold, so the projector calls
``resolve(ids)`` for a batch's ids *before* folding it (``agents.imports.projector``),
and the decoder only reads the cache (``schema``). One ``SchemaRegistry`` per registry
config (``registry_for``), shared by every binding that names it.

What an id can come to:

- found (200): parsed once (``agents.imports.avro.parse``) and kept for the process'
  life: a registry never changes the schema behind an id;
- not found (404, or a schema the decoder cannot use): remembered with the reason for
  ``MISSING_TTL_S``, so each such record goes to the dead-letter topic with that reason
  and the stream goes on, without a request per record;
- the registry does not answer (connection error, timeout, 5xx, 401/403, 429): not the
  record's fault, so nothing is dead-lettered. ``resolve`` waits and retries with a
  backoff (0.5 s doubling to ``NORCE_SYNC_SCHEMA_REGISTRY_RETRY_MAX_S``, 30 s) until it
  answers: the input waits, offsets stay
  uncommitted, nothing is lost. One warning when the outage starts, one line when it
  ends (no line per retry).

The basic-auth password is read when the client is built and only ever sent in the
``Authorization`` header; the URL holds no credentials (the config refuses them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import httpx
import orjson

from agents.imports.avro import AvroSchema, parse
from streams.outage import Dependency, Stopping, register, wait_out

if TYPE_CHECKING:
    from agents.config.sync_config import SchemaRegistryConfig

__all__ = ["MISSING_TTL_S", "RegistryUnavailable", "SchemaRegistry", "registry_for"]

log = logging.getLogger(__name__)

# An id the registry did not know is asked again after this long (a restored registry).
MISSING_TTL_S = 60.0
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
# Confluent's content type; Apicurio and Karapace accept it too.
_ACCEPT = "application/vnd.schemaregistry.v1+json, application/json"


class RegistryUnavailable(Exception):
    """The registry did not answer usefully (network, 5xx, auth): retry, never dead-letter."""


class SchemaRegistry:
    def __init__(
        self, config: SchemaRegistryConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.name = config.base_url  # no credentials in it (validated)
        self.schemas: dict[int, AvroSchema] = {}
        self._missing: dict[int, tuple[str, float]] = {}
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        # The outage rule and its two log lines are shared with Norce (streams.outage).
        self.dependency = register(
            Dependency(
                f"schema registry {self.name}",
                waiting="its Avro inputs wait and retry (nothing is dead-lettered for it)",
                logger=log,
            )
        )
        self.fetched = 0  # schemas fetched (tests and the bench read it)

    # --- the cache (sync: the decoder's side) --------------------------------------------

    def add(self, schema_id: int, text: str, schema_type: str = "AVRO") -> AvroSchema | None:
        """Parse and keep the schema of ``schema_id``; an unusable one is remembered as
        missing with the reason (and None returned)."""
        try:
            if schema_type != "AVRO":
                raise ValueError(f"is a {schema_type} schema, not Avro")
            schema = parse(orjson.loads(text))
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            self._missing[schema_id] = (f"schema id {schema_id} {exc}", time.monotonic())
            return None
        self.schemas[schema_id] = schema
        self._missing.pop(schema_id, None)
        return schema

    def missing_reason(self, schema_id: int) -> str:
        entry = self._missing.get(schema_id)
        if entry is not None:
            return entry[0]
        return f"schema id {schema_id} was not fetched from the schema registry {self.name}"

    def unknown(self, ids: Iterable[int]) -> set[int]:
        """The ids neither cached nor recently found missing."""
        now = time.monotonic()
        out = set()
        for schema_id in ids:
            if schema_id in self.schemas:
                continue
            entry = self._missing.get(schema_id)
            if entry is None or now - entry[1] > MISSING_TTL_S:
                out.add(schema_id)
        return out

    # --- fetching (async: the projector's side, before a batch is folded) -----------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            password = self.config.resolve_password()
            auth = (self.config.username, password) if self.config.username else None
            self._client = httpx.AsyncClient(
                base_url=self.config.base_url,
                auth=auth,  # type: ignore[arg-type]
                timeout=self.config.timeout_s,
                headers={"Accept": _ACCEPT},
                transport=self._transport,
            )
        return self._client

    async def _fetch_one(self, schema_id: int) -> None:
        try:
            response = await self._http().get(f"/schemas/ids/{schema_id}")
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code == 404:
            self._missing[schema_id] = (
                f"schema id {schema_id} is not in the schema registry {self.name} (404)",
                time.monotonic(),
            )
            return
        if response.status_code != 200:
            raise RegistryUnavailable(f"HTTP {response.status_code} for schema id {schema_id}")
        try:
            body = response.json()
            text, schema_type = body["schema"], body.get("schemaType") or "AVRO"
        except (ValueError, KeyError, TypeError):
            raise RegistryUnavailable(f"unreadable answer for schema id {schema_id}") from None
        self.fetched += 1
        self.add(schema_id, text, schema_type)

    async def fetch(self, ids: Iterable[int]) -> None:
        """Fetch ``ids`` concurrently; raises ``RegistryUnavailable`` if any fetch could not
        get an answer (the others are cached all the same)."""
        results = await asyncio.gather(
            *(self._fetch_one(i) for i in sorted(ids)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def resolve(
        self, ids: Iterable[int], stopping: Callable[[], bool], max_delay: float = BACKOFF_MAX_S
    ) -> bool:
        """Make every id in ``ids`` cached or known missing, waiting out an outage (tries
        ``BACKOFF_MIN_S`` apart, doubling up to ``max_delay``). False only when
        ``stopping()`` turned true before that (the caller must not fold)."""
        wanted = set(ids)
        while True:
            todo = self.unknown(wanted)
            if not todo:
                self.dependency.answered()
                return True
            try:
                await wait_out(
                    lambda todo=todo: self.fetch(todo),  # type: ignore[misc]
                    self.dependency,
                    is_outage=lambda error: isinstance(error, RegistryUnavailable),
                    stopping=stopping,
                    min_delay=BACKOFF_MIN_S,
                    max_delay=max_delay,
                )
            except Stopping:
                return False

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


_REGISTRIES: dict[SchemaRegistryConfig, SchemaRegistry] = {}


def registry_for(config: SchemaRegistryConfig) -> SchemaRegistry:
    """The process' client and cache for ``config`` (configs are frozen, so hashable)."""
    registry = _REGISTRIES.get(config)
    if registry is None:
        registry = _REGISTRIES[config] = SchemaRegistry(config)
    return registry


async def close_all() -> None:
    for registry in list(_REGISTRIES.values()):
        await registry.aclose()
