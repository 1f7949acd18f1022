"""Config loading and validation, and schedules (interval and cron)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from agents.config.schedules import Cron, DueTimes, Schedule
from agents.config.sync_config import (
    ConfigError,
    Credentials,
    SyncConfig,
    load_config,
    parse_config,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "example.yaml"


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def variant(raw: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(raw)


def config_error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "test.yaml", base_dir=EXAMPLE.parent)
    return str(info.value)


class TestExampleConfig:
    def test_loads(self) -> None:
        config = load_config(EXAMPLE)
        assert config.sources["erp"].account_id == 1001
        assert config.sources["pim"].account_id == 1002
        assert config.sources["erp"].credentials.client_secret_env == "NORCE_SYNC_ERP_CLIENT_SECRET"
        assert config.topics == [
            "erp.public.prices",
            "erp.public.stock",
            "erp.public.items",
            "pim.public.products",
        ]
        assert config.pairs() == [
            ("erp", "price"),
            ("erp", "stock"),
            ("erp", "product"),
            ("pim", "product"),
        ]
        assert config.binding_for("pim", "product").topic == "pim.public.products"

    def test_price_binding(self) -> None:
        prices = load_config(EXAMPLE).binding_for_topic("erp.public.prices")
        assert (prices.source, prices.kind, prices.format) == ("erp", "price", "debezium")
        assert prices.owned_fields["SkuPriceListFieldsThatAreSet"][:2] == [
            "PriceSale",
            "CostPurchase",
        ]
        assert "IsActive" in prices.owned_fields["SkuPriceListFieldsThatAreSet"]
        assert prices.delta_schedule.interval == 30.0
        assert prices.full_schedule.cron is not None
        assert str(prices.full_schedule) == "0 3 * * 0"
        assert prices.max_items_per_job == 10000
        assert prices.norce_key_fields == ("PartNo", "PriceListCode", "QuantityBreak")

    def test_stock_and_products(self) -> None:
        config = load_config(EXAMPLE)
        stock = config.binding_for_topic("erp.public.stock")
        assert stock.owned_fields == {
            "SkuOnhandFieldsThatAreSet": [
                "OnhandValue",
                "IncomingValue",
                "NextDeliveryDate",
                "LeadTimeDayCount",
                "IsActive",
            ]
        }
        items = config.binding_for_topic("erp.public.items")
        assert items.norce_key_fields == ("Variants.0.Skus.0.PartNo",)
        assert "EanCode" in items.owned_fields["SkuFieldsThatAreSet"]
        pim = config.binding_for_topic("pim.public.products")
        assert pim.norce_key_fields == ("Code",)
        assert set(pim.owned_fields) == {"ProductFieldsThatAreSet", "SkuCultureFieldsThatAreSet"}

    def test_targets(self) -> None:
        from agents.export.targets import ExportContext

        config = load_config(EXAMPLE)
        assert [(t, k) for t, k, _ in config.target_mappings()] == [
            ("search", "sku"),
            ("marketplace", "sku"),
            ("marketplace", "customer"),
        ]
        assert config.target_topic("marketplace", "sku") == "out.marketplace.sku"
        # A Query document: Products/ProductSkus('P1-A') with PriceLists and OnHands expanded.
        entity = {
            "PartNo": "P1-A",
            "EanCode": "7310000000001",
            "Cultures": [{"CultureCode": "sv-SE", "ErpName": "Chair"}],
            "PriceLists": [{"PriceListCode": "STD", "PriceSale": 99.5, "CurrencyCode": "SEK"}],
            "OnHands": [{"WarehouseCode": "W1", "OnhandValue": 0}],
        }
        context = ExportContext("sku", "P1-A", entity, ("SkuChangedNotification",), 0.0, "t")
        assert config.targets["search"]["sku"].mapper(entity, context=context) == {
            "id": "P1-A",
            "product": None,
            "name": "Chair",
            "ean": "7310000000001",
            "active": True,
            "price": 99.5,
            "stock": 0,
            "in_stock": False,
        }
        assert config.targets["marketplace"]["sku"].mapper(entity, context=context)["price"] == {
            "amount": 99.5,
            "currency": "SEK",
            "list": "STD",
        }

    def test_unknown_topic(self) -> None:
        with pytest.raises(KeyError, match="no input is bound to topic 'nope'"):
            load_config(EXAMPLE).binding_for_topic("nope")

    def test_json_and_dump_round_trip(self, raw: dict[str, Any], tmp_path: Path) -> None:
        path = tmp_path / "config.json"
        path.write_bytes(orjson.dumps(raw))
        # File hooks are looked up beside the config file, so they travel with it.
        hooks = EXAMPLE.with_name("example_hooks.py").read_bytes()
        (tmp_path / "example_hooks.py").write_bytes(hooks)
        from_json = load_config(path)
        dumped = from_json.model_dump(mode="json")
        again = parse_config(dumped, base_dir=tmp_path)
        assert again == from_json
        assert again.model_dump(mode="json") == dumped
        assert dumped["inputs"][0]["mapping"]["PriceListCode"] == {
            "from": "price_list_code",
            "convert": ["strip", "upper"],
        }
        assert dumped["inputs"][0]["delta_schedule"] == "30s"


class TestSecrets:
    def test_env(self) -> None:
        creds = Credentials(client_id="c", client_secret_env="MY_SECRET")
        assert creds.resolve_secret({"MY_SECRET": "s3cr3t"}) == "s3cr3t"
        with pytest.raises(ConfigError, match="MY_SECRET is not set"):
            creds.resolve_secret({})

    def test_file(self, tmp_path: Path) -> None:
        secret = tmp_path / "secret"
        secret.write_text("s3cr3t\n")
        assert Credentials(client_id="c", client_secret_file=secret).resolve_secret() == "s3cr3t"
        missing = Credentials(client_id="c", client_secret_file=tmp_path / "none")
        with pytest.raises(ConfigError, match="cannot read secret file"):
            missing.resolve_secret()

    def test_secret_is_not_in_the_repr(self) -> None:
        creds = Credentials(client_id="c", client_secret_env="MY_SECRET")
        assert "s3cr3t" not in repr(creds)


def _input(raw: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return raw["inputs"][index]


class TestValidationErrors:
    def test_unknown_source(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        _input(data)["source"] = "crm"
        message = config_error(data)
        assert "input 'erp.public.prices' names unknown source 'crm' (known: erp, pim)" in message
        assert message.startswith("test.yaml: ")

    def test_export_is_not_a_source_name(self, raw: dict[str, Any]) -> None:
        # /items/export/{kind}/{id} is the export trace: a source so named could not be traced
        data = variant(raw)
        data["sources"]["export"] = data["sources"].pop("erp")
        for binding in data["inputs"]:
            if binding["source"] == "erp":
                binding["source"] = "export"
        assert "source name 'export' is reserved" in config_error(data)

    def test_duplicate_topic(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        _input(data, 1)["topic"] = "erp.public.prices"
        assert "topic 'erp.public.prices' is bound twice" in config_error(data)

    def test_duplicate_source_kind(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        extra = copy.deepcopy(_input(data))
        extra["topic"] = "erp.public.prices_v2"
        data["inputs"].append(extra)
        assert "both bind source 'erp' to kind 'price'" in config_error(data)

    def test_bad_schedule(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        _input(data)["delta_schedule"] = "every five minutes"
        message = config_error(data)
        assert "inputs.0.delta_schedule" in message
        assert "needs 5 fields" in message
        _input(data)["delta_schedule"] = "5 mins"
        assert "needs 5 fields" in config_error(data)
        _input(data)["delta_schedule"] = "weekly"
        assert "neither an interval" in config_error(data)
        _input(data)["delta_schedule"] = "0s"
        assert "must be positive" in config_error(data)

    def test_inline_secret_is_refused(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        data["sources"]["erp"]["credentials"]["client_secret"] = "hunter2"
        message = config_error(data)
        assert "client_secret must not be in the config file" in message
        assert "hunter2" not in message

    def test_secret_source_must_be_one(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        data["sources"]["erp"]["credentials"]["client_secret_file"] = "/run/secrets/erp"
        assert "exactly one of client_secret_env or client_secret_file" in config_error(data)
        del data["sources"]["erp"]["credentials"]["client_secret_file"]
        del data["sources"]["erp"]["credentials"]["client_secret_env"]
        assert "exactly one of client_secret_env or client_secret_file" in config_error(data)

    def test_owned_field_not_produced(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        del _input(data)["mapping"]["CostPurchase"]
        assert "owned field SkuPriceListFieldsThatAreSet.CostPurchase is not produced" in (
            config_error(data)
        )

    def test_list_not_for_kind(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        _input(data, 1)["owned_fields"]["SkuPriceListFieldsThatAreSet"] = ["PriceSale"]
        assert "SkuPriceListFieldsThatAreSet does not apply to kind 'stock'" in config_error(data)

    def test_bad_list_and_field_names(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        _input(data)["owned_fields"] = {"PriceFields": ["PriceSale"]}
        assert "'PriceFields' is not a '...FieldsThatAreSet' header list" in config_error(data)
        _input(data)["owned_fields"] = {"SkuPriceListFieldsThatAreSet": ["price_sale"]}
        assert "'price_sale' is not a Norce field name" in config_error(data)
        _input(data)["owned_fields"] = {"SkuPriceListFieldsThatAreSet": []}
        assert "owned_fields lists no field" in config_error(data)
        _input(data)["owned_fields"] = {"SkuPriceListFieldsThatAreSet": ["PriceSale", "PriceSale"]}
        assert "lists a field twice" in config_error(data)

    def test_key_field_not_produced(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        del _input(data)["mapping"]["QuantityBreak"]
        assert "does not produce key field QuantityBreak" in config_error(data)

    def test_bad_conversion_is_reported_with_its_place(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        _input(data)["mapping"]["PriceSale"]["convert"] = "decmal"
        message = config_error(data)
        assert "inputs.0.mapping.PriceSale" in message
        assert "unknown conversion 'decmal'" in message

    def test_ignore_empty_price_fields_only_for_prices(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        _input(data, 1)["ignore_empty_price_fields"] = True
        assert "ignore_empty_price_fields applies to prices only" in config_error(data)

    def test_other_field_errors(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        _input(data)["kind"] = "invoice"
        assert "inputs.0.kind" in config_error(data)
        data = variant(raw)
        _input(data)["max_items_per_job"] = 0
        assert "inputs.0.max_items_per_job" in config_error(data)
        data = variant(raw)
        _input(data)["topic"] = "erp prices"
        assert "not a valid Kafka topic name" in config_error(data)
        data = variant(raw)
        _input(data)["colour"] = "blue"
        assert "inputs.0.colour: Extra inputs are not permitted" in config_error(data)
        data = variant(raw)
        data["sources"]["ERP|X"] = data["sources"]["erp"]
        assert "name 'ERP|X' must be lower case" in config_error(data)

    def test_target_errors(self, raw: dict[str, Any]) -> None:
        data = variant(raw)
        data["targets"]["search"]["widget"] = {"mapping": {"a": "b"}}
        assert "targets.search.widget" in config_error(data)
        data = variant(raw)
        data["targets"]["search"]["sku"]["mapping"]["id.x"] = "y"
        assert "mapping: field 'id' clashes with 'id.x'" in config_error(data)
        data = variant(raw)
        data["targets"]["search"]["sku"]["topic"] = "erp.public.prices"
        assert "target topic 'erp.public.prices' is used twice" in config_error(data)

    def test_file_errors(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read config"):
            load_config(tmp_path / "missing.yaml")
        bad = tmp_path / "bad.yaml"
        bad.write_text("inputs:\n  - delta_schedule: */5 * * * *\n")  # unquoted alias star
        with pytest.raises(ConfigError, match="not valid YAML"):
            load_config(bad)
        bad_json = tmp_path / "bad.json"
        bad_json.write_text("{")
        with pytest.raises(ConfigError, match="not valid JSON"):
            load_config(bad_json)
        listed = tmp_path / "list.yaml"
        listed.write_text("- 1\n")
        with pytest.raises(ConfigError, match="must be a mapping at the top level"):
            load_config(listed)

    def test_minimal_config_defaults(self) -> None:
        config = SyncConfig.model_validate(
            {
                "sources": {
                    "crm": {
                        "account_id": 7,
                        "credentials": {"client_id": "c", "client_secret_env": "X"},
                    }
                },
                "inputs": [
                    {
                        "topic": "crm.customers",
                        "source": "crm",
                        "kind": "customer",
                        "format": "plain",
                        "mapping": {"Code": "code", "EmailAddress": "email"},
                        "owned_fields": {"CustomerFieldsThatAreSet": ["EmailAddress", 3]},
                    }
                ],
            }
        )
        binding = config.binding_for_topic("crm.customers")
        assert binding.max_items_per_job == 10_000
        assert str(binding.full_schedule) == "0 3 * * 0"
        assert binding.delta_schedule.interval == 900.0
        assert config.targets == {}


def at(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


class TestSchedule:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("30s", 30), ("5m", 300), ("1.5h", 5400), ("1d", 86400), ("500ms", 0.5), ("45", 45)],
    )
    def test_intervals(self, text: str, seconds: float) -> None:
        assert Schedule(text).interval == seconds

    def test_interval_ticks_are_aligned(self) -> None:
        every = Schedule("30s")
        assert every.next_after(95.0) == 120.0
        assert every.next_after(120.0) == 150.0  # strictly after
        assert Schedule(10).next_after(0.5) == 10.0

    @pytest.mark.parametrize(
        ("cron", "after", "expected"),
        [
            ("*/15 * * * *", "2024-05-01T10:07:30", "2024-05-01T10:15:00"),
            ("*/15 * * * *", "2024-05-01T10:15:00", "2024-05-01T10:30:00"),
            ("0 */6 * * *", "2024-05-01T13:00:00", "2024-05-01T18:00:00"),
            ("0 */6 * * *", "2024-05-01T23:59:00", "2024-05-02T00:00:00"),
            ("0 3 * * 0", "2024-05-01T12:00:00", "2024-05-05T03:00:00"),  # Wed -> Sun
            ("0 3 * * 0", "2024-05-05T03:00:00", "2024-05-12T03:00:00"),
            ("0 3 * * 7", "2024-05-01T12:00:00", "2024-05-05T03:00:00"),  # 7 is Sunday too
            ("30 2 1 * *", "2024-01-31T05:00:00", "2024-02-01T02:30:00"),
            ("0 0 29 2 *", "2024-03-01T00:00:00", "2028-02-29T00:00:00"),
            ("0 9 * * mon-fri", "2024-05-03T10:00:00", "2024-05-06T09:00:00"),  # Fri -> Mon
            ("0 0 13 * 5", "2024-05-01T00:00:00", "2024-05-03T00:00:00"),  # 13th OR Friday
            ("0 0 13 * 5", "2024-05-10T00:00:00", "2024-05-13T00:00:00"),
            ("5/20 * * * *", "2024-05-01T10:26:00", "2024-05-01T10:45:00"),
            ("0,30 8-9 * * *", "2024-05-01T08:31:00", "2024-05-01T09:00:00"),
            ("0,30 8-9 * * *", "2024-05-01T09:30:00", "2024-05-02T08:00:00"),
            ("0 0 1 jan,jul *", "2024-02-01T00:00:00", "2024-07-01T00:00:00"),
            ("0 0 1 1 *", "2024-12-31T23:59:59", "2025-01-01T00:00:00"),
            ("@daily", "2024-05-01T00:00:00", "2024-05-02T00:00:00"),
            ("@hourly", "2024-05-01T00:59:59", "2024-05-01T01:00:00"),
            ("0 12 */10 * *", "2024-05-11T12:00:00", "2024-05-21T12:00:00"),
        ],
    )
    def test_cron_next_after(self, cron: str, after: str, expected: str) -> None:
        assert Schedule(cron).next_after(at(after)) == at(expected)

    def test_cron_consecutive_ticks(self) -> None:
        cron = Cron("*/20 9-10 * * 1")
        ts = at("2024-04-30T00:00:00")  # Tuesday
        ticks = []
        for _ in range(7):
            ts = cron.next_after(ts)
            ticks.append(datetime.fromtimestamp(ts, UTC).strftime("%a %d %H:%M"))
        assert ticks == [
            "Mon 06 09:00",
            "Mon 06 09:20",
            "Mon 06 09:40",
            "Mon 06 10:00",
            "Mon 06 10:20",
            "Mon 06 10:40",
            "Mon 13 09:00",
        ]

    @pytest.mark.parametrize(
        ("cron", "reason"),
        [
            ("61 * * * *", "minute value 61 is outside 0-59"),
            ("* 24 * * *", "hour value 24"),
            ("* * 0 * *", "day of month value 0"),
            ("* * * 13 *", "month value 13"),
            ("* * * * 8", "day of week value 8"),
            ("* * * *", "needs 5 fields"),
            ("*/0 * * * *", "bad step"),
            ("5-1 * * * *", "runs backwards"),
            ("x * * * *", "bad minute value 'x'"),
            ("* * * foo *", "bad month value 'foo'"),
            ("0 0 30 2 *", "never fires"),
            ("@fortnightly", "needs 5 fields"),
        ],
    )
    def test_bad_crons(self, cron: str, reason: str) -> None:
        with pytest.raises(ValueError) as info:
            Schedule(cron)
        assert reason in str(info.value)


def test_due_times_fire_once_per_tick_and_wait_while_busy() -> None:
    due = DueTimes()
    every_minute = Schedule("60s")
    pair = ("erp", "price")
    assert not due.take(pair, every_minute, 10.0)  # first look: next tick at 60
    assert not due.take(pair, every_minute, 59.0)
    assert not due.take(pair, every_minute, 61.0, busy=True)  # stays due while busy
    assert due.take(pair, every_minute, 62.0)
    assert not due.take(pair, every_minute, 63.0)  # next tick at 120
    assert due.take(pair, every_minute, 120.0)
    assert not due.take(("erp", "stock"), every_minute, 120.0)  # pairs count separately


def test_file_hooks_resolve_beside_the_config_and_name_the_missing_file(
    raw: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"hook 'example_hooks.py:search_sku': cannot import"):
        load_config(path)
    (tmp_path / "example_hooks.py").write_text(
        "def search_sku(out, context):\n    return {**out, 'copied': True}\n"
        "def marketplace_sku(out, context):\n    return out\n"
    )
    copied = load_config(path).targets["search"]["sku"].mapper
    original = load_config(EXAMPLE).targets["search"]["sku"].mapper
    assert copied.hook_name == original.hook_name == "example_hooks.py:search_sku"
    assert copied != original  # another file, other functions


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_hook_files_outside_the_config_folder_are_refused_unless_allowed(
    raw: dict[str, Any], tmp_path: Path, where: str
) -> None:
    outside = tmp_path / "elsewhere" / "hooks.py"
    outside.parent.mkdir()
    outside.write_text("def search_sku(out, context):\n    return out\n")
    folder = tmp_path / "config"
    folder.mkdir()
    ref = str(outside) if where == "absolute" else "../elsewhere/hooks.py"
    data = copy.deepcopy(raw)
    data["targets"]["search"]["sku"]["hook"] = f"{ref}:search_sku"
    data["targets"]["marketplace"]["sku"]["hook"] = None
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"outside the config's folder.*HOOK_FILES_ANYWHERE"):
        load_config(path)
    allowed = load_config(path, hook_anywhere=True).targets["search"]["sku"].mapper
    assert allowed.hook_name == f"{ref}:search_sku"
