"""Log lines: JSON when configured, and no secret ever in a line."""

from __future__ import annotations

import io
import logging
import logging.config
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from agents.config.secrets import config_secret_values
from streams.logging import Scrubber, logging_config, secret_values
from streams.settings import Settings

CANARY = "canary-Zq81xk"


def settings(tmp_path: Path, **values: object) -> Settings:
    config = tmp_path / "sync.yaml"
    config.write_text(
        "sources:\n  erp:\n    account_id: 1\n    credentials:\n"
        "      client_id: erp\n      client_secret_env: OPS_TEST_ERP_SECRET\n"
        "inputs: []\n"
    )
    return Settings(config_file=config, **values)  # type: ignore[arg-type]


def test_secret_values_cover_settings_and_source_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_TEST_ERP_SECRET", "erp-" + CANARY)
    s = settings(
        tmp_path,
        norce_client_secret=SecretStr("norce-" + CANARY),
        webhook_token=SecretStr("hook-" + CANARY),
        ops_token=SecretStr("ops-" + CANARY),
    )
    assert set(secret_values(s, config_secret_values(s))) >= {
        "norce-" + CANARY,
        "hook-" + CANARY,
        "ops-" + CANARY,
        "erp-" + CANARY,
    }


def test_scrubber_masks_secrets_and_token_shapes() -> None:
    scrub = Scrubber([CANARY, "ab"])
    assert scrub(f"x={CANARY}!") == "x=***!"
    assert scrub("too short to mask: ab") == "too short to mask: ab"
    assert scrub("Authorization: Bearer eyJhbGciOi.x-y_z") == "Authorization: Bearer ***"
    assert scrub("{'authorization': 'Basic abc123'}") == "{'authorization': 'Basic ***'}"
    assert scrub("sent bearer abc.def") == "sent bearer ***"
    assert scrub("grant_type=client_credentials&client_secret=hunter22&scope=x") == (
        "grant_type=client_credentials&client_secret=***&scope=x"
    )
    assert scrub('{"access_token": "tok123", "expires_in": 3600}') == (
        '{"access_token": "***", "expires_in": 3600}'
    )


def emit(cfg: dict[str, object], stream: io.StringIO) -> None:
    cfg["handlers"]["main"]["stream"] = stream  # type: ignore[index]
    logging.config.dictConfig(cfg)
    log = logging.getLogger("ops.test")
    log.debug("debug %s", "hidden at info")
    log.info("token is %s, header %r", CANARY, {"Authorization": f"Bearer {CANARY}"})
    try:
        raise RuntimeError(f"failed with {CANARY}")
    except RuntimeError:
        log.exception("boom")


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_with_secrets_scrubbed(tmp_path: Path) -> None:
    s = settings(tmp_path, ops_token=SecretStr(CANARY), log_format="json", log_level="info")
    out = io.StringIO()
    emit(logging_config(s), out)
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [line["msg"] for line in lines] == [
        "token is ***, header {'Authorization': 'Bearer ***'}",
        "boom",
    ]
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "ops.test"
    assert lines[0]["ts"].endswith("Z")
    assert "RuntimeError: failed with ***" in lines[1]["exc"]
    assert CANARY not in out.getvalue()


def test_text_lines_scrubbed_and_level_from_settings(tmp_path: Path) -> None:
    s = settings(tmp_path, webhook_token=SecretStr(CANARY), log_level="debug")
    out = io.StringIO()
    emit(logging_config(s), out)
    text = out.getvalue()
    assert "hidden at info" in text  # debug level honoured
    assert "DEBUG [ops.test] debug hidden at info" in text
    assert "failed with ***" in text
    assert CANARY not in text


def test_min_level_and_bad_level(tmp_path: Path) -> None:
    cfg = logging_config(settings(tmp_path, log_level="info"), min_level=logging.WARNING)
    assert cfg["root"]["level"] == "WARNING"
    with pytest.raises(ValueError, match="not a log level"):
        logging_config(settings(tmp_path, log_level="chatty"))
