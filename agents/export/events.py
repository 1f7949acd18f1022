"""Norce Event webhook bodies: one pydantic schema per event type, and where each goes.

The body does not name its event type; the subscription URL (``/norce/events/{type}``)
or the ``x-norce-event-type`` header does. Every event type we accept has a route:

- an *entity* route (``sku``, ``customer``, ``company``): the event is written to the events topic
  keyed by ``<kind>:<id>`` and the enrichment agent looks the entity up in Query. Price
  and stock notifications (and supplier SKU notifications) re-read the whole SKU, so all
  of a SKU's notifications coalesce into one lookup;
- the *job* route (``JobCompletedEvent``): goes to the import path's job tracker, as a
  ``streams.messages.JobCompleted``.

Types we do not route (order events) are unknown (404),
so a wrong subscription shows up in Norce's delivery log instead of being swallowed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from agents.export.quick_body import quick_body
from streams.messages import JobCompleted

EntityKind = Literal["sku", "customer", "company"]
ENTITY_KINDS: tuple[EntityKind, ...] = ("sku", "customer", "company")

PartNo = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class NorceEventBody(BaseModel):
    """Fields every Norce event body carries. Unknown fields are kept: Norce adds fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ClientId: int
    ApplicationId: int | None = None
    EntityChanged: str | None = None


class SkuChangedNotification(NorceEventBody):
    PartNo: PartNo


class SkuPriceChangedNotification(NorceEventBody):
    PartNo: PartNo
    PricelistId: int | None = None
    PricelistCode: str | None = None
    PriceSaleValue: float | None = None
    QuantityBreak: int | None = None


class SkuOnHandBreakPointNotification(NorceEventBody):
    PartNo: PartNo
    WarehouseCode: str | None = None
    LocationCode: str | None = None


class SupplierSkuChangedNotification(NorceEventBody):
    PartNo: PartNo
    SupplierId: int | None = None


class SupplierSkuPriceChangedNotification(SupplierSkuChangedNotification):
    pass


class SupplierSkuOnHandChangedNotification(SupplierSkuChangedNotification):
    pass


class CustomerChangedNotification(NorceEventBody):
    CustomerId: int


class CompanyChangedNotification(NorceEventBody):
    CompanyId: int


class JobCompletedEvent(NorceEventBody):
    JobId: int
    StatusId: int


@dataclass(frozen=True)
class Route:
    schema: type[NorceEventBody]
    kind: EntityKind | Literal["job"]
    id_field: str  # body field holding the entity (or job) id


ROUTES: dict[str, Route] = {
    "SkuChangedNotification": Route(SkuChangedNotification, "sku", "PartNo"),
    "SkuPriceChangedNotification": Route(SkuPriceChangedNotification, "sku", "PartNo"),
    "SkuOnHandBreakPointNotification": Route(SkuOnHandBreakPointNotification, "sku", "PartNo"),
    "SupplierSkuChangedNotification": Route(SupplierSkuChangedNotification, "sku", "PartNo"),
    "SupplierSkuPriceChangedNotification": Route(
        SupplierSkuPriceChangedNotification, "sku", "PartNo"
    ),
    "SupplierSkuOnHandChangedNotification": Route(
        SupplierSkuOnHandChangedNotification, "sku", "PartNo"
    ),
    "CustomerChangedNotification": Route(CustomerChangedNotification, "customer", "CustomerId"),
    "CompanyChangedNotification": Route(CompanyChangedNotification, "company", "CompanyId"),
    "JobCompletedEvent": Route(JobCompletedEvent, "job", "JobId"),
}


class EventRejected(ValueError):
    """A webhook call we refuse; ``status`` is the HTTP answer (400, 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def entity_key(kind: str, entity_id: str | int) -> str:
    """Kafka key of an entity on the events topic: ``sku:1001``, ``customer:42``."""
    return f"{kind}:{entity_id}"


def split_entity_key(key: str) -> tuple[str, str]:
    kind, sep, entity_id = key.partition(":")
    if not sep or not entity_id:
        raise ValueError(f"not an entity key: {key!r}")
    return kind, entity_id


class NorceEvent(BaseModel):
    """A webhook as stored on the events topic (our envelope around Norce's body)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: str
    kind: EntityKind
    entity_id: str
    received_at: float = Field(description="Epoch seconds when intake accepted the call.")
    body: dict[str, Any]

    @property
    def key(self) -> str:
        return entity_key(self.kind, self.entity_id)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg']}"


def parse_event(
    event_type: str, raw: bytes, *, received_at: float | None = None
) -> NorceEvent | JobCompleted:
    """Validate a webhook body for its type. Raises ``EventRejected`` (404 or 400)."""
    route = _route(event_type)
    return _validated(event_type, route, _load(raw), received_at)


class StoredEvent(NamedTuple):
    """A webhook as the intake stores it: the Kafka key and value, and where it goes."""

    key: str
    value: bytes
    job: bool  # the job events topic, not the events topic


def stored_event(event_type: str, raw: bytes, *, received_at: float) -> StoredEvent:
    """:func:`parse_event`'s record, as the intake writes it. A body already in its
    schema's exact shape is checked and encoded without building the models
    (``quick_body``); any other goes through them, with their rejections."""
    route = _route(event_type)
    data = _load(raw)
    if route.kind != "job" and (body := quick_body(route.schema, data)) is not None:
        entity_id = str(body[route.id_field])
        value = orjson.dumps(
            {  # NorceEvent.to_bytes(), field for field
                "event_type": event_type,
                "kind": route.kind,
                "entity_id": entity_id,
                "received_at": received_at,
                "body": body,
            }
        )
        return StoredEvent(entity_key(route.kind, entity_id), value, False)
    event = _validated(event_type, route, data, received_at)
    return StoredEvent(event.key, event.to_bytes(), isinstance(event, JobCompleted))


def _route(event_type: str) -> Route:
    route = ROUTES.get(event_type)
    if route is None:
        raise EventRejected(404, f"unknown event type {event_type!r}")
    return route


def _load(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventRejected(400, f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventRejected(400, "body must be a JSON object")
    return data


def _validated(
    event_type: str, route: Route, data: dict[str, Any], received_at: float | None
) -> NorceEvent | JobCompleted:
    try:
        body = route.schema.model_validate(data)
    except ValidationError as exc:
        raise EventRejected(400, f"invalid {event_type}: {_first_error(exc)}") from None
    now = time.time() if received_at is None else received_at
    if route.kind == "job":
        assert isinstance(body, JobCompletedEvent)
        return JobCompleted(job_id=body.JobId, status_id=body.StatusId, received_at=now)
    return NorceEvent(
        event_type=event_type,
        kind=route.kind,
        entity_id=str(getattr(body, route.id_field)),
        received_at=now,
        body=body.model_dump(mode="json", exclude_unset=True),
    )
