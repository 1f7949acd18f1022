"""When the projector checkpoints what it folded: on a time and size budget, not after
every fetch.

A checkpoint writes one changelog record and one store entry per changed key, however
often the key changed since the last one; so the more changes one checkpoint covers,
the fewer records per change (at 10,000 hot keys, a fetch of 5,000 records wrote about
0.67 records per change; a second of input, far fewer). A checkpoint is due when:

- the interval has passed since the first fold after the last checkpoint (how late a
  folded change may reach the store, and the deltas that read it);
- the changed keys held reach the cap (memory: the held values, once more while the
  checkpoint is in flight);
- the input is idle (a fetch came back empty): nothing to coalesce, no reason to wait;
- the fold has caught up with the input: every owned partition's position is at the
  high watermark its last fetch reported. The projector knows it as soon as it folds
  the last record, without waiting ``projection_fetch_wait_ms`` for a fetch to come back
  empty: a backlog's last changes reach the store (and deltas, and ``applied``) at once.
  At most once per ``CAUGHT_UP_GAP_S`` (a trickle of input is caught up after every
  fetch: one checkpoint per fetch would cost a produce, a store write and a commit per
  few records); meanwhile the fetch waits only for the rest of the gap
  (:meth:`CheckpointBudget.fetch_wait_s`), so the checkpoint follows within it;
- keys were marked sent: a delta's marks are stored at once, as before, so the next
  delta does not send them again.

Nothing else changes: every change is folded one by one as it arrives (the last change
of a key wins, every change is checked and a bad one dead-lettered), the checkpoint's
steps and order are the same, and a crash re-reads every change not yet committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiokafka import TopicPartition

# The least time between two checkpoints started because the fold caught up with its
# input: a trickle of input then costs at most ten checkpoints a second, and the last
# changes of a backlog still reach the store within 0.1 s of their fold.
CAUGHT_UP_GAP_S = 0.1


class CheckpointBudget:
    def __init__(
        self, interval_s: float, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.clock = clock
        # Partitions folded since the last checkpoint: their offsets are committed by it.
        self.touched: set[TopicPartition] = set()
        self._since: float | None = None  # the first fold after the last checkpoint
        self._started: float | None = None  # when the last checkpoint started
        self._caught_up = False  # the last fold reached every partition's high watermark

    def folded(self, touched: set[TopicPartition]) -> None:
        if touched and self._since is None:
            self._since = self.clock()
        self.touched |= touched

    def due(self, held_keys: int, *, idle: bool, marked: bool, caught_up: bool = False) -> bool:
        """Whether to checkpoint now (only when something was folded since the last)."""
        self._caught_up = caught_up
        if not self.touched:
            return False
        if idle or marked or held_keys >= self.max_keys:
            return True
        if caught_up and self._gap_left() <= 0:
            return True
        return self._since is not None and self.clock() - self._since >= self.interval_s

    def fetch_wait_s(self, wait_s: float) -> float:
        """How long the next fetch may wait for input: ``wait_s``, or less when the fold
        has caught up with folds held back only by the gap (a fetch that comes back
        empty then checkpoints them as idle input)."""
        if self.touched and self._caught_up:
            return max(0.0, min(wait_s, self._gap_left()))
        return wait_s

    def _gap_left(self) -> float:
        if self._started is None:
            return 0.0
        return CAUGHT_UP_GAP_S - (self.clock() - self._started)

    def take(self) -> set[TopicPartition]:
        """The partitions to commit with the checkpoint starting now; the budget starts
        again."""
        touched, self.touched, self._since = self.touched, set(), None
        self._started = self.clock()
        return touched
