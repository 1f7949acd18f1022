"""Running an app's Faust command line (the ``norce-sync`` console script is
:mod:`norce_sync.cli`). ``norce-sync config check [FILE]`` (``agents.ops.config_cli``)
validates a config.

A config mistake is reported the same way by every command: one ``file: path: problem``
line per problem on stderr and exit status 78 (``EX_CONFIG``), never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

import faust
from pydantic import ValidationError

from streams.errors import EXIT_CONFIG, ConfigError
from streams.settings import ENV_PREFIX


def _settings_problems(error: ValidationError) -> ConfigError:
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in problem["loc"])
        lines.append(f"environment: {ENV_PREFIX}{name.upper()}: {problem['msg']}")
    return ConfigError("\n".join(lines))


def _config_cause(error: BaseException) -> ConfigError | None:
    """The config error behind ``error`` (Faust and pydantic wrap what modules raise)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConfigError):
            return current
        if isinstance(current, ValidationError) and current.title == "Settings":
            return _settings_problems(current)
        current = current.__cause__ or current.__context__
    return None


def _point_at_config(args: Sequence[str]) -> None:
    """``config check FILE``: the app loads FILE (its modules validate the config as they
    are imported), so a broken FILE is reported like the worker's own config."""
    rest = [a for a in args[2:] if not a.startswith("-")]
    if rest:
        os.environ[f"{ENV_PREFIX}CONFIG_FILE"] = rest[0]


def run(argv: Sequence[str] | None, build_app: Callable[[], faust.App], *, origin: str) -> None:
    """Build the app with ``build_app`` and run its command line; a config error, raised
    while building or running, becomes one line per problem and exit status 78."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:2] == ["config", "check"]:
            _point_at_config(args)
        app = build_app()
        # Faust takes the app's origin from argv[0] when none is set; "norce-sync" is no
        # module. (Set as Faust's prepare_app does.)
        if app.conf.origin is None:
            app.conf._origin = origin
        app.main()
    except Exception as exc:
        problem = _config_cause(exc)
        if problem is None:
            raise
        print(str(problem), file=sys.stderr)
        sys.exit(EXIT_CONFIG)
