"""The order parts of the sync config: the ``orders:`` section (where orders and order
events go) and the ``order_status`` input binding (ERP statuses back to Norce).

```yaml
inputs:
  - topic: erp.public.orders  # ERP order statuses -> Order/SendOrderStatus
    source: erp               # whose Norce credentials and AccountId the calls use
    kind: order_status
    format: debezium          # or plain ({"key", "op", "version", "data"})
    mapping: {ClientOrderRef: web_order_no, OrderStatus: status}
orders:
  targets:              # out.<target>.order, one record per ClientOrderRef
    erp:
      mapping: {ref: ClientOrderRef, lines: Items}
  event_targets: [erp]  # out.<target>.order-events: Norce's order events as received
```

``orders.status`` (the same fields without ``kind``) was the first form of the status
input; it is still read for one release, with a deprecation warning
(``SyncConfig.deprecations``).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agents.config.mapping import Mapper
from agents.config.names import kafka_topic_name

_NAME = re.compile(r"^[a-z0-9_-]+$")
ORDER_STATUS = "order_status"


class OrderTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    mapping: dict[str, object]
    hook: str | None = None
    topic: str | None = None  # default out.<target>.order

    def mapper(self) -> Mapper:
        return Mapper(self.mapping, hook=self.hook)


class StatusInput(BaseModel):
    """The deprecated ``orders.status`` block: an ``order_status`` input without ``kind``."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    source: str
    format: Literal["debezium", "plain"] = "debezium"
    mapping: dict[str, object]

    def as_input(self) -> dict[str, object]:
        """The same binding in the ``inputs:`` form."""
        return {"kind": ORDER_STATUS, **self.model_dump()}


class OrderStatusInput(BaseModel):
    """An input binding of kind ``order_status``: change data of the ERP's order table ->
    ``Order/SendOrderStatus``, one call per change.

    ``mapping`` (and an optional ``hook``) maps a row to the SendOrderStatus body
    (``ClientOrderRef`` or ``ErpOrderNo``, and ``OrderStatus``; ``Infos.0.Code`` ... too).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    source: str  # whose Norce credentials and AccountId the calls use
    kind: Literal["order_status"]
    format: Literal["debezium", "plain"] = "debezium"
    mapping: dict[str, object]
    hook: str | None = None

    _mapper: Mapper = PrivateAttr()

    _topic_name = field_validator("topic")(kafka_topic_name)

    @model_validator(mode="after")
    def _compile(self, info: ValidationInfo) -> OrderStatusInput:
        context = info.context or {}
        try:
            mapper = Mapper(
                self.mapping,
                hook=self.hook,
                base_dir=context.get("base_dir"),
                hook_anywhere=bool(context.get("hook_anywhere")),
            )
        except ValueError as exc:
            raise ValueError(f"mapping: {exc}") from None
        if self.hook is None:  # a hook may add fields; only the declarative part is checked
            outputs = set(mapper.output_paths)
            if "OrderStatus" not in outputs:
                raise ValueError("the mapping does not produce OrderStatus")
            if not outputs & {"ClientOrderRef", "ErpOrderNo"}:
                raise ValueError("the mapping produces neither ClientOrderRef nor ErpOrderNo")
        self.__pydantic_private__["_mapper"] = mapper
        return self

    def mapper(self) -> Mapper:
        return self._mapper


class OrdersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: dict[str, OrderTarget] = Field(default_factory=dict)
    event_targets: list[str] = Field(default_factory=list)
    status: StatusInput | None = None  # deprecated: an input of kind order_status

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
