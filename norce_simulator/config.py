"""Settings of the Norce simulator (one pydantic model, sensible demo defaults)."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

# Norce's published webhook retry schedule in seconds (16 retries over about 22 h).
NORCE_RETRY_SCHEDULE: tuple[float, ...] = (
    5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 18000, 21600,
)  # fmt: skip


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


class SimulatorConfig(BaseModel):
    """Everything the simulator can be told at start-up.

    ``port=0`` binds a free port (tests); the command line defaults to 8300.
    Credentials default to the demo's and can be overridden by the environment
    (``NORCE_SIM_CLIENT_ID``, ``NORCE_SIM_CLIENT_SECRET``, ``NORCE_SIM_APPLICATION_ID``).
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    slug: str = "demo"

    # Identity
    client_id: str = Field(default_factory=lambda: _env("NORCE_SIM_CLIENT_ID", "norce-sync-demo"))
    client_secret: str = Field(
        default_factory=lambda: _env("NORCE_SIM_CLIENT_SECRET", "demo-secret")
    )
    application_id: str = Field(
        default_factory=lambda: _env("NORCE_SIM_APPLICATION_ID", "demo-app")
    )
    # More system accounts (client id -> secret): one per source system, as Norce advises.
    # The defaults match the example config's ERP and PIM and the demo's environment.
    extra_clients: dict[str, str] = Field(
        default_factory=lambda: {
            "norce-sync-erp": _env("NORCE_SYNC_ERP_CLIENT_SECRET", "erp-demo-secret"),
            "norce-sync-pim": _env("NORCE_SYNC_PIM_CLIENT_SECRET", "pim-demo-secret"),
        }
    )
    token_lifetime_s: float = Field(default=3600.0, gt=0)
    token_rate_limit: bool = True
    token_rate_per_minute: float = Field(default=3.0, gt=0)
    token_burst: int = Field(default=20, ge=1)

    # Connect jobs
    workers: int = Field(default=2, ge=1)
    lead_time_s: float = Field(default=1.0, ge=0)
    max_item_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    record_history: bool = True
    spool_dir: str | None = None  # where accepted import files are kept until the job ran
    # Price lists a fresh (or reset) tenant has: Norce ignores a price whose list does not
    # exist, and a real tenant is set up with its lists. "STD" is the demo's and the tests'.
    price_lists: tuple[str, ...] = ("STD",)

    # Query
    page_size: int = Field(default=500, ge=1)
    query_rate_limit_per_s: float | None = Field(default=None, gt=0)

    # Event
    event_client_id: int = 1  # ClientId in webhook bodies
    event_application_id: int = 2  # ApplicationId in webhook bodies
    webhook_time_factor: float = Field(default=1.0, ge=0)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_concurrency: int = Field(default=16, ge=1)
    webhook_retry_schedule: tuple[float, ...] = NORCE_RETRY_SCHEDULE
