"""The projector checkpoints on a budget (an interval, a cap on the changed keys held,
idle input, marks), not after every fetch: a key changed again before the checkpoint is
written once."""

from __future__ import annotations

from aiokafka import TopicPartition

from agents.imports.checkpoint_budget import CheckpointBudget

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


def test_an_empty_fetch_checkpoints_only_once_the_input_was_quiet_for_the_quiet_period() -> None:
    # Bursty input (a worker keeping up with its partitions): an empty fetch between two
    # bursts is no reason to write every hot key again; a pause of the quiet period is.
    clock = Clock()
    budget = CheckpointBudget(60.0, 20_000, clock, quiet_s=0.5)
    budget.folded({TP})
    clock.now += 0.2
    assert not budget.due(2_500, idle=True, marked=False)  # a gap between bursts
    budget.folded({TP})  # the next burst: the quiet period starts again
    clock.now += 0.4
    assert not budget.due(2_500, idle=True, marked=False)
    clock.now += 0.1
    assert budget.due(2_500, idle=True, marked=False)  # 0.5 s without input
    budget.take()
    budget.folded({TP})
    clock.now += 0.6
    assert not budget.due(1, idle=False, marked=False)  # records still arriving: no idle


def test_the_quiet_period_does_not_hold_back_the_interval_the_cap_or_marks() -> None:
    clock = Clock()
    budget = CheckpointBudget(1.0, 1_000, clock, quiet_s=0.5)
    budget.folded({TP})
    assert budget.due(1_000, idle=True, marked=False)  # the cap
    assert budget.due(1, idle=True, marked=True)  # a delta's marks
    clock.now += 0.9
    budget.folded({OTHER})  # input never pauses 0.5 s ...
    clock.now += 0.1
    assert budget.due(1, idle=True, marked=False)  # ... the interval still bounds it


def test_the_end_of_a_backlog_is_checkpointed_without_waiting_for_an_empty_fetch() -> None:
    """The fold reached every partition's high watermark after at least the quiet period
    behind it: the backlog's last changes are checkpointed at once, not after a fetch has
    waited (and the quiet period passed) for input that is not coming."""
    clock = Clock()
    budget = CheckpointBudget(60.0, 20_000, clock, quiet_s=0.5)
    budget.folded({TP})
    assert not budget.due(10, idle=False, marked=False, caught_up=False)  # behind
    clock.now += 0.3
    budget.folded({TP})
    assert not budget.due(10, idle=False, marked=False, caught_up=False)
    clock.now += 0.3
    budget.folded({TP})
    assert budget.due(10, idle=False, marked=False, caught_up=True)  # 0.6 s behind, caught up


def test_the_end_of_a_burst_is_not_a_backlog() -> None:
    """Bursty input at a worker that keeps up: each burst is folded to its end in less
    than the quiet period, and catching up after it is no reason to write every hot key
    again; nor is a trickle that is caught up after every fetch."""
    clock = Clock()
    budget = CheckpointBudget(60.0, 20_000, clock, quiet_s=0.5)
    for _ in range(5):
        budget.folded({TP})
        assert not budget.due(2_500, idle=False, marked=False, caught_up=False)
        clock.now += 0.1
        budget.folded({TP})
        assert not budget.due(2_500, idle=False, marked=False, caught_up=True)
        clock.now += 0.2
        assert not budget.due(2_500, idle=True, marked=False)  # the gap: not quiet yet
    for _ in range(10):  # a trickle: caught up after every fetch
        clock.now += 0.05
        budget.folded({TP})
        assert not budget.due(1, idle=False, marked=False, caught_up=True)
    # An empty fetch between two stretches behind ends neither: a gap is not caught up.
    budget.folded({TP})
    assert not budget.due(1, idle=False, marked=False, caught_up=False)
    clock.now += 0.4
    assert not budget.due(1, idle=True, marked=False)
    clock.now += 0.2
    budget.folded({TP})
    assert not budget.due(1, idle=False, marked=False, caught_up=True)  # 0.2 s, not 0.6
