"""Base for the PascalCase JSON that Norce speaks.

Python code uses snake_case attributes; the wire uses PascalCase aliases. Unknown fields
are kept (``extra="allow"``) because Norce adds fields without notice and dropping them
would hide data from callers.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_pascal


class NorceModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_pascal,
        populate_by_name=True,
        extra="allow",
    )
