"""The worker's garbage-collector settings (streams/gc_tuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams import gc_tuning


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_tune_freezes_the_live_heap_and_raises_only_the_young_threshold() -> None:
    _, middle, old = gc.get_threshold()
    kept = [object(), {"a": [1]}]  # alive now: frozen with the rest
    gc_tuning.tune(50_000)
    assert gc.get_freeze_count() > len(kept)
    assert gc.get_threshold() == (50_000, middle, old)
    assert gc.get_count()[0] < 50_000


@pytest.mark.usefixtures("restore_gc")
def test_zero_keeps_pythons_defaults() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    gc_tuning.tune(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen
