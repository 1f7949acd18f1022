"""The image holds every package pyproject.toml ships (a package left out made the compose
`simulator` service fail to start), runs as a non-root user and checks /ready; compose
publishes nothing beyond the host's loopback."""

from __future__ import annotations

import fnmatch
import re
import tomllib

import yaml

from tests.support.broker import ROOT


def shipped_packages() -> set[str]:
    """Top-level packages matched by ``[tool.setuptools.packages.find] include``."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    patterns = find["find"]["include"]
    return {
        d.name
        for d in ROOT.iterdir()
        if (d / "__init__.py").is_file() and any(fnmatch.fnmatch(d.name, p) for p in patterns)
    }


def dockerfile() -> list[str]:
    return (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()


def test_the_image_copies_every_shipped_package() -> None:
    packages = shipped_packages()
    assert {"norce_sync", "streams", "agents", "norce", "norce_simulator"} <= packages
    copied = {
        part.rstrip("/")
        for line in dockerfile()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]  # sources; the last word is the destination
    }
    assert packages <= copied, f"Dockerfile lacks COPY for {sorted(packages - copied)}"


def test_the_image_runs_as_a_user_and_checks_ready() -> None:
    lines = dockerfile()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users
    health = [line for line in lines if line.startswith("HEALTHCHECK ")]
    assert len(health) == 1 and "/ready" in health[0]


def test_compose_publishes_on_loopback_only() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert re.match(r"127\.0\.0\.1:\d+:\d+$", str(port)), (name, port)
    assert "subscriptions" in compose["services"]  # Norce Event is pointed at the worker


def test_compose_services_run_commands_the_package_installs() -> None:
    # The simulator is its own console script (the worker's CLI never imports it): a
    # service naming a command pyproject.toml does not install would not start.
    scripts = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = {
        name: service["command"][0]
        for name, service in compose["services"].items()
        if isinstance(service.get("command"), list) and service.get("build") is not None
    }
    assert commands.get("simulator") == "norce-simulator", commands
    assert set(commands.values()) <= scripts | {"python"}, commands
