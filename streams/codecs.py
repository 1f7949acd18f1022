"""orjson codecs for Faust: plain JSON values and pydantic records.

``orjson`` (registered by name) encodes dicts, lists and pydantic models and decodes to
plain Python values. :class:`PydanticCodec` decodes straight into one pydantic model, so a
topic or table declared with ``value_serializer=PydanticCodec(Model)`` yields typed values.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import orjson
from faust.serializers import codecs
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", by_alias=True)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default)


class OrjsonCodec(codecs.Codec):
    """JSON through orjson; pydantic models are dumped in JSON mode."""

    def _dumps(self, s: Any) -> bytes:
        return dumps(s)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


class PydanticCodec(codecs.Codec, Generic[M]):
    """JSON through orjson, decoded into ``model`` (validated on the way in)."""

    def __init__(self, model: type[M], **kwargs: Any) -> None:
        super().__init__(model=model, **kwargs)
        self.model = model

    def _dumps(self, s: Any) -> bytes:
        if isinstance(s, BaseModel):
            return s.__pydantic_serializer__.to_json(s, by_alias=True)
        return dumps(s)

    def _loads(self, s: bytes) -> M:
        return self.model.model_validate_json(s)


codecs.register("orjson", OrjsonCodec())
