from __future__ import annotations

import pytest
from pydantic import ValidationError

from norce.config import Environment, NorceCredentials, NorceEndpoints


@pytest.mark.parametrize(
    ("environment", "host"),
    [
        ("prod", "https://acme.api-se.norce.tech"),
        ("stage", "https://acme.api-se.stage.norce.tech"),
        ("playground", "https://acme.api-se.playground.norce.tech"),
    ],
)
def test_host_pattern_per_environment(environment: str, host: str) -> None:
    endpoints = NorceEndpoints.for_tenant("acme", "se", environment)
    assert endpoints.root == host
    assert endpoints.identity_url == host + "/identity/1.0/connect/token"
    assert endpoints.connect_url == host + "/commerce/connect/4.0/"
    assert endpoints.query_url == host + "/commerce/query/2.0/"


def test_default_environment_is_prod() -> None:
    endpoints = NorceEndpoints(slug="acme", region="se")
    assert endpoints.environment is Environment.PROD
    assert endpoints.connect_url == "https://acme.api-se.norce.tech/commerce/connect/4.0/"


def test_base_url_override_wins_and_drops_trailing_slash() -> None:
    endpoints = NorceEndpoints(slug="acme", region="se", base_url="http://127.0.0.1:8300/")
    assert endpoints.root == "http://127.0.0.1:8300"
    assert endpoints.identity_url == "http://127.0.0.1:8300/identity/1.0/connect/token"
    assert endpoints.query_url == "http://127.0.0.1:8300/commerce/query/2.0/"


def test_needs_tenant_or_base_url() -> None:
    with pytest.raises(ValidationError, match="slug and region"):
        NorceEndpoints(slug="acme")
    with pytest.raises(ValidationError, match="http"):
        NorceEndpoints(base_url="ftp://x")
    with pytest.raises(ValidationError):
        NorceEndpoints.for_tenant("acme", "se", "production")


def test_secret_never_shows() -> None:
    creds = NorceCredentials(
        client_id="cid", client_secret="s3cr3t-value", application_id=1234, scope="stage"
    )
    assert creds.application_id == "1234"
    assert "s3cr3t-value" not in repr(creds)
    assert "s3cr3t-value" not in str(creds)
    assert "s3cr3t-value" not in creds.model_dump_json()
    assert creds.client_secret.get_secret_value() == "s3cr3t-value"
    assert NorceCredentials(client_id="c", client_secret="x", application_id="a").scope == "prod"
