"""Where Norce lives and who we are to it.

Norce gives every tenant its own host, ``https://{slug}.api-{region}.norce.tech``, with
``.stage`` / ``.playground`` inserted before ``.norce.tech`` for the non-production
environments. Tests and the demo point everything at the simulator instead, through an
explicit ``base_url``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

IDENTITY_PATH = "/identity/1.0/connect/token"
CONNECT_PATH = "/commerce/connect/4.0/"
QUERY_PATH = "/commerce/query/2.0/"


class Environment(StrEnum):
    PROD = "prod"
    STAGE = "stage"
    PLAYGROUND = "playground"


class NorceEndpoints(BaseModel):
    """The three base URLs, from the tenant's host pattern or an explicit override."""

    model_config = ConfigDict(frozen=True)

    slug: str | None = None
    region: str | None = None
    environment: Environment = Environment.PROD
    base_url: str | None = None
    # Job/* under Connect: "" (public client code) or "api/" (the vendor's reference).
    job_path_prefix: Literal["", "api/"] = ""

    @field_validator("base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _need_tenant_or_override(self) -> NorceEndpoints:
        if self.base_url is None and not (self.slug and self.region):
            raise ValueError("give either base_url or both slug and region")
        return self

    @classmethod
    def for_tenant(
        cls, slug: str, region: str, environment: Environment | str = Environment.PROD
    ) -> NorceEndpoints:
        return cls(slug=slug, region=region, environment=environment)  # type: ignore[arg-type]

    @classmethod
    def from_base_url(cls, base_url: str) -> NorceEndpoints:
        return cls(base_url=base_url)

    @property
    def root(self) -> str:
        """Scheme and host (no trailing slash) every path hangs off."""
        if self.base_url is not None:
            return self.base_url
        env = "" if self.environment is Environment.PROD else f".{self.environment.value}"
        return f"https://{self.slug}.api-{self.region}{env}.norce.tech"

    @property
    def identity_url(self) -> str:
        return self.root + IDENTITY_PATH

    @property
    def connect_url(self) -> str:
        return self.root + CONNECT_PATH

    @property
    def query_url(self) -> str:
        return self.root + QUERY_PATH


class NorceCredentials(BaseModel):
    """OAuth2 client credentials plus the application id every API call must carry.

    ``client_secret`` is a ``SecretStr``: repr, str and model dumps show ``**********``;
    only the token request reads the real value.
    """

    model_config = ConfigDict(frozen=True)

    client_id: str
    client_secret: SecretStr
    application_id: str
    scope: str = Environment.PROD.value

    @field_validator("application_id", mode="before")
    @classmethod
    def _application_id_as_text(cls, value: object) -> object:
        # Norce application ids are numbers; the header wants text either way.
        return str(value) if isinstance(value, int) else value
