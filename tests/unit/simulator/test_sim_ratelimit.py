from __future__ import annotations

import pytest

from norce_simulator.ratelimit import TokenBucket


def test_token_bucket_burst_then_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(rate_per_s=3 / 60, burst=20, clock=lambda: now[0])
    assert all(bucket.take() == 0.0 for _ in range(20))
    assert bucket.take() == pytest.approx(20.0)  # 3 a minute: next token in 20 s
    now[0] += 19.0
    assert bucket.take() == pytest.approx(1.0)
    now[0] += 1.0
    assert bucket.take() == 0.0
    assert bucket.take() > 0
