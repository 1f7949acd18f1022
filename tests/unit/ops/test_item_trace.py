"""What the item view says about one key, from the state value, the pair's jobs and
batches, the dead letters and Norce's row."""

from __future__ import annotations

from pathlib import Path

import orjson

from agents.config.sync_config import load_config
from agents.imports import projection
from agents.imports.jobs import JobRecord
from agents.ops import item_trace
from agents.ops.item_trace import SentBatch
from agents.reconcile.rules import plan_for
from streams.records import DeadLetter

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "example.yaml"
PRICES = load_config(EXAMPLE).binding_for_topic("erp.public.prices")
KEY = "P-1|STD|1"
STATE_KEY = f"erp|price|{KEY}"
ROW = {"PartNo": "P-1", "PriceListCode": "STD", "QuantityBreak": 1, "PriceSale": 10.0,
       "CostPurchase": 6.0, "CostUnit": 6.5, "PriceRecommended": 12.0,
       "IsPriceDiscountable": True, "IsActive": True}  # fmt: skip


def value(*, pending: float | None = None, sent: bool = True) -> projection.Value:
    digest = projection.row_digest(ROW, False) if sent else None
    return {"v": [1700000000000, 42], "row": ROW, "d": False, "p": pending, "h": digest}


def job(batch: str, status: str, at: float, **fields: object) -> JobRecord:
    return JobRecord(batch_id=batch, source="erp", kind="price", mode="delta", status=status,
                     submitted_at=at, **fields)  # fmt: skip


def test_state_says_whether_norce_was_sent_this_row() -> None:
    assert item_trace.state_view(value())["row_sent"] is True
    assert item_trace.state_view(value(sent=False))["row_sent"] is False
    assert item_trace.state_view(value())["version"]["lsn"] == 42


def test_pending_names_the_open_job_it_waits_for() -> None:
    open_job = job("b1", "queued", 1.0, job_id=77)
    reason = item_trace.pending_view(value(pending=5.0), PRICES, [open_job])
    assert reason is not None and reason["since"] == 5.0
    assert "waiting for job 77 of erp/price (queued)" in reason["reason"]
    idle = item_trace.pending_view(value(pending=5.0), PRICES, [])
    assert idle is not None and "next delta of erp/price (schedule 30s)" in idle["reason"]
    assert item_trace.pending_view(value(), PRICES, [open_job]) is None
    held = item_trace.pending_view(value(pending=5.0), PRICES, [open_job], "SKU P-1 not in Norce")
    assert held is not None
    assert held["reason"].startswith("waiting for references: SKU P-1 not in Norce;")


def test_jobs_are_those_whose_batch_holds_the_key_newest_first() -> None:
    carried = SentBatch([STATE_KEY, "erp|price|P-2|STD|1"], [[1, 40], [1, 41]])
    other = SentBatch(["erp|price|P-2|STD|1"], [[1, 41]])
    failed = job("b3", "failed", 3.0, job_id=3, rejected_rows=[0],
                 errors=["Row 0: P-1|STD|1 PriceSale invalid", "Import failed."])  # fmt: skip
    full = job("b4", "succeeded", 4.0, job_id=4)
    full = full.model_copy(update={"mode": "full"})
    jobs = [(job("b1", "succeeded", 1.0, job_id=1), carried), (job("b2", "succeeded", 2.0), other),
            (failed, carried), (full, None)]  # fmt: skip

    view = item_trace.jobs_view(STATE_KEY, KEY, jobs)

    assert [j["batch_id"] for j in view] == ["b4", "b3", "b1"]
    assert view[0]["carried"] == "full import: every key of the pair"
    assert view[1]["rejected"] is True and view[1]["log"] == ["Row 0: P-1|STD|1 PriceSale invalid"]
    assert view[2]["version_sent"]["lsn"] == 40


def letter(key: dict[str, object] | None = None, **fields: object) -> DeadLetter:
    raw = orjson.dumps(key) if key is not None else None
    return DeadLetter(key=raw, stage=str(fields.pop("stage", "map")), reason="bad", **fields)


def test_dead_letters_match_the_state_key_or_the_source_keys_values() -> None:
    letters = [
        (1, letter({"part_no": "p-1", "price_list_code": "STD", "quantity_break": 1},
                   topic=PRICES.topic)),
        (2, letter({"part_no": "P-10", "price_list_code": "STD", "quantity_break": 1},
                   topic=PRICES.topic)),
        (3, letter(None, stage="norce-validation", state_key=STATE_KEY)),
        (4, letter({"part_no": "P-1", "price_list_code": "STD", "quantity_break": 1},
                   topic="another.topic")),
    ]  # fmt: skip
    found = item_trace.letters_view(STATE_KEY, PRICES, KEY, letters)
    assert [f["dlq_offset"] for f in found] == [3, 1]


def test_norce_comparison_names_the_different_field() -> None:
    plan = plan_for(PRICES)
    same = item_trace.norce_view(plan, value(), dict(ROW))
    assert same["matching"] is True and same["different"] == {}
    drifted = item_trace.norce_view(plan, value(), {**ROW, "PriceSale": 99.0})
    assert drifted["different"] == {"PriceSale": {"expected": 10.0, "norce": 99.0}}
    assert item_trace.norce_view(plan, value(), None)["found"] is False
