"""The export monitor's pure parts: lag arithmetic, sample history, latency percentiles."""

from __future__ import annotations

from aiokafka.structs import TopicPartition

from agents.export.monitor import History, LatencyWindow, Sample, lag_by_topic


def test_lag_is_end_minus_committed_per_topic_and_uncommitted_counts_whole() -> None:
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    lag = lag_by_topic({a0: 10, a1: None, b0: 7}, {a0: 15, a1: 4, b0: 7})
    assert lag == {"a": 5 + 4, "b": 0}
    assert lag_by_topic({a0: 20}, {a0: 15}) == {"a": 0}  # never negative


def test_history_keeps_the_last_samples_oldest_first() -> None:
    history = History(3)
    for i in range(5):
        history.add(Sample(float(i), i, 0, None, 2 * i, 0))
    view = history.view()
    assert [s["at"] for s in view] == [2.0, 3.0, 4.0]
    assert view[-1] == {
        "at": 4.0, "waiting": 4, "in_flush": 0, "events_lag": None, "input_lag": 8,
        "records_out": 0,
    }  # fmt: skip


def test_latency_percentiles_over_the_last_records() -> None:
    window = LatencyWindow(size=100)
    assert window.percentiles() == {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    for i in range(1, 201):  # only the last 100 (0.101 .. 0.200 s) count
        window.add(i / 1000)
    got = window.percentiles()
    assert got["p50_ms"] == 150.0 or got["p50_ms"] == 151.0
    assert got["p99_ms"] == 199.0
