"""The worker's garbage-collector settings (streams/gc_tuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams import gc_tuning


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    callbacks = list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.callbacks[:] = callbacks
    gc_tuning._tuned = False


@pytest.mark.usefixtures("restore_gc")
def test_tune_freezes_the_live_heap_and_raises_the_young_threshold() -> None:
    kept = [object(), {"a": [1]}]  # alive now: frozen with the rest
    gc_tuning.tune(50_000)
    assert gc.get_freeze_count() > len(kept)
    assert gc.get_threshold()[0] == 50_000
    assert gc.get_count()[0] < 50_000
    assert gc_tuning.stats()["tuned"] is True


@pytest.mark.usefixtures("restore_gc")
def test_tune_runs_once_per_process() -> None:
    gc_tuning.tune(50_000)
    gc_tuning.tune(1_000)
    assert gc.get_threshold()[0] == 50_000


@pytest.mark.usefixtures("restore_gc")
def test_stats_count_the_collections_it_times() -> None:
    gc_tuning.tune(50_000)
    before = gc_tuning.stats()["collections"][2]
    gc.collect()
    assert gc_tuning.stats()["collections"][2] == before + 1
