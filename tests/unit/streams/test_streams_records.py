from __future__ import annotations

import base64
import itertools

import orjson
import pytest
from pydantic import ValidationError

from streams.records import ChangeEvent, DeadLetter, PipelineError, Stage, Version


def v(ts_ms: int, position: int) -> Version:
    return Version(ts_ms=ts_ms, position=position)


class TestVersionOrdering:
    def test_position_decides_when_both_positions_are_set(self) -> None:
        # Commit timestamps can step back between concurrent transactions; the LSN cannot.
        older, newer = v(2_000, 100), v(1_999, 200)
        assert older < newer
        assert newer > older
        assert older <= newer and not newer <= older
        assert newer >= older and not older >= newer

    def test_time_breaks_ties_of_equal_positions(self) -> None:
        assert v(1, 100) < v(2, 100)
        assert not v(2, 100) < v(1, 100)

    def test_time_decides_when_a_position_is_missing(self) -> None:
        assert v(1_000, 0) < v(2_000, 0)
        assert v(1_000, 500) < v(2_000, 0)
        assert v(2_000, 0) > v(1_000, 500)
        assert v(1_000, 0) < v(1_000, 1)

    def test_equal_versions(self) -> None:
        a, b = v(5, 7), v(5, 7)
        assert a == b and hash(a) == hash(b)
        assert a <= b and a >= b and not a < b and not a > b
        assert v(5, 7) != v(5, 8)

    def test_operators_agree_on_a_shuffled_history(self) -> None:
        history = [v(1_000 + i % 3, 10 * i) for i in range(1, 30)]  # ts jitters, LSN grows
        shuffled = history[::7] + history[1::7] + history[2::7] + history[3::7]
        shuffled += history[4::7] + history[5::7] + history[6::7]
        assert sorted(shuffled) == history
        assert max(shuffled) == history[-1]
        for a, b in itertools.pairwise(history):
            assert a < b and b > a and a <= b and b >= a and a != b

    def test_as_tuple_and_json(self) -> None:
        ver = v(1_714_000_000_123, 24_023_928)
        assert ver.as_tuple() == (1_714_000_000_123, 24_023_928)
        assert Version.from_bytes(ver.to_bytes()) == ver
        assert orjson.loads(ver.to_bytes()) == {
            "ts_ms": 1_714_000_000_123,
            "position": 24_023_928,
            "rest": [],
        }


class TestRecords:
    def test_change_event_validates_op_and_kind(self) -> None:
        with pytest.raises(ValidationError):
            ChangeEvent(source="erp", kind="price", source_key="k", op="x", version=v(1, 1), row={})
        with pytest.raises(ValidationError):
            ChangeEvent(
                source="erp", kind="widget", source_key="k", op="c", version=v(1, 1), row={}
            )

    def test_trusted_equals_validated_and_round_trips(self) -> None:
        fields = dict(
            source="erp",
            kind="price",
            source_key="A|STD|1",
            op="u",
            version=v(3, 4),
            row={"part_no": "A", "price_sale": 9.5},
            deleted=False,
        )
        trusted = ChangeEvent.trusted(**fields)
        assert trusted == ChangeEvent(**fields)
        assert ChangeEvent.from_bytes(trusted.to_bytes()) == trusted
        assert trusted.model_fields_set == set(fields)


class TestDeadLetter:
    def test_bytes_travel_as_base64_and_round_trip(self) -> None:
        raw_value = b'{"op": "x"\xff'  # not even UTF-8: must survive unchanged
        letter = DeadLetter(
            key=b'{"id":1}',
            value=raw_value,
            topic="erp.public.prices",
            partition=3,
            offset=42,
            stage=Stage.VALIDATE,
            reason="unknown op 'x'",
            time=1_714_000_000.5,
            job_id=12345,
            state_key="erp|price|A|STD|1",
        )
        doc = orjson.loads(letter.to_bytes())
        assert doc["value"] == base64.b64encode(raw_value).decode()
        assert doc["key"] == base64.b64encode(b'{"id":1}').decode()
        assert doc["stage"] == "validate"
        assert doc["job_id"] == "12345"
        back = DeadLetter.from_bytes(letter.to_bytes())
        assert back == letter
        assert back.value == raw_value

    def test_pydantic_json_methods_agree_with_to_bytes(self) -> None:
        # Faust codecs use model_validate_json / the model serializer directly.
        letter = DeadLetter(key=b"\x00k", value=b"\xffv", stage="decode", reason="r", time=1.0)
        assert orjson.loads(letter.model_dump_json()) == orjson.loads(letter.to_bytes())
        assert DeadLetter.model_validate_json(letter.model_dump_json()) == letter

    def test_tombstone_like_nulls_and_defaults(self) -> None:
        letter = DeadLetter(stage="submit", reason="timeout")
        assert letter.key is None and letter.value is None and letter.topic is None
        assert letter.time > 1_600_000_000
        assert DeadLetter.from_bytes(letter.to_bytes()) == letter

    def test_bad_base64_is_rejected(self) -> None:
        with pytest.raises(ValidationError, match="not base64"):
            DeadLetter.from_bytes(b'{"stage": "decode", "reason": "r", "value": "%%%"}')

    def test_empty_stage_is_rejected(self) -> None:
        with pytest.raises(ValidationError):
            DeadLetter(stage="", reason="r")

    def test_from_error(self) -> None:
        error = PipelineError("map", "key field PartNo is missing or empty")
        letter = DeadLetter.from_error(
            error, key=None, value=b"{}", topic="t", partition=0, offset=7, state_key="s"
        )
        assert (letter.stage, letter.reason, letter.offset, letter.state_key) == (
            "map",
            "key field PartNo is missing or empty",
            7,
            "s",
        )
