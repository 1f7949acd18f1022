"""The full import keeps, per changelog partition, the offsets of its current records:
memory by key count, never by the offset range (a compacted changelog's offsets grow
for years while its keys do not)."""

from __future__ import annotations

from agents.imports.full_file import current_offsets


def test_current_offsets_are_ascending_and_cost_eight_bytes_per_key() -> None:
    # Three keys of a partition whose offsets reach 10**12: 24 bytes, not a bit per offset.
    last = {b"erp|price|B": 10**12, b"erp|price|A": 5, b"erp|price|C": 7_000_000}
    offsets = current_offsets(last)
    assert list(offsets) == [5, 7_000_000, 10**12]
    assert offsets.itemsize * len(offsets) == 24
