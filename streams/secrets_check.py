"""Start-up checks of the secret settings: no publicly known secret in a deployment.

The demo's values are in the README, the demo script and the simulator; a worker that
talks to a real Norce (a base URL that is not a loopback address) refuses to start while
any secret is empty or still one of them. Messages name the setting, never its value.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable, Iterable
from urllib.parse import urlparse

from pydantic import SecretStr

from streams.settings import ENV_PREFIX, Settings

log = logging.getLogger(__name__)

# Published in this repository (demo script, simulator defaults, tests): never secret.
DEMO_SECRETS = frozenset(
    {
        "demo-secret",
        "demo-webhook-token",
        "erp-demo-secret",
        "pim-demo-secret",
        "demo-orders-password",
    }
)
# Secret settings a worker needs; ``ops_token`` is optional (see ``ops_token_warning``).
REQUIRED = ("norce_client_secret", "webhook_token")


class InsecureSettings(RuntimeError):
    pass


def secret_matches(given: str | None, expected: str) -> bool:
    """A presented secret (a header value) against the configured one, in constant time.
    False when either is missing or empty: an unset secret opens nothing."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def talks_to_real_norce(settings: Settings) -> bool:
    """No explicit base URL means the Norce host pattern: real Norce."""
    url = settings.norce_base_url
    return url is None or not is_loopback(urlparse(url).hostname)


def secret_problems(settings: Settings, more: Iterable[str] = ()) -> list[str]:
    """One line per secret that is empty or a demo value, naming where it is set; ``more``
    adds the sync config's (:func:`agents.config.secrets.source_secret_problems`)."""
    problems = []
    for name in REQUIRED:
        value = getattr(settings, name)
        text = value.get_secret_value() if isinstance(value, SecretStr) else ""
        setting = f"{ENV_PREFIX}{name.upper()}"
        if not text:
            problems.append(f"{setting} is empty")
        elif text in DEMO_SECRETS:
            problems.append(f"{setting} holds a demo value")
    token = settings.ops_token
    if token is not None and token.get_secret_value() in DEMO_SECRETS:
        problems.append(f"{ENV_PREFIX}OPS_TOKEN holds a demo value")
    problems += more
    return problems


def check_secrets(
    settings: Settings, more_problems: Callable[[Settings], list[str]] | None = None
) -> None:
    """Raise :class:`InsecureSettings` when a worker talking to real Norce would start
    with an empty or publicly known secret, or would serve the order receiver beyond
    loopback without its credentials. ``more_problems`` checks the secrets :mod:`streams`
    does not know (the sync config's sources)."""
    if problem := order_receiver_problem(settings):
        raise InsecureSettings(f"refusing to start: {problem}")
    if not talks_to_real_norce(settings):
        return
    problems = secret_problems(settings, more_problems(settings) if more_problems else ())
    if problems:
        raise InsecureSettings(
            "refusing to start: the Norce base URL is not a loopback address and "
            + "; ".join(problems)
            + ". Set each to a secret of your own (environment or secret file)."
        )


def order_receiver_problem(settings: Settings) -> str | None:
    """The order receiver reachable from other hosts needs its Basic credentials."""
    if not settings.orders_receiver_enabled or is_loopback(settings.web_host):
        return None
    password = settings.orders_password.get_secret_value()
    if not settings.orders_user or not password:
        return (
            f"the web server binds to {settings.web_host} and {ENV_PREFIX}ORDERS_USER or "
            f"{ENV_PREFIX}ORDERS_PASSWORD is empty (the order receiver's Basic credentials; "
            f"or set {ENV_PREFIX}ORDERS_RECEIVER_ENABLED=false)"
        )
    if password in DEMO_SECRETS:
        return f"{ENV_PREFIX}ORDERS_PASSWORD holds a demo value"
    return None


def ops_token_warning(settings: Settings) -> str | None:
    """One line when the ops views would be reachable from other hosts without a token
    (the worker refuses to start then: :func:`check_web_exposure`)."""
    if is_loopback(settings.web_host) or settings.ops_token is not None:
        return None
    return (
        f"the web server binds to {settings.web_host}, not a loopback address, and "
        f"{ENV_PREFIX}OPS_TOKEN is not set: anyone who reaches it could see jobs, dead "
        "letters and metrics and trigger deltas. Set the token (environment or secret file)"
    )


def check_web_exposure(settings: Settings) -> None:
    """Raise :class:`InsecureSettings` for a worker open to other hosts without a token;
    a loopback worker keeps today's convenience (no token needed)."""
    if problem := ops_token_warning(settings):
        raise InsecureSettings(f"refusing to start: {problem}")
