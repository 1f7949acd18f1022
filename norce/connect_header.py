"""``X-StormConnect-Header``: what an import is and which fields it sets.

Fields not listed in a ``*FieldsThatAreSet`` list stay untouched in Norce, so this header
is how each source system owns exactly its fields. It travels as one-line JSON with the
unused properties omitted.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_pascal

from norce.fields import (
    CompanyField,
    CustomerField,
    PriceListField,
    ProductField,
    SkuField,
    SkuOnhandField,
    SkuPriceListField,
)

HEADER_NAME = "X-StormConnect-Header"


def _codes(enum: type[IntEnum] | None, *, strict: bool) -> BeforeValidator:
    """Accept enum members, field names or integer codes; emit a list of ints/members.

    ``strict`` lists reject integers that are not in the enum (Norce documents the whole
    list); the others let undocumented non-negative codes through.
    """

    def convert(values: Any) -> Any:
        if values is None:
            return None
        if isinstance(values, str | bytes | int):
            raise ValueError("field codes must be a list")
        out: list[int] = []
        for value in values:
            if isinstance(value, bool):
                raise ValueError(f"not a field code: {value!r}")
            if isinstance(value, str):
                if enum is None or value not in enum.__members__:
                    raise ValueError(f"unknown field name {value!r}")
                out.append(enum[value])
            elif isinstance(value, int):
                if enum is not None and value in enum._value2member_map_:
                    out.append(enum(value))
                elif strict or value < 0:
                    raise ValueError(f"unknown field code {value}")
                else:
                    out.append(value)
            else:
                raise ValueError(f"not a field code: {value!r}")
        if len(set(out)) != len(out):
            raise ValueError("field codes repeat")
        return out

    return BeforeValidator(convert)


Codes = list[int] | None
_MANDATORY_PRICE_CODES = {3, 4, 5, 6, 7, 8, 10}


class ConnectHeader(BaseModel):
    """Typed builder for ``X-StormConnect-Header``.

    >>> ConnectHeader(account_id=1, sku_onhand_fields_that_are_set=["OnhandValue"]).to_json()
    '{"AccountId":1,"SerializationType":0,"SkuOnhandFieldsThatAreSet":[3]}'

    Properties Norce adds later can be passed by their PascalCase name and are sent as
    given (``ConnectHeader(account_id=1, PriceListFieldsThatAreSet=[1])``); other unknown
    keyword names are rejected as typos.
    """

    model_config = ConfigDict(
        alias_generator=to_pascal, populate_by_name=True, extra="allow", frozen=True
    )

    account_id: int = Field(gt=0)
    full_file: bool | None = None
    serialization_type: int = 0  # 0 = JSON, the only body format these clients send
    supplier_id: int | None = None
    storage_name: str | None = None
    # The MANDATORY price fields (codes 3-8, 10): Norce ignores a row lacking one whole.
    # Every one must also be in sku_price_list_fields_that_are_set.
    ignore_sku_price_list_fields_when_empty: Annotated[
        Codes, _codes(SkuPriceListField, strict=True)
    ] = None
    # The contract calls this a "body flag" of customer imports without saying where it
    # goes; the body is a bare array, so it travels in the header (inferred).
    is_customer_list_delta: bool | None = None
    sku_onhand_fields_that_are_set: Annotated[Codes, _codes(SkuOnhandField, strict=True)] = None
    sku_price_list_fields_that_are_set: Annotated[Codes, _codes(SkuPriceListField, strict=True)] = (
        None
    )
    product_fields_that_are_set: Annotated[Codes, _codes(ProductField, strict=False)] = None
    variant_fields_that_are_set: Annotated[Codes, _codes(None, strict=False)] = None
    sku_fields_that_are_set: Annotated[Codes, _codes(SkuField, strict=False)] = None
    sku_culture_fields_that_are_set: Annotated[Codes, _codes(None, strict=False)] = None
    product_culture_fields_that_are_set: Annotated[Codes, _codes(None, strict=False)] = None
    variant_culture_fields_that_are_set: Annotated[Codes, _codes(None, strict=False)] = None
    customer_fields_that_are_set: Annotated[Codes, _codes(CustomerField, strict=False)] = None
    company_fields_that_are_set: Annotated[Codes, _codes(CompanyField, strict=True)] = None
    # The list is longer than documented ("..."): other codes pass.
    price_list_fields_that_are_set: Annotated[Codes, _codes(PriceListField, strict=False)] = None

    @model_validator(mode="after")
    def _mandatory_fields_are_set(self) -> ConnectHeader:
        mandatory = set(self.ignore_sku_price_list_fields_when_empty or ())
        if not mandatory:
            return self
        if not mandatory <= _MANDATORY_PRICE_CODES:
            raise ValueError("IgnoreSkuPriceListFieldsWhenEmpty: only codes 3-8 and 10 apply")
        if not mandatory <= set(self.sku_price_list_fields_that_are_set or ()):
            raise ValueError(
                "IgnoreSkuPriceListFieldsWhenEmpty lists fields SkuPriceListFieldsThatAreSet lacks"
            )
        return self

    @model_validator(mode="after")
    def _extras_are_pascal_case(self) -> ConnectHeader:
        for key in self.model_extra or {}:
            if not key[:1].isupper():
                raise ValueError(f"unknown header property {key!r} (extras must be PascalCase)")
        return self

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        return {key: value for key, value in data.items() if value is not None}

    def to_json(self) -> str:
        # stdlib json with ensure_ascii: header values must be ASCII on the wire, and
        # a StorageName may not be. The header is tiny, so speed does not matter here.
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=True)

    def as_headers(self) -> dict[str, str]:
        return {HEADER_NAME: self.to_json()}
