"""Service settings: environment variables (prefix ``NORCE_SYNC_``), secret files and one
optional settings file.

Precedence, highest first: keyword arguments, environment, secret files (``secrets_dir``),
the settings file named by ``NORCE_SYNC_SETTINGS_FILE`` (YAML or JSON), defaults.
Sources, mappings, schedules and targets live in the sync config file (``config_file``),
which :mod:`agents.config.sync_config` loads.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ENV_PREFIX = "NORCE_SYNC_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def rocksdb_available() -> bool:
    return importlib.util.find_spec("rocksdict") is not None


def _default_secrets_dir() -> str | None:
    # Docker and Kubernetes mount secrets here; a missing folder is simply not used.
    path = os.environ.get(f"{ENV_PREFIX}SECRETS_DIR", "/run/secrets")
    return path if Path(path).is_dir() else None


class Settings(BaseSettings):
    """Every setting of the service. Each field's description is the documentation."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
        secrets_dir=_default_secrets_dir(),
    )

    # Faust / Kafka
    app_id: str = Field("norce-sync", description="Kafka consumer group and topic prefix.")
    broker: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap servers as Faust URLs, ';'-separated "
        "(`kafka://host1:9092;kafka://host2:9092`).",
    )
    store: str = Field(
        "auto",
        description="Table store: `rocksdb://` (needs the `rocksdb` extra), `memory://`, "
        "or `auto` (rocksdb when rocksdict is installed).",
    )
    topic_partitions: int = Field(
        8, ge=1, description="Partitions of the topics and tables this service creates."
    )
    topic_replication_factor: int = Field(
        1, ge=1, description="Replication factor of the topics this service creates."
    )
    data_dir: Path = Field(Path("data"), description="Folder for table stores and local state.")
    web_host: str = Field(
        "127.0.0.1",
        description="Address the worker's web server binds to; not loopback: set `ops_token`.",
    )
    web_port: int = Field(6066, description="Port of the worker's web server.")
    web_url: str | None = Field(
        None,
        description="Address other workers reach this worker's web server at (a view asked "
        "for an item another worker owns forwards there); default `http://<web_host>:"
        "<web_port>`, with this host's name when `web_host` is `0.0.0.0`.",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="Faust processing guarantee."
    )
    broker_session_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Kafka group session timeout: how long a dead worker keeps its "
        "partitions before the group rebalances.",
    )
    config_file: Path = Field(
        PROJECT_ROOT / "config" / "example.yaml",
        description="Sync config: sources, inputs, mappings, schedules and targets.",
    )
    hook_files_anywhere: bool = Field(
        False,
        description="Allow `file.py:function` hooks outside the sync config's folder "
        "(absolute or `../` paths); off, such a config is refused at start.",
    )
    dlq_topic: str = Field("norce-sync.dlq", description="Dead-letter topic.")
    log_format: Literal["text", "json"] = Field("text", description="Log line format.")
    log_level: str = Field("info", description="Log level.")
    log_repeat_window_s: float = Field(
        10.0,
        gt=0,
        description="A warning or error repeated within this window is logged once, then "
        "summarised every window while it lasts, then once as cleared.",
    )
    gc_young_threshold: int = Field(
        50_000,
        ge=0,
        description="Allocations between two young garbage collections in a worker "
        "(CPython's default is 700); the heap alive at start is also frozen out of "
        "collections. 0 leaves the interpreter's defaults (`streams/gc_tuning.py`).",
    )
    broker_probe_interval_s: float = Field(
        2.0,
        gt=0,
        description="How often the worker checks that it can reach the broker; `/ready` "
        "answers 503 while it cannot.",
    )

    # Kafka security (streams/kafka_security.py): every Kafka client takes these
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How clients talk to the brokers: `PLAINTEXT`, `SSL` (TLS, optionally "
        "mTLS with `kafka_ssl_certfile`), `SASL_PLAINTEXT` or `SASL_SSL` (managed Kafka).",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512",
        description="SASL mechanism for the `SASL_*` protocols (Confluent Cloud: `PLAIN`).",
    )
    kafka_sasl_username: str = Field(
        "", description="SASL user name (Confluent Cloud: the API key)."
    )
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""),
        description="SASL password (secret; Confluent Cloud: the API secret). Environment, "
        "secret file in `secrets_dir`, or `kafka_sasl_password_file`.",
    )
    kafka_sasl_password_file: Path | None = Field(
        None,
        description="File holding the SASL password (used when `kafka_sasl_password` is "
        "empty; surrounding whitespace is stripped).",
    )
    kafka_ssl_cafile: Path | None = Field(
        None,
        description="PEM file of the CA(s) that signed the brokers' certificates; empty "
        "trusts the system's CAs (right for Confluent Cloud, MSK, Redpanda Cloud).",
    )
    kafka_ssl_certfile: Path | None = Field(
        None, description="Client certificate (PEM) for mTLS (Aiven, MSK with mTLS)."
    )
    kafka_ssl_keyfile: Path | None = Field(
        None, description="Private key (PEM) of `kafka_ssl_certfile`."
    )
    kafka_ssl_key_password: SecretStr = Field(
        SecretStr(""), description="Password of an encrypted `kafka_ssl_keyfile` (secret)."
    )
    kafka_ssl_check_hostname: bool = Field(
        True,
        description="Check that a broker's certificate names the host connected to. Turn "
        "off only for a lab broker whose certificate lacks the name.",
    )

    # Norce
    norce_base_url: str | None = Field(
        "http://127.0.0.1:8300",
        description="Explicit Norce base URL (the simulator's). Empty to use the host "
        "pattern from slug, region and environment.",
    )
    norce_job_path_prefix: Literal["", "api/"] = Field(
        "",
        description="Prefix of Connect's job service paths (Job/Get, Job/GetLog, ...): "
        "empty as public client code calls it, or `api/` as the vendor's reference lists it.",
    )
    norce_slug: str = Field("demo", description="Norce tenant slug, the first host label.")
    norce_region: str = Field("se", description="Norce region in `api-{region}`.")
    norce_environment: Literal["prod", "stage", "playground"] = Field(
        "playground", description="Norce environment; also the token scope."
    )
    norce_application_id: str = Field("demo-app", description="Norce `application-id` header.")
    norce_client_id: str = Field("norce-sync-demo", description="OAuth client id.")
    norce_client_secret: SecretStr = Field(
        SecretStr(""),
        description="OAuth client secret (secret). Required: a worker whose Norce base "
        "URL is not a loopback address refuses to start while it is empty or a demo value.",
    )

    # Webhooks and ops
    webhook_token: SecretStr = Field(
        SecretStr(""),
        description="Static token Norce Event sends in `webhook_token_header` (secret). "
        "Empty refuses every webhook; required like `norce_client_secret`.",
    )
    webhook_token_header: str = Field(
        "x-norce-webhook-token", description="Header carrying the webhook token."
    )
    webhook_max_body_bytes: int = Field(1 << 20, description="Largest webhook body accepted.")
    ops_token: SecretStr | None = Field(
        None,
        description="When set, ops views require `Authorization: Bearer <token>` (secret). "
        "A worker whose web host is not loopback refuses to start without it.",
    )
    ops_backlog_interval_s: float = Field(
        5.0,
        gt=0,
        description="How often each worker reports the pending backlog of its partitions "
        "(what `/pending/` and the backlog metrics show).",
    )

    # Import path
    create_input_topics: bool = Field(
        True,
        description="Create missing input topics at start-up (Debezium creates them too; "
        "a topic missing when the worker starts would otherwise not be consumed).",
    )
    projection_batch_max: int = Field(
        5000,
        ge=1,
        description="Most input records the projection fetches and folds at a time.",
    )
    projection_checkpoint_interval_ms: int = Field(
        1000,
        ge=0,
        description="Longest the projection folds input before it checkpoints it (one "
        "changelog record per changed key, one store write, one offset commit): a key "
        "changed again within it is written once. Folded changes reach the store (and "
        "deltas) at most this much later; a crash re-reads them. 0: after every fetch.",
    )
    projection_checkpoint_keys: int = Field(
        20000,
        ge=1,
        description="Most changed keys the projection holds before it checkpoints them, "
        "whatever the interval (bounds memory: about 1 KiB per key, twice while a "
        "checkpoint is in flight).",
    )
    projection_checkpoint_quiet_ms: int = Field(
        500,
        ge=0,
        description="How long the projection's input must have been quiet (no record) before "
        "an empty fetch checkpoints what it holds ahead of the interval. Bursty input (a "
        "worker that keeps up with a few partitions) leaves short gaps; checkpointing in "
        "each wrote a hot key once per burst. Deltas do not wait for it (they store what "
        "was folded first). 0: at the first empty fetch. Also how long the fold must have "
        "been behind its input for reaching the end (the high watermark) to checkpoint at "
        "once: the end of a backlog, not of a burst.",
    )
    projection_step_back: Literal["answered", "ready"] = Field(
        "ready",
        description="How the projection's fold steps back between its slices while a webhook "
        "or an order is in flight: `ready` yields until their ready steps have run and "
        "folds on in 1 ms slices while they wait for I/O; `answered` (before 2026-12) "
        "waits until none is in flight (at most 10 ms per slice: answers run alone, but "
        "the fold also idles while they wait for the broker).",
    )
    schema_registry_retry_max_s: float = Field(
        30.0,
        gt=0,
        description="Longest wait between two tries while a schema registry does not "
        "answer (Avro inputs wait for it; the wait starts at 0.5 s and doubles).",
    )
    norce_outage_retry_max_s: float = Field(
        30.0,
        gt=0,
        description="Longest wait between two tries while Norce does not answer or refuses "
        "the credentials (401/403, 5xx, timeouts): export lookups and job polls wait, "
        "nothing is dead-lettered; the wait starts at 0.5 s and doubles.",
    )
    projection_fetch_wait_ms: int = Field(
        200,
        ge=1,
        description="How long the projection waits for input before it checkpoints what it "
        "has (and applies keys marked sent).",
    )
    delta_tick_s: float = Field(
        1.0, gt=0, description="How often workers check whether a delta schedule is due."
    )
    # References (agents/imports/references.py): rows held until what they name exists.
    reference_found_ttl_s: float = Field(
        3600.0,
        ge=0,
        description="How long a reference found in Query (a SKU, a price list) "
        "is trusted without asking again.",
    )
    reference_missing_ttl_s: float = Field(
        30.0, ge=0, description="How long a reference Query did not have is trusted missing."
    )
    reference_recheck_s: float = Field(
        60.0,
        gt=0,
        description="How often rows waiting for a reference are checked again "
        "(catches entities created outside this service).",
    )
    reference_group_size: int = Field(
        100, ge=1, description="References looked up per Query request (an `or` filter)."
    )
    reference_concurrency: int = Field(
        4, ge=1, description="Reference lookups in flight at once (per delta)."
    )
    reference_max_url: int = Field(
        4000, ge=200, description="Longest Query URL a reference lookup sends."
    )
    job_poll_tick_s: float = Field(1.0, gt=0, description="How often the leader polls jobs.")
    job_poll_min_s: float = Field(1.0, gt=0, description="First delay between Job/Get polls.")
    job_poll_max_s: float = Field(30.0, gt=0, description="Longest delay between Job/Get polls.")
    job_lead_time_limit_s: float = Field(
        1800.0, gt=0, description="A job unfinished after this long is flagged overdue."
    )
    job_retention_s: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description="Finished job records older than this (by their last event) are "
        "pruned from the jobs ledger (tombstoned) by the leader.",
    )
    job_prune_interval_s: float = Field(
        60.0, gt=0, description="How often the leader prunes the jobs ledger."
    )
    job_retention_max: int = Field(
        10_000,
        ge=100,
        description="At most this many finished job records are kept; beyond it the "
        "oldest finished ones are pruned even inside `job_retention_s`.",
    )
    overdue_policy: Literal["flag", "resubmit"] = Field(
        "resubmit",
        description="What to do with an overdue delta job: only flag it, or also re-queue "
        "its keys from current state for the next delta.",
    )
    orphan_grace_s: float = Field(
        120.0,
        gt=0,
        description="An intent with no JobId and no sign of life for this long is checked "
        "against Job/List and, when no unfinished job can be behind it, marked lost.",
    )
    full_import_wait_s: float = Field(
        600.0, gt=0, description="How long a full import waits for open jobs of its kind."
    )
    full_import_max_drop_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="A full import whose file holds fewer rows than the last successful "
        "full import of its kind by more than this share is not sent (FullFile would "
        "deactivate the rest, as after a lost state changelog) unless forced "
        "(``norce-sync full-import --force``).",
    )

    @model_validator(mode="after")
    def _intake_port_free(self) -> Settings:
        if self.intake_processes and self.intake_port == self.web_port:
            raise ValueError(
                f"intake_port ({self.intake_port}) must differ from web_port: the intake "
                "processes cannot share the worker's web server's port"
            )
        return self

    @field_validator("norce_base_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @property
    def store_url(self) -> str:
        if self.store != "auto":
            return self.store
        return "rocksdb://" if rocksdb_available() else "memory://"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            file_secret_settings,
        ]
        settings_file = os.environ.get(f"{ENV_PREFIX}SETTINGS_FILE")
        if settings_file:
            if not Path(settings_file).is_file():
                raise FileNotFoundError(f"{ENV_PREFIX}SETTINGS_FILE={settings_file} not found")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=settings_file))
        return tuple(sources)

    # Export (webhook intake and enrichment; agents/export/intake.py, agents/export/enricher.py)
    webhook_ack_timeout_s: float = Field(
        3.0,
        gt=0,
        description="How long intake waits for the broker to acknowledge an event before "
        "answering 503 (Norce gives up on a call after 5 s and retries it).",
    )
    intake_processes: int = Field(
        0,
        ge=0,
        le=64,
        description="Webhook intake processes beside the worker (`norce_sync/intake_process.py`): "
        "each serves `/norce/events` on `intake_port` (the kernel spreads connections over "
        "them, SO_REUSEPORT) with a producer of its own, so webhook intake uses more than the "
        "worker's one core. 0: webhooks only on the worker's web server, which serves them "
        "either way. Point Norce Event's subscriptions at `intake_port` to use them.",
    )
    intake_port: int = Field(
        6067,
        ge=1,
        le=65535,
        description="Port the intake processes listen on (at `web_host`), when "
        "`intake_processes` is above 0; must differ from `web_port`.",
    )
    export_window_s: float = Field(
        0.5,
        ge=0,
        description="Coalescing window: events for one entity within this many seconds of "
        "its first event cause one Query lookup.",
    )
    export_query_concurrency: int = Field(
        8, ge=1, description="Query lookups in flight at once, per worker."
    )
    export_max_pending: int = Field(
        20_000,
        ge=1,
        description="Events held by enrichment (in coalescing windows or being looked up "
        "and produced) before it stops reading the events topic: the bound on entities in "
        "flight during a burst.",
    )
    export_lookup_group_size: int = Field(
        50,
        ge=1,
        description="Entities read by one Query request (`$filter=PartNo eq 'A' or ...`) "
        "when their windows close in the same flush.",
    )
    export_lookup_max_url: int = Field(
        2048,
        ge=256,
        description="Longest Query request URL a group lookup may send, in characters "
        "(a group is cut shorter to stay within it; IIS refuses long query strings).",
    )
    export_flush_interval_s: float = Field(
        0.05,
        ge=0,
        description="Least time between two flushes: windows that close meanwhile are "
        "flushed together, so their entities share Query requests.",
    )
    export_max_flushes: int = Field(
        16,
        ge=1,
        description="Flushes (each several Query requests) running at once. A due window "
        "waits while this many run, so it is above what Query concurrency and the window "
        "rate need: the held events stay bounded by `export_max_pending`.",
    )
    export_monitor_interval_s: float = Field(
        5.0,
        gt=0,
        description="How often each worker samples the export backlog and the consumer "
        "lag of the events and input topics (`/export/stats`, `/metrics`, dashboard).",
    )
    export_monitor_history: int = Field(
        120, ge=1, description="Samples kept for the backlog and lag chart (120 x 5 s: 10 min)."
    )
    export_reference_ttl_s: float = Field(
        300.0, ge=0, description="How long reference data (price list heads) is cached."
    )
    export_query_max_attempts: int = Field(
        6, ge=1, description="Attempts per Query lookup (429/5xx/timeouts are retried)."
    )
    export_query_base_delay_s: float = Field(
        0.5, ge=0, description="First retry delay of a Query lookup (exponential, jittered)."
    )
    export_query_max_delay_s: float = Field(
        15.0, ge=0, description="Longest retry delay of a Query lookup."
    )
    export_topic_prefix: str = Field(
        "",
        description="Prefix of the target topic names (`<prefix>out.<target>.<kind>`); "
        "lets two deployments or tests share a cluster.",
    )
    export_digests_per_partition: int = Field(
        100_000,
        ge=1,
        description="Entities per events partition whose last records' digests a worker "
        "holds for `export_dedupe` (the most recently written; ~270 bytes each with two "
        "targets). An entity beyond them gets its next record produced even if unchanged.",
    )
    export_dedupe: bool = Field(
        True,
        description="Skip a target record identical to the last one produced for its key "
        "(redelivered events and no-op changes then produce nothing).",
    )

    # Orders (receiver, ledger, fan-out and status back; agents/orders/)
    orders_receiver_enabled: bool = Field(
        True,
        description="Serve Norce's order receiver `POST /norce/orders` (and take its orders "
        "to the orders topic and the targets).",
    )
    orders_user: str = Field(
        "", description="User name Norce's order calls present (HTTP Basic; Norce Admin)."
    )
    orders_password: SecretStr = Field(
        SecretStr(""),
        description="Password Norce's order calls present (secret). Empty refuses every "
        "order; a worker whose web host is not loopback refuses to start without it.",
    )
    orders_max_body_bytes: int = Field(1 << 20, description="Largest order body accepted.")
    orders_ack_timeout_s: float = Field(
        3.0,
        gt=0,
        description="How long the receiver waits for the broker (and its ledger) before "
        "answering 503 so that Norce retries.",
    )
    orders_ledger_per_partition: int = Field(
        200_000,
        ge=1,
        description="Order refs per orders partition each worker's receiver ledger holds "
        "(the most recent; older refs are deduplicated downstream by the fan-out).",
    )
    orders_status_concurrency: int = Field(
        8, ge=1, description="Order/SendOrderStatus calls in flight at once, per worker."
    )
