"""The ``orders:`` section of the sync config: where orders and order events go.

```yaml
orders:
  targets:              # out.<target>.order, one record per ClientOrderRef
    erp:
      mapping: {ref: ClientOrderRef, lines: Items}
  event_targets: [erp]  # out.<target>.order-events: Norce's order events as received
  status:               # ERP order statuses -> Order/SendOrderStatus
    topic: erp.public.order_status
    source: erp
    format: debezium    # or plain ({"key", "op", "version", "data"})
    mapping: {ClientOrderRef: web_order_no, OrderStatus: status}
```
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.config.mapping import Mapper

_NAME = re.compile(r"^[a-z0-9_-]+$")


class OrderTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    mapping: dict[str, object]
    hook: str | None = None
    topic: str | None = None  # default out.<target>.order

    def mapper(self) -> Mapper:
        return Mapper(self.mapping, hook=self.hook)


class StatusInput(BaseModel):
    """ERP order statuses (change data of the ERP's order table) -> Order/SendOrderStatus.

    ``mapping`` maps a row to the SendOrderStatus body (``ClientOrderRef`` or
    ``ErpOrderNo``, and ``OrderStatus``; ``Infos.0.Code`` ... too)."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    source: str  # whose Norce credentials and AccountId the calls use
    format: Literal["debezium", "plain"] = "debezium"
    mapping: dict[str, object]

    def mapper(self) -> Mapper:
        return Mapper(self.mapping)


class OrdersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: dict[str, OrderTarget] = Field(default_factory=dict)
    event_targets: list[str] = Field(default_factory=list)
    status: StatusInput | None = None

    @field_validator("targets", "event_targets")
    @classmethod
    def _names(cls, value: object) -> object:
        for name in value:  # type: ignore[attr-defined]
            if not _NAME.match(name):
                raise ValueError(f"target {name!r} must be lower case letters, digits, '_' or '-'")
        return value

    def order_topic(self, target: str) -> str:
        return self.targets[target].topic or f"out.{target}.order"

    @staticmethod
    def events_topic(target: str) -> str:
        return f"out.{target}.order-events"
