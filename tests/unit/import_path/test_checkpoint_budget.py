"""The projector checkpoints on a budget (an interval, a cap on the changed keys held,
idle input, marks), not after every fetch: a key changed again before the checkpoint is
written once."""

from __future__ import annotations

from aiokafka import TopicPartition

from agents.imports.checkpoint_budget import CAUGHT_UP_GAP_S, CheckpointBudget

TP = TopicPartition("prices", 0)
OTHER = TopicPartition("prices", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_folding_goes_on_until_the_interval_has_passed_since_the_first_fold() -> None:
    clock = Clock()
    budget = CheckpointBudget(1.0, 20_000, clock)
    assert not budget.due(0, idle=False, marked=False)  # nothing folded: nothing to write
    budget.folded({TP})
    clock.now += 0.6
    budget.folded({OTHER})  # a later fold does not restart the interval
    assert not budget.due(5_000, idle=False, marked=False)
    clock.now += 0.4
    assert budget.due(5_000, idle=False, marked=False)
    assert budget.take() == {TP, OTHER}  # both partitions' offsets are committed
    assert not budget.due(0, idle=False, marked=False)
    budget.folded({TP})  # the interval starts again at the next fold
    clock.now += 0.9
    assert not budget.due(10, idle=False, marked=False)


def test_the_cap_idle_input_and_marks_make_it_due_at_once() -> None:
    budget = CheckpointBudget(60.0, 1_000, Clock())
    budget.folded({TP})
    assert not budget.due(999, idle=False, marked=False)
    assert budget.due(1_000, idle=False, marked=False)  # memory: the held keys' cap
    assert budget.due(1, idle=True, marked=False)  # caught up: nothing to coalesce
    assert budget.due(1, idle=False, marked=True)  # a delta's marks are stored at once


def test_an_interval_of_zero_checkpoints_after_every_fetch() -> None:
    budget = CheckpointBudget(0.0, 20_000, Clock())
    budget.folded({TP})
    assert budget.due(1, idle=False, marked=False)
    budget.take()
    budget.folded(set())  # a fetch that folded nothing (only marks that changed nothing)
    assert not budget.due(0, idle=False, marked=False)


def test_caught_up_with_the_input_makes_it_due_without_waiting_for_an_empty_fetch() -> None:
    """The fold reached every partition's high watermark: the backlog's last changes are
    checkpointed at once, not after a fetch has waited for input that is not coming."""
    clock = Clock()
    budget = CheckpointBudget(60.0, 20_000, clock)
    budget.folded({TP})
    assert not budget.due(10, idle=False, marked=False, caught_up=False)
    assert budget.fetch_wait_s(0.2) == 0.2  # behind the input: fetch as before
    assert budget.due(10, idle=False, marked=False, caught_up=True)


def test_a_trickle_of_input_is_checkpointed_at_most_once_per_gap() -> None:
    """Caught up after every small fetch: at most one checkpoint per CAUGHT_UP_GAP_S, and
    the fetch in between waits only for the rest of the gap, so the changes held back
    are stored within it (an empty fetch: idle)."""
    clock = Clock()
    budget = CheckpointBudget(60.0, 20_000, clock)
    budget.folded({TP})
    assert budget.due(1, idle=False, marked=False, caught_up=True)
    budget.take()
    clock.now += CAUGHT_UP_GAP_S / 4
    budget.folded({TP})
    assert not budget.due(1, idle=False, marked=False, caught_up=True)
    assert abs(budget.fetch_wait_s(0.2) - CAUGHT_UP_GAP_S * 3 / 4) < 1e-9
    clock.now += CAUGHT_UP_GAP_S
    assert budget.fetch_wait_s(0.2) == 0.0
    assert budget.due(1, idle=False, marked=False, caught_up=True)
    budget.take()
    assert budget.fetch_wait_s(0.2) == 0.2  # nothing held: wait for input as before
