"""Norce's order contract (norce-api.md, "Orders"): the ``OrderRequest`` Norce posts to
the order receiver, the ``OrderResponse`` it expects back, and the status update sent to
``Order/SendOrderStatus``.

Unknown fields are kept, never rejected: Norce adds fields between API versions, and an
order is too valuable to refuse for a field we do not know. Only what the receiver needs
to route and deduplicate an order is required.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

CLIENT_ORDER_REF_MAX = 50

# Values of OrderStatus in Order/SendOrderStatus (newer API versions add more: any
# string is passed on; these are the documented ones).
ORDER_STATUSES = (
    "Created",
    "Allocation",
    "Confirmed",
    "BackOrder",
    "Delivered",
    "Invoiced",
    "Cancelled",
    "CreditControl",
    "PartlyDelivered",
    "Acknowledged",
    "ErpConfirmed",
    "ReadyForPickup",
    "PickedUp",
    "OnHold",
)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class OrderItem(_Open):
    LineNo: int
    PartNo: str | None = None
    Quantity: int | None = None


class OrderRequest(_Open):
    """An order as Norce posts it. ``ClientOrderRef`` (the web order number) is the key
    everything downstream relies on; the rest is carried as received."""

    ClientOrderRef: str = Field(min_length=1, max_length=CLIENT_ORDER_REF_MAX)
    Items: list[OrderItem] = Field(default_factory=list)

    @field_validator("ClientOrderRef", mode="before")
    @classmethod
    def _ref_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
        return value

    @field_validator("Items")
    @classmethod
    def _unique_lines(cls, items: list[OrderItem]) -> list[OrderItem]:
        seen: set[int] = set()
        for item in items:
            if item.LineNo in seen:
                raise ValueError(f"LineNo {item.LineNo} appears twice (must be unique)")
            seen.add(item.LineNo)
        return items

    @classmethod
    def from_json(cls, raw: bytes) -> OrderRequest:
        return cls.model_validate(orjson.loads(raw))


class OrderResponse(BaseModel):
    StatusCode: Literal["OK", "Failed"]
    Description: str = ""
    HasErpOrderNo: bool = False
    ErpOrderNo: str | None = None

    @classmethod
    def ok(cls, description: str = "") -> OrderResponse:
        return cls(StatusCode="OK", Description=description)

    @classmethod
    def failed(cls, description: str) -> OrderResponse:
        return cls(StatusCode="Failed", Description=description)


class StatusInfo(BaseModel):
    Code: str
    Value: str | None = None


class OrderStatusUpdate(_Open):
    """The body of ``Order/SendOrderStatus``: either reference identifies the order."""

    ClientOrderRef: str | None = None
    ErpOrderNo: str | None = None
    OrderStatus: str = Field(min_length=1)
    AccountId: int | None = None
    Infos: list[StatusInfo] = Field(default_factory=list)

    def order_key(self) -> str:
        return self.ClientOrderRef or f"erp:{self.ErpOrderNo}"


class OrderEventBody(_Open):
    """Fields of every order event (norce-api.md, "Orders"); the rest is kept."""

    ClientId: int
    ApplicationId: int | None = None
    ClientOrderRef: str = Field(min_length=1, max_length=CLIENT_ORDER_REF_MAX)


ORDER_EVENT_TYPES = (
    "OrderReceivedEvent",
    "OrderConfirmedEvent",
    "OrderCancelledEvent",
    "OrderDeliveredEvent",
    "OrderPartlyDeliveredEvent",
    "OrderReadyForPickupEvent",
    "OrderPaymentReceivedEvent",
)
