"""``X-StormConnect-Header`` and import endpoint for an input binding."""

from __future__ import annotations

from agents.config.sync_config import InputBinding
from norce.connect import ImportKind
from norce.connect_header import ConnectHeader

IMPORT_KIND = {
    "price": ImportKind.SKU_PRICE_LISTS,
    "stock": ImportKind.ONHANDS,
    "product": ImportKind.PRODUCTS,
    "customer": ImportKind.CUSTOMERS,
}

# Field codes the client's enums do not name (from Norce's public contract code).
SKU_CULTURE_FIELDS = {"ErpName": 0, "ErpNameCreateOnly": 1, "Comment": 2, "CommentCreateOnly": 3}
_BY_LIST = {"SkuCultureFieldsThatAreSet": SKU_CULTURE_FIELDS}


def connect_header(binding: InputBinding, account_id: int, *, full: bool) -> ConnectHeader:
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
    else:
        extra["FullFile"] = full
    return ConnectHeader.model_validate({"AccountId": account_id, **fields, **extra})
