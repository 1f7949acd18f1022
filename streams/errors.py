"""Errors every layer may raise and the command line turns into an exit status."""

from __future__ import annotations

# sysexits.h EX_CONFIG: what a process supervisor and a shell script can tell apart from a
# crash (1) or a usage error (2).
EXIT_CONFIG = 78


class ConfigError(ValueError):
    """The config file or a setting is missing, unreadable or invalid. The message holds one
    ``file: path: problem`` line per problem, every problem at once."""
