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
- the input is idle: a fetch came back empty and no record arrived for the quiet period
  (``quiet_s``). One empty fetch is not enough: input that comes in bursts (a producer's
  full batches, a partition's share of them at a worker that keeps up) leaves gaps of a
  few hundred ms, and checkpointing in every gap wrote each hot key once per burst (at 4
  workers of the scale bench every checkpoint was one of these, ~2x the changelog
  records per change of one worker). A delta does not wait for it: it stores what was
  folded before it reads (``Projector.store_folded``);
- a backlog has been folded to its end: the fold caught up with every owned partition's
  high watermark (as its last fetch reported it) after at least the quiet period behind
  it. Its last changes then reach the store (and deltas, and ``applied``) at once, not a
  quiet period or an interval later. A burst folded in less than the quiet period is
  not a backlog: its end is a gap in bursty input, handled as above;
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


class CheckpointBudget:
    def __init__(
        self,
        interval_s: float,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        quiet_s: float = 0.0,
    ) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.clock = clock
        self.quiet_s = quiet_s
        self._last_input: float | None = None  # the last fold that changed something
        # Partitions folded since the last checkpoint: their offsets are committed by it.
        self.touched: set[TopicPartition] = set()
        self._since: float | None = None  # the first fold after the last checkpoint
        self._behind_since: float | None = None  # the first fold that left input behind

    def folded(self, touched: set[TopicPartition]) -> None:
        if touched:
            self._last_input = now = self.clock()
            if self._since is None:
                self._since = now
        self.touched |= touched

    def due(self, held_keys: int, *, idle: bool, marked: bool, caught_up: bool = False) -> bool:
        """Whether to checkpoint now (only when something was folded since the last).
        ``caught_up``: the fold reached every owned partition's high watermark."""
        backlog_ended = self._backlog_ended(idle=idle, caught_up=caught_up)
        if not self.touched:
            return False
        if marked or held_keys >= self.max_keys or (idle and self._quiet()) or backlog_ended:
            return True
        return self._since is not None and self.clock() - self._since >= self.interval_s

    def _backlog_ended(self, *, idle: bool, caught_up: bool) -> bool:
        if idle:  # nothing came: not behind
            self._behind_since = None
            return False
        now = self.clock()
        if not caught_up:
            if self._behind_since is None:
                self._behind_since = now
            return False
        behind, self._behind_since = self._behind_since, None
        return behind is not None and now - behind >= self.quiet_s

    def _quiet(self) -> bool:
        last = self._last_input
        return last is None or self.clock() - last >= self.quiet_s

    def take(self) -> set[TopicPartition]:
        """The partitions to commit with the checkpoint starting now; the budget starts
        again."""
        touched, self.touched, self._since = self.touched, set(), None
        return touched
