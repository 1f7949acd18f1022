"""The config file: source systems, input bindings, schedules and export targets.

YAML or JSON, loaded with ``load_config(path)``; ``config/example.yaml`` shows every part::

    sources:            # per source system: Norce system account and credentials
      erp: {account_id: 1001, credentials: {client_id: ..., client_secret_env: ENV_NAME}}
    inputs:             # one binding per input topic, at most one per (source, kind)
      - {topic: erp.public.prices, source: erp, kind: price, format: debezium,
         key_columns: [...], mapping: {...}, hook: null, owned_fields: {...},
         delta_schedule: 30s, full_schedule: "0 3 * * 0", max_items_per_job: 10000,
         mandatory_price_fields: [], reconcile_schedule: null, reconcile_repair: false,
         schema_registry: {url: ..., username: ..., password_env: ...}}  # Avro, optional
    targets:            # export path: per target, per kind (sku|price|stock|customer|company)
      search: {sku: {mapping: {...}, hook: null, topic: null}}

Secrets are never in the file: credentials name an environment variable
(``client_secret_env``) or a secret file (``client_secret_file``).

Schedules are an interval (``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``, ``"500ms"``, or a
number of seconds) or a 5-field cron in UTC (``"0 */6 * * *"``, also ``@daily`` and the
like). Interval ticks are aligned to the epoch, so every worker ticks at the same instants.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from agents.config.mapping import KEY_FIELDS, FieldSpec, Mapper
from agents.config.names import TOPIC_NAME, kafka_topic_name
from agents.config.orders_config import ORDER_STATUS, OrdersConfig, OrderStatusInput
from agents.config.schedules import Schedule
from streams.errors import ConfigError
from streams.records import Kind

__all__ = [
    "ConfigError",
    "Credentials",
    "InputBinding",
    "SchemaRegistryConfig",
    "SourceConfig",
    "SyncConfig",
    "TargetKind",
    "TargetMapping",
    "load_config",
    "parse_config",
]

TargetKind = Literal["sku", "price", "stock", "customer", "company"]


_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
# Not a source name: /items/export/{kind}/{id} is the export side's item trace.
EXPORT = "export"
_FIELD_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_LIST_NAME = re.compile(r"^[A-Z][A-Za-z]*FieldsThatAreSet$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Credentials(_Model):
    """OAuth client credentials; the secret is only referenced, never written in the file."""

    client_id: str = Field(min_length=1)
    client_secret_env: str | None = None
    client_secret_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        return _not_inline(data, "client_secret")

    @model_validator(mode="after")
    def _one_secret_source(self) -> Credentials:
        if (self.client_secret_env is None) == (self.client_secret_file is None):
            raise ValueError("give exactly one of client_secret_env or client_secret_file")
        _variable_name("client_secret_env", self.client_secret_env)
        return self

    def resolve_secret(self, environ: dict[str, str] | None = None) -> str:
        """Read the secret now (call at client start-up; never log the result)."""
        return _read_secret(self.client_secret_env, self.client_secret_file, environ)


_SECRET_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _not_inline(data: Any, secret: str) -> Any:
    """Refuse a secret written in the config file (``<secret>_env``/``_file`` name it)."""
    if isinstance(data, dict) and secret in data:
        raise ValueError(
            f"{secret} must not be in the config file: "
            f"give {secret}_env (a variable name) or {secret}_file (a path)"
        )
    return data


def _variable_name(field: str, value: str | None) -> None:
    if value is not None and not _SECRET_ENV.match(value):
        raise ValueError(f"{field} {value!r} is not a variable name")


def _read_secret(env: str | None, file: Path | None, environ: dict[str, str] | None) -> str:
    """A secret from the variable ``env`` or else the file ``file`` (one of them is set);
    errors name the variable or file, never a value."""
    if env is not None:
        value = (os.environ if environ is None else environ).get(env)
        if not value:
            raise ConfigError(f"environment variable {env} is not set")
        return value
    assert file is not None
    try:
        value = file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {file}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"secret file {file} is empty")
    return value


class SchemaRegistryConfig(_Model):
    """A Confluent-compatible schema registry (Confluent, Apicurio's ``/apis/ccompat/v7``,
    Karapace): where Avro inputs fetch their writer schemas by id
    (``GET <url>/schemas/ids/<id>``). Basic auth: ``username`` plus a password referenced
    by ``password_env`` or ``password_file``, never written in the file nor logged."""

    url: str
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    timeout_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_password(cls, data: Any) -> Any:
        return _not_inline(data, "password")

    @model_validator(mode="after")
    def _check(self) -> SchemaRegistryConfig:
        if not re.match(r"^https?://[^/@\s]+(/\S*)?$", self.url):
            raise ValueError(
                f"schema_registry.url {self.url!r} is not an http(s) URL without credentials "
                "(give username and password_env instead)"
            )
        secret = (self.password_env, self.password_file)
        if self.username is None and secret != (None, None):
            raise ValueError("schema_registry: a password needs a username")
        if self.username is not None and (secret.count(None) != 1):
            raise ValueError(
                "schema_registry: with a username give exactly one of password_env or password_file"
            )
        _variable_name("password_env", self.password_env)
        return self

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    def resolve_password(self, environ: dict[str, str] | None = None) -> str | None:
        """The basic-auth password, read now (never log it); None without a username."""
        if self.password_env is None and self.password_file is None:
            return None
        return _read_secret(self.password_env, self.password_file, environ)


class SourceConfig(_Model):
    """A source system: its Norce system account and API credentials."""

    account_id: int = Field(ge=1)
    credentials: Credentials
    application_id: int | None = None


# Header lists each kind's import accepts (Norce's contract headers).
_LISTS_BY_KIND: dict[str, frozenset[str]] = {
    "price": frozenset({"SkuPriceListFieldsThatAreSet"}),
    "stock": frozenset({"SkuOnhandFieldsThatAreSet"}),
    "customer": frozenset({"CustomerFieldsThatAreSet", "CompanyFieldsThatAreSet"}),
    "pricelist": frozenset({"PriceListFieldsThatAreSet"}),
    "company": frozenset({"CompanyFieldsThatAreSet"}),
    "product": frozenset(
        {
            "ProductFieldsThatAreSet",
            "ProductCultureFieldsThatAreSet",
            "VariantFieldsThatAreSet",
            "VariantCultureFieldsThatAreSet",
            "SkuFieldsThatAreSet",
            "SkuCultureFieldsThatAreSet",
            "SkuPriceListFieldsThatAreSet",
            "SkuStructureItemFieldsThatAreSet",
        }
    ),
}
# Flat kinds: every owned field must be an output of the mapping, or Norce would blank it.
_FLAT_KINDS = frozenset({"price", "stock", "customer", "pricelist", "company"})
_AUTO_FIELDS = frozenset({"IsActive"})  # set by mapping.map_for_import itself


class InputBinding(_Model):
    """One input topic bound to a source system, an entity kind and a mapping."""

    topic: str
    source: str
    kind: Kind
    format: Literal["debezium", "debezium-flat", "plain"] = "debezium"
    # debezium-flat: the fields ExtractNewRecordState added (add.fields), e.g.
    # [__source_ts_ms, __lsn] or [__source_ts_ms, __file, __pos, __row, __op].
    flat_fields: list[str] = Field(default_factory=list)
    # Avro in the Confluent wire format (values and keys), writer schemas from this registry.
    schema_registry: SchemaRegistryConfig | None = None
    # Source columns forming the source key, joined by "|". Empty: the Kafka message key
    # (Debezium writes the primary key there).
    key_columns: list[str] = Field(default_factory=list)
    # Norce key fields (output paths) if not the kind's default, e.g. products keyed per SKU
    # by ["Variants.0.Skus.0.PartNo"].
    key_fields: list[str] | None = None
    mapping: dict[str, FieldSpec]
    hook: str | None = None
    # Header list name -> Norce field names (or integer codes) this source owns.
    owned_fields: dict[str, list[str | int]]
    delta_schedule: Schedule = Field(default_factory=lambda: Schedule("15m"))
    full_schedule: Schedule = Field(default_factory=lambda: Schedule("0 3 * * 0"))
    max_items_per_job: int = Field(default=10_000, ge=1)
    # Compare Norce with the state on this schedule (off when unset; agents.reconcile);
    # with reconcile_repair, keys found different or missing are queued for a delta.
    reconcile_schedule: Schedule | None = None
    reconcile_repair: bool = False
    ignore_empty_price_fields: bool = False  # replaced by mandatory_price_fields
    # IgnoreSkuPriceListFieldsWhenEmpty: the price fields a row must carry, or Norce
    # ignores the row whole. A subset of SkuPriceListFieldsThatAreSet.
    mandatory_price_fields: list[str | int] = Field(default_factory=list)

    _mapper: Mapper = PrivateAttr()

    _topic_name = field_validator("topic")(kafka_topic_name)

    @field_validator("key_columns")
    @classmethod
    def _key_columns(cls, value: list[str]) -> list[str]:
        if any(not c for c in value) or len(set(value)) != len(value):
            raise ValueError("key_columns must be distinct, non-empty column names")
        return value

    @field_validator("owned_fields")
    @classmethod
    def _owned_fields(cls, value: dict[str, list[str | int]]) -> dict[str, list[str | int]]:
        for list_name, fields in value.items():
            if not _LIST_NAME.match(list_name):
                raise ValueError(f"{list_name!r} is not a '...FieldsThatAreSet' header list")
            for field in fields:
                if isinstance(field, int) and field < 0:
                    raise ValueError(f"{list_name}: field code {field} is negative")
                if isinstance(field, str) and not _FIELD_NAME.match(field):
                    raise ValueError(f"{list_name}: {field!r} is not a Norce field name")
            if len(set(fields)) != len(fields):
                raise ValueError(f"{list_name} lists a field twice")
        if not any(value.values()):
            raise ValueError("owned_fields lists no field: the import would set nothing")
        return value

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> InputBinding:
        where = f"input {self.topic!r}"
        mapper = _compiled(self.mapping, self.hook, info, where)
        self.__pydantic_private__["_mapper"] = mapper
        allowed = _LISTS_BY_KIND[self.kind]
        for list_name in self.owned_fields:
            if list_name not in allowed:
                raise ValueError(
                    f"{where}: {list_name} does not apply to kind {self.kind!r} "
                    f"(use {', '.join(sorted(allowed))})"
                )
        if self.ignore_empty_price_fields and self.kind != "price":
            raise ValueError(f"{where}: ignore_empty_price_fields applies to prices only")
        if self.ignore_empty_price_fields:
            raise ValueError(
                f"{where}: ignore_empty_price_fields is gone: Norce's "
                "IgnoreSkuPriceListFieldsWhenEmpty lists mandatory fields; set "
                "mandatory_price_fields (a subset of SkuPriceListFieldsThatAreSet)"
            )
        if self.mandatory_price_fields:
            owned = self.owned_fields.get("SkuPriceListFieldsThatAreSet", [])
            if self.kind != "price":
                raise ValueError(f"{where}: mandatory_price_fields applies to prices only")
            lacking = [f for f in self.mandatory_price_fields if f not in owned]
            if lacking:
                raise ValueError(
                    f"{where}: mandatory_price_fields {lacking} are not in "
                    "owned_fields.SkuPriceListFieldsThatAreSet"
                )
        if self.format == "debezium-flat":
            from agents.config.flat_fields import flat_roles

            try:
                roles = set(flat_roles(self.flat_fields).values())
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if not roles - {"op", "connector"}:
                raise ValueError(
                    f"{where}: format debezium-flat needs flat_fields naming the version "
                    "fields added by ExtractNewRecordState (e.g. [__source_ts_ms, __lsn])"
                )
        elif self.flat_fields:
            raise ValueError(f"{where}: flat_fields applies to format debezium-flat only")
        if self.schema_registry is not None and self.format == "plain":
            raise ValueError(f"{where}: schema_registry applies to the debezium formats only")
        if self.key_fields is not None and not self.key_fields:
            raise ValueError(f"{where}: key_fields must not be empty")
        if self.hook is None:  # a hook may add fields; only the declarative part is checked
            outputs = set(mapper.output_paths)
            for key_field in self.norce_key_fields:
                if key_field not in outputs:
                    raise ValueError(f"{where}: the mapping does not produce key field {key_field}")
            if self.kind in _FLAT_KINDS:
                tops = {p.split(".", 1)[0] for p in outputs} | _AUTO_FIELDS
                for list_name, fields in self.owned_fields.items():
                    for field in fields:
                        if isinstance(field, str) and field not in tops:
                            raise ValueError(
                                f"{where}: owned field {list_name}.{field} is not produced by "
                                "the mapping (Norce would blank it)"
                            )
        return self

    @property
    def mapper(self) -> Mapper:
        return self._mapper

    @property
    def norce_key_fields(self) -> tuple[str, ...]:
        return tuple(self.key_fields) if self.key_fields else KEY_FIELDS[self.kind]

    @property
    def pair(self) -> tuple[str, str]:
        return (self.source, self.kind)


class TargetMapping(_Model):
    """How one kind of Query entity becomes a record on ``out.<target>.<kind>``."""

    mapping: dict[str, FieldSpec]
    hook: str | None = None
    topic: str | None = None  # default out.<target>.<kind>

    _mapper: Mapper = PrivateAttr()

    @model_validator(mode="after")
    def _compile(self, info: ValidationInfo) -> TargetMapping:
        self.__pydantic_private__["_mapper"] = _compiled(self.mapping, self.hook, info)
        if self.topic is not None and not TOPIC_NAME.match(self.topic):
            raise ValueError(f"{self.topic!r} is not a valid Kafka topic name")
        return self

    @property
    def mapper(self) -> Mapper:
        return self._mapper


class SyncConfig(_Model):
    sources: dict[str, SourceConfig]
    inputs: list[InputBinding] = Field(default_factory=list)
    targets: dict[str, dict[TargetKind, TargetMapping]] = Field(default_factory=dict)
    orders: OrdersConfig = Field(default_factory=OrdersConfig)  # agents/config/orders_config.py
    # The inputs of kind order_status, taken out of ``inputs`` (which the import flow
    # reads) by ``_order_status_inputs``; not a key of the file.
    order_status_inputs: list[OrderStatusInput] = Field(default_factory=list, exclude=True)

    _by_topic: dict[str, InputBinding] = PrivateAttr(default_factory=dict)
    _by_pair: dict[tuple[str, str], InputBinding] = PrivateAttr(default_factory=dict)
    _status_inputs: list[OrderStatusInput] = PrivateAttr(default_factory=list)
    _deprecations: list[str] = PrivateAttr(default_factory=list)

    def _known_source(self, topic: str, source: str) -> None:
        if source not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none"
            raise ValueError(f"input {topic!r} names unknown source {source!r} (known: {known})")

    @model_validator(mode="before")
    @classmethod
    def _order_status_inputs(cls, data: Any, info: ValidationInfo) -> Any:
        """Inputs of kind order_status feed the order flow, not the import: validated here
        (an error names its place in ``inputs``) and kept apart from the import bindings."""
        if not isinstance(data, dict):
            return data
        if "order_status_inputs" in data:
            raise ValueError(
                "order_status_inputs is not a config key: list the binding under inputs "
                "with kind: order_status"
            )
        inputs = data.get("inputs")
        if not isinstance(inputs, list):
            return data
        kept: list[Any] = []
        status: list[OrderStatusInput] = []
        for i, entry in enumerate(inputs):
            if not (isinstance(entry, dict) and entry.get("kind") == ORDER_STATUS):
                kept.append(entry)
                continue
            try:
                status.append(OrderStatusInput.model_validate(entry, context=info.context))
            except ValidationError as exc:
                raise ValueError(_format_errors(f"inputs.{i}", exc).replace("\n", "; ")) from None
        return {**data, "inputs": kept, "order_status_inputs": status}

    @model_serializer(mode="wrap")
    def _dump(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        """Dumped as written: the order status inputs back among the inputs."""
        data: dict[str, Any] = handler(self)
        status = [b.model_dump(mode=info.mode) for b in self.order_status_inputs]
        if status:
            data["inputs"] = [*data.get("inputs", []), *status]
        return data

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> SyncConfig:
        for name in (*self.sources, *self.targets):
            if not _NAME.match(name):
                raise ValueError(f"name {name!r} must be lower case letters, digits, '_' or '-'")
        if EXPORT in self.sources:
            raise ValueError(
                f"source name {EXPORT!r} is reserved (GET /items/export/... traces exports)"
            )
        by_topic: dict[str, InputBinding] = {}
        by_pair: dict[tuple[str, str], InputBinding] = {}
        for binding in self.inputs:
            self._known_source(binding.topic, binding.source)
            if binding.topic in by_topic:
                raise ValueError(f"topic {binding.topic!r} is bound twice")
            if binding.pair in by_pair:
                # One state, one schedule and one owned-field list per (source, kind).
                raise ValueError(
                    f"inputs {by_pair[binding.pair].topic!r} and {binding.topic!r} both bind "
                    f"source {binding.source!r} to kind {binding.kind!r}"
                )
            by_topic[binding.topic] = binding
            by_pair[binding.pair] = binding
        outputs: dict[str, str] = {}
        for target, kinds in self.targets.items():
            for kind in kinds:
                topic = self.target_topic(target, kind)
                if topic in by_topic or topic in outputs:
                    raise ValueError(f"target topic {topic!r} is used twice")
                outputs[topic] = target
        self.__pydantic_private__["_by_topic"] = by_topic
        self.__pydantic_private__["_by_pair"] = by_pair
        self._check_order_status(info, set(by_topic) | set(outputs))
        return self

    def _check_order_status(self, info: ValidationInfo, topics: set[str]) -> None:
        status = list(self.order_status_inputs)
        deprecations: list[str] = []
        legacy = self.orders.status
        if legacy is not None:
            if status:
                raise ValueError(
                    "orders.status is the old form of an input with kind: order_status; "
                    "give only the input"
                )
            try:
                status.append(
                    OrderStatusInput.model_validate(legacy.as_input(), context=info.context)
                )
            except ValidationError as exc:
                raise ValueError(_format_errors("orders.status", exc).replace("\n", "; ")) from None
            deprecations.append(
                "orders.status is deprecated and will be refused in the next release: move "
                f"it to inputs as {{topic: {legacy.topic}, source: {legacy.source}, "
                f"kind: order_status, format: {legacy.format}, mapping: ...}} (same topic, "
                "consumer group and sent-status record: nothing is sent twice)"
            )
        if len(status) > 1:
            raise ValueError(
                f"inputs {status[0].topic!r} and {status[1].topic!r} are both of kind "
                "order_status: one order status input is supported"
            )
        for binding in status:
            self._known_source(binding.topic, binding.source)
            if binding.topic in topics:
                raise ValueError(f"topic {binding.topic!r} is bound twice")
        self.__pydantic_private__["_status_inputs"] = status
        self.__pydantic_private__["_deprecations"] = deprecations

    @property
    def order_status_input(self) -> OrderStatusInput | None:
        """The ERP order status input (either form), if any."""
        return self._status_inputs[0] if self._status_inputs else None

    @property
    def deprecations(self) -> list[str]:
        """Warnings about deprecated config forms still accepted (shown at start and by
        ``config check``)."""
        return list(self._deprecations)

    def binding_for_topic(self, topic: str) -> InputBinding:
        try:
            return self._by_topic[topic]
        except KeyError:
            raise KeyError(f"no input is bound to topic {topic!r}") from None

    def binding_for(self, source: str, kind: str) -> InputBinding:
        try:
            return self._by_pair[(source, kind)]
        except KeyError:
            raise KeyError(f"no input binds source {source!r} to kind {kind!r}") from None

    def pairs(self) -> list[tuple[str, str]]:
        """The configured (source, kind) pairs, in config order."""
        return list(self._by_pair)

    @property
    def topics(self) -> list[str]:
        return list(self._by_topic)

    def target_topic(self, target: str, kind: str) -> str:
        mapping = self.targets[target][kind]  # type: ignore[index]
        return mapping.topic or f"out.{target}.{kind}"

    def target_mappings(self) -> Iterator[tuple[str, str, TargetMapping]]:
        for target, kinds in self.targets.items():
            for kind, mapping in kinds.items():
                yield target, kind, mapping


def _format_errors(origin: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: {loc}: {msg}" if loc else f"{origin}: {msg}")
    return "\n".join(lines)


def _compiled(mapping: Any, hook: Any, info: ValidationInfo, where: str = "") -> Mapper:
    """The mapping compiled (its hook loaded beside the config file); a mistake names
    ``where`` it is."""
    try:
        return Mapper(
            mapping, hook=hook, base_dir=_base_dir(info), hook_anywhere=_hook_anywhere(info)
        )
    except ValueError as exc:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}mapping: {exc}") from None


def _base_dir(info: ValidationInfo) -> Path | None:
    """Where ``file.py:function`` hooks are looked up: the config file's folder."""
    return (info.context or {}).get("base_dir")


def _hook_anywhere(info: ValidationInfo) -> bool:
    """Whether a hook file may lie outside the config's folder (``hook_files_anywhere``)."""
    return bool((info.context or {}).get("hook_anywhere"))


def parse_config(
    data: Any,
    origin: str = "<config>",
    *,
    base_dir: Path | None = None,
    hook_anywhere: bool = False,
) -> SyncConfig:
    """Validate already-parsed config data; errors become one ``ConfigError``.
    ``base_dir``: the folder file-path hooks are relative to and must lie in (unless
    ``hook_anywhere``); default: the working folder, unchecked."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the config must be a mapping at the top level")
    context = {"base_dir": base_dir, "hook_anywhere": hook_anywhere}
    try:
        return SyncConfig.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(_format_errors(origin, exc)) from None


def load_config(path: str | os.PathLike[str], *, hook_anywhere: bool = False) -> SyncConfig:
    """Load and validate a YAML (``.yaml``/``.yml``) or JSON config file; hook files lie
    in its folder unless ``hook_anywhere``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        data = orjson.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise ConfigError(f"{path}: not valid {kind}: {detail}") from None
    return parse_config(data, str(path), base_dir=path.parent, hook_anywhere=hook_anywhere)
