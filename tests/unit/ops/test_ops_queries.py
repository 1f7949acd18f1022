"""Pure ops computations: job listings, group backlog, dead-letter aggregates, auth."""

from __future__ import annotations

from multidict import MultiDict

from agents.imports.jobs import JobRecord
from agents.ops.queries import (
    BacklogReport,
    DlqAggregate,
    JobQuery,
    bearer_ok,
    find_job,
    group_backlog,
    parse_since,
    query_jobs,
)
from streams.records import DeadLetter


def job(batch: str, at: float, **fields: object) -> JobRecord:
    values: dict[str, object] = {"source": "erp", "kind": "price", "mode": "delta"}
    values.update(fields)
    return JobRecord(batch_id=batch, submitted_at=at, **values)  # type: ignore[arg-type]


JOBS = [
    job("a", 10, status="succeeded", job_id=7, finished_at=12.5),
    job("b", 30, status="failed", kind="stock"),
    job("c", 20, status="queued", source="pim", kind="product"),
    job("d", 40, status="succeeded", mode="full", finished_at=50),
    job("e", 5, status="succeeded", mode="full"),
]


def test_jobs_newest_first_filtered_and_paged() -> None:
    everything = query_jobs(JOBS, JobQuery(), now=100)
    assert [j["batch_id"] for j in everything["jobs"]] == ["d", "b", "c", "a", "e"]
    assert everything["counts"] == {"failed": 1, "queued": 1, "succeeded": 3}

    query = JobQuery.from_params(MultiDict([("status", "succeeded,failed"), ("limit", "2")]))
    page = query_jobs(JOBS, query, now=100)
    assert page["total"] == 4
    assert [j["batch_id"] for j in page["jobs"]] == ["d", "b"]
    page2 = query_jobs(JOBS, query.model_copy(update={"offset": 2}), now=100)
    assert [j["batch_id"] for j in page2["jobs"]] == ["a", "e"]

    by_source = JobQuery.from_params(MultiDict([("source", "pim")]))
    assert [j["batch_id"] for j in query_jobs(JOBS, by_source, 100)["jobs"]] == ["c"]
    by_kind = JobQuery.from_params(MultiDict([("kind", "stock"), ("kind", "product")]))
    assert [j["batch_id"] for j in query_jobs(JOBS, by_kind, 100)["jobs"]] == ["b", "c"]


def test_lead_time_so_far_and_last_full_import_per_kind() -> None:
    result = query_jobs(JOBS, JobQuery(), now=100)
    ages = {j["batch_id"]: j["age_s"] for j in result["jobs"]}
    assert ages["a"] == 2.5  # finished: submission to end
    assert ages["c"] == 80  # still open: submission to now
    assert [(j["batch_id"], j["kind"]) for j in result["last_full"]] == [("d", "price")]


def test_bad_paging_is_rejected() -> None:
    for params in ({"limit": "0"}, {"offset": "-1"}, {"limit": "x"}):
        try:
            JobQuery.from_params(MultiDict(params))
        except ValueError:
            continue
        raise AssertionError(f"{params} accepted")


def test_find_job_by_batch_id_or_norce_job_id() -> None:
    assert find_job(JOBS, "b") is JOBS[1]
    assert find_job(JOBS, "7") is JOBS[0]
    assert find_job(JOBS, "8") is None


def pending(p: int, t: float) -> dict[str, object]:
    return {"v": [1, 1], "p": p, "t": t}


def test_group_backlog_sums_the_latest_report_of_each_partition() -> None:
    def report(p: int, worker: str, at: float, keys: int) -> BacklogReport:
        counts = {"erp|price": {"keys": keys, "oldest": 50.0}} if keys else {}
        return BacklogReport(partition=p, worker=worker, at=at, counts=counts)

    # Partition 1 moved from w1 to w2: only its latest report counts (the GlobalTable
    # keeps one value per partition).
    latest = {0: report(0, "w1", 99, 3), 1: report(1, "w2", 99, 4), 2: report(2, "w2", 80, 0)}
    result = group_backlog(latest.values(), partitions=4, now=100, stale_after=15)
    assert result["backlog"] == [
        {
            "source": "erp",
            "kind": "price",
            "keys": 7,
            "oldest_pending_since": 50.0,
            "oldest_pending_age_s": 50.0,
            "truncated": False,
            "truncated_at": None,
        }
    ]
    assert result["total_keys"] == 7
    assert result["partitions_missing"] == [3]
    assert result["partitions_stale"] == [2]
    assert result["workers"] == ["w1", "w2"]


def letter(stage: str, reason: str, **fields: object) -> bytes:
    return DeadLetter(stage=stage, reason=reason, **fields).to_bytes()  # type: ignore[arg-type]


def test_dlq_aggregate_counts_and_latest_without_payloads() -> None:
    agg = DlqAggregate(latest=2, max_reasons=2)
    agg.add(letter("decode", "bad json", topic="t", partition=0, offset=4, value=b"{"), 0)
    agg.add(letter("map", "no PartNo", state_key="erp|price|A"), 1)
    agg.add(letter("decode", "bad json", value=b"x"), 2)
    agg.add(letter("decode", "a third reason"), 3)
    agg.add(b"not a dead letter", 4)
    view = agg.view()
    assert view["total"] == 5 and view["undecodable"] == 1
    assert view["by_stage"] == {"decode": 3, "map": 1}
    assert {(r["stage"], r["reason"], r["count"]) for r in view["by_reason"]} == {
        ("decode", "bad json", 2),
        ("map", "no PartNo", 1),
        ("decode", "(other)", 1),
    }
    assert [e["dlq_offset"] for e in view["latest"]] == [3, 2]
    assert all("value" not in e for e in view["latest"])
    assert agg.end_offset == 5


def test_parse_since() -> None:
    assert parse_since("30m", now=10_000) == 10_000 - 1800
    assert parse_since("2h", now=10_000) == 10_000 - 7200
    assert parse_since("1700000000") == 1_700_000_000
    assert parse_since("2024-01-01T00:00:00") == 1_704_067_200
    assert parse_since("2024-01-01T01:00:00+01:00") == 1_704_067_200
    try:
        parse_since("yesterday")
    except ValueError:
        return
    raise AssertionError("accepted 'yesterday'")


def test_bearer_ok() -> None:
    assert bearer_ok("Bearer s3cret", "s3cret")
    assert bearer_ok("bearer s3cret", "s3cret")
    assert not bearer_ok("Bearer wrong", "s3cret")
    assert not bearer_ok("Basic s3cret", "s3cret")
    assert not bearer_ok(None, "s3cret")
    assert not bearer_ok("Bearer ", "s3cret")


def test_group_backlog_flags_a_truncated_input_without_pending_keys() -> None:
    truncated = {"erp|price": {"keys": 0, "oldest": float("inf"), "truncated_at": 70.0}}
    plain = {"erp|price": {"keys": 2, "oldest": 60.0}}
    reports = [
        BacklogReport(partition=0, worker="w1", at=99, counts=truncated),
        BacklogReport(partition=1, worker="w1", at=99, counts=plain),
    ]
    (entry,) = group_backlog(reports, partitions=2, now=100, stale_after=15)["backlog"]
    assert entry["keys"] == 2 and entry["truncated"] is True and entry["truncated_at"] == 70.0


def test_rows_waiting_for_references_add_up_over_the_group() -> None:
    def held(n: int, first: int) -> dict[str, dict]:
        examples = [{"key": f"erp|price|S{first + i}|STD|1", "reason": "SKU not in Norce"}
                    for i in range(min(n, 10))]  # fmt: skip
        return {"erp|price": {"count": n, "examples": examples}}

    counts = {"erp|price": {"keys": 30, "oldest": 50.0}}
    reports = [
        BacklogReport(partition=0, worker="w1", at=99, counts=counts, waiting=held(4, 0)),
        BacklogReport(partition=1, worker="w2", at=99, counts=counts, waiting=held(12, 100)),
        BacklogReport(partition=2, worker="w2", at=99, counts=counts),  # a report without
    ]
    waiting = group_backlog(reports, 3, now=100.0, stale_after=30)["waiting_for_references"]
    assert list(waiting) == ["erp|price"]
    assert waiting["erp|price"]["count"] == 16
    examples = waiting["erp|price"]["examples"]
    assert len(examples) == 10 and examples[0]["key"] == "erp|price|S0|STD|1"
