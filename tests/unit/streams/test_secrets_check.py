"""A worker talking to a real Norce refuses empty and demo secrets, naming the setting and
never its value; against a loopback Norce (the simulator) it starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from agents.config.secrets import source_secret_problems
from streams.secrets_check import (
    DEMO_SECRETS,
    InsecureSettings,
    check_secrets,
    check_web_exposure,
    ops_token_warning,
    talks_to_real_norce,
)
from streams.settings import Settings

REMOTE = "https://demo.api-se.playground.norce.tech"
GOOD = {
    "norce_client_secret": SecretStr("s3cret-norce-Yq7"),
    "webhook_token": SecretStr("s3cret-hook-Yq7"),
}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SECRETS_TEST_ERP", "s3cret-erp-Yq7")
    path = tmp_path / "sync.yaml"
    path.write_text(
        "sources:\n  erp:\n    account_id: 1\n    credentials:\n"
        "      client_id: erp\n      client_secret_env: SECRETS_TEST_ERP\n"
        "inputs: []\n"
    )
    return path


def settings(config: Path, base_url: str | None = REMOTE, **values: object) -> Settings:
    return Settings(  # type: ignore[arg-type]
        config_file=config, norce_base_url=base_url, **{**GOOD, **values}
    )


def refusal(s: Settings) -> str:
    with pytest.raises(InsecureSettings) as caught:
        check_secrets(s, source_secret_problems)
    return str(caught.value)


def test_real_secrets_start(config: Path) -> None:
    check_secrets(settings(config), source_secret_problems)


@pytest.mark.parametrize("name", ["norce_client_secret", "webhook_token"])
@pytest.mark.parametrize("value", ["", *sorted(DEMO_SECRETS)])
def test_an_empty_or_demo_secret_is_refused_by_name_never_by_value(
    config: Path, name: str, value: str
) -> None:
    message = refusal(settings(config, **{name: SecretStr(value)}))
    assert f"NORCE_SYNC_{name.upper()}" in message
    assert ("is empty" if not value else "holds a demo value") in message
    if value:
        assert value not in message
    for other in GOOD.values():
        assert other.get_secret_value() not in message


def test_the_defaults_are_refused(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NORCE_SYNC_NORCE_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("NORCE_SYNC_WEBHOOK_TOKEN", raising=False)
    message = refusal(Settings(config_file=config, norce_base_url=REMOTE))  # type: ignore[arg-type]
    assert "NORCE_SYNC_NORCE_CLIENT_SECRET is empty" in message
    assert "NORCE_SYNC_WEBHOOK_TOKEN is empty" in message


def test_a_source_secret_is_checked_too(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETS_TEST_ERP", "erp-demo-secret")
    message = refusal(settings(config))
    assert "SECRETS_TEST_ERP (client secret of source erp) holds a demo value" in message
    assert "erp-demo-secret" not in message
    monkeypatch.delenv("SECRETS_TEST_ERP")
    assert "SECRETS_TEST_ERP (client secret of source erp) is empty" in refusal(settings(config))


def test_no_base_url_means_real_norce(config: Path) -> None:
    s = settings(config, base_url=None, webhook_token=SecretStr("demo-webhook-token"))
    assert talks_to_real_norce(s)
    assert "NORCE_SYNC_WEBHOOK_TOKEN holds a demo value" in refusal(s)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8300", "http://localhost:8300", "http://[::1]:8300"]
)
def test_a_loopback_norce_starts_with_demo_values(config: Path, url: str) -> None:
    s = settings(config, base_url=url, webhook_token=SecretStr(""))
    assert not talks_to_real_norce(s)
    check_secrets(s)


def test_open_ops_views_are_named_once(config: Path) -> None:
    assert ops_token_warning(settings(config, web_host="127.0.0.1")) is None
    assert (
        ops_token_warning(settings(config, web_host="0.0.0.0", ops_token=SecretStr("x" * 20)))
        is None
    )
    warning = ops_token_warning(settings(config, web_host="0.0.0.0"))
    assert warning is not None and "NORCE_SYNC_OPS_TOKEN is not set" in warning
    assert "\n" not in warning


def test_a_worker_open_to_other_hosts_needs_an_ops_token(config: Path) -> None:
    check_web_exposure(settings(config, web_host="127.0.0.1"))  # loopback: no token needed
    check_web_exposure(settings(config, web_host="0.0.0.0", ops_token=SecretStr("x" * 20)))
    with pytest.raises(InsecureSettings, match=r"refusing to start.*NORCE_SYNC_OPS_TOKEN"):
        check_web_exposure(settings(config, web_host="0.0.0.0"))


def test_the_order_receiver_beyond_loopback_needs_its_credentials(config: Path) -> None:
    from streams.secrets_check import order_receiver_problem

    local = settings(config, base_url="http://127.0.0.1:8300", web_host="127.0.0.1")
    assert order_receiver_problem(local) is None
    exposed = settings(config, base_url="http://127.0.0.1:8300", web_host="0.0.0.0")
    with pytest.raises(InsecureSettings, match="NORCE_SYNC_ORDERS_PASSWORD"):
        check_secrets(exposed)
    demo = settings(
        config,
        base_url="http://127.0.0.1:8300",
        web_host="0.0.0.0",
        orders_user="norce",
        orders_password=SecretStr("demo-orders-password"),
    )
    assert "demo value" in (order_receiver_problem(demo) or "")
    good = settings(
        config,
        base_url="http://127.0.0.1:8300",
        web_host="0.0.0.0",
        orders_user="norce",
        orders_password=SecretStr("s3cret-orders-Yq7"),
    )
    check_secrets(good)
    off = settings(config, web_host="0.0.0.0", orders_receiver_enabled=False, **GOOD)
    assert order_receiver_problem(off) is None
