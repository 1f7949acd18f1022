"""The commands topic's values are typed: a full import request (also when written
without a ``type``, as before reconcile shared the topic) or a reconcile request."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.messages import FullImportRequest, ReconcileRequest, parse_command


def test_each_command_type_parses_to_its_record() -> None:
    full = {"source": "erp", "kind": "price", "request_id": "r1", "by": "cli"}
    assert isinstance(parse_command(full), FullImportRequest)
    assert isinstance(parse_command({**full, "type": "full_import"}), FullImportRequest)
    reconcile = parse_command({**full, "type": "reconcile", "repair": True})
    assert isinstance(reconcile, ReconcileRequest) and reconcile.repair


@pytest.mark.parametrize(
    "value", [{"type": "reconcile", "source": "erp"}, {"type": "nonsense"}, "text", None]
)
def test_anything_else_is_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        parse_command(value)
