"""Norce Connect's import kinds: the endpoint per entity kind and the
``X-StormConnect-Header`` of an import, with the field codes the client's enums do not
name. Contract knowledge; the caller's binding only needs the attributes of
:class:`ImportBinding`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from norce.connect import ImportKind
from norce.connect_header import ConnectHeader


class ImportBinding(Protocol):
    """What a header is built from (``agents.config.sync_config.InputBinding`` has it)."""

    @property
    def kind(self) -> str: ...
    @property
    def owned_fields(self) -> Mapping[str, Sequence[int | str]]: ...
    @property
    def mandatory_price_fields(self) -> Sequence[int | str]: ...


IMPORT_KIND = {
    "price": ImportKind.SKU_PRICE_LISTS,
    "stock": ImportKind.ONHANDS,
    "product": ImportKind.PRODUCTS,
    "customer": ImportKind.CUSTOMERS,
    "pricelist": ImportKind.PRICE_LISTS,
    "company": ImportKind.COMPANIES,
}

# Kinds whose import header takes no FullFile: a "full import" resends every row.
NO_FULL_FILE = frozenset({"pricelist", "company"})

# Field codes the client's enums do not name (from Norce's public contract code).
SKU_CULTURE_FIELDS = {"ErpName": 0, "ErpNameCreateOnly": 1, "Comment": 2, "CommentCreateOnly": 3}
_BY_LIST = {"SkuCultureFieldsThatAreSet": SKU_CULTURE_FIELDS}


def connect_header(binding: ImportBinding, account_id: int, *, full: bool) -> ConnectHeader:
    fields: dict[str, list[int | str]] = {}
    for list_name, names in binding.owned_fields.items():
        codes = _BY_LIST.get(list_name)
        fields[list_name] = [codes.get(n, n) if codes and isinstance(n, str) else n for n in names]
    extra: dict[str, object] = {}
    if binding.mandatory_price_fields:
        extra["IgnoreSkuPriceListFieldsWhenEmpty"] = list(binding.mandatory_price_fields)
    if binding.kind == "customer":
        # Customer imports have no FullFile; a delta says so with IsCustomerListDelta.
        extra["IsCustomerListDelta"] = not full
    elif binding.kind in NO_FULL_FILE:
        pass  # what FullFile means here is not documented (pricelist) or absent (company)
    else:
        extra["FullFile"] = full
    return ConnectHeader.model_validate({"AccountId": account_id, **fields, **extra})
