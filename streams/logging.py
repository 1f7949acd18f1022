"""Log lines for operators: plain text or one JSON object per line, secrets scrubbed.

``logging_config(settings)`` is a :func:`logging.config.dictConfig` dict; the ops module
puts it in ``app.conf.logging_config``, which the Faust worker (and every app command)
applies when it sets up logging. ``NORCE_SYNC_LOG_LEVEL`` sets the level.

Scrubbing happens twice: a :class:`ScrubFilter` on the handler rewrites each record's
message, exception and stack text, and the formatters scrub the finished line again
(a formatter may add text the filter never saw). Scrubbed are the values of every
``SecretStr`` setting, every per-source client secret that can be resolved, and anything
that looks like a bearer token, an ``Authorization`` header value or an OAuth secret or
token in a form body or JSON.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr
from pythonjsonlogger.orjson import OrjsonFormatter

from streams.settings import Settings

MASK = "***"
# Shorter values are not masked: masking "ab" everywhere would wreck every line, and a
# secret that short is no secret.
MIN_SECRET_LENGTH = 4

_PATTERNS = [
    # "Authorization: Bearer x", "'authorization': 'Basic x'", "Bearer x"
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic)?\s*)[^\s\"',;}]+"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    # client_secret=x&..., "access_token": "x", refresh_token, password
    re.compile(
        r"(?i)((?:client_secret|access_token|refresh_token|password)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"
    ),
]


class Scrubber:
    """Replaces known secret values and token-shaped text with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted(
            {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )
        self._secrets = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text

    @classmethod
    def from_settings(cls, settings: Settings, extra: Iterable[str] = ()) -> Scrubber:
        return cls(secret_values(settings, extra))


def secret_values(settings: Settings, extra: Iterable[str] = ()) -> list[str]:
    """Every secret this process knows: SecretStr settings, the Kafka password (also from
    its file), and ``extra`` (the sync config's: per-source client secrets and schema
    registry passwords, :func:`agents.config.secrets.config_secret_values`)."""
    values = [
        value.get_secret_value()
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
    ]
    try:  # the Kafka password may come from a file named by a setting
        from streams.kafka_security import sasl_password

        values.append(sasl_password(settings))
    except Exception:  # unreadable: it cannot leak either
        pass
    values.extend(extra)
    return values


class ScrubFilter(logging.Filter):
    """Renders each record's message, exception and stack once, scrubbed, in place."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrub = scrubber
        self._exc_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception as exc:  # a bad format string must not lose the line
            message = f"{record.msg!r} (unformattable: {exc})"
        record.msg, record.args = self.scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(name)s] %(message)s")
        self.scrub = scrubber

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))


class JsonFormatter(OrjsonFormatter):
    """One JSON object per line: ts (ISO 8601, UTC), level, logger, msg, process, and
    exc/stack when present (python-json-logger, with its orjson encoder)."""

    # formatTime: "2024-05-01T10:00:00.123Z"
    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
            rename_fields={
                "asctime": "ts",
                "levelname": "level",
                "name": "logger",
                "message": "msg",
                "exc_info": "exc",
                "stack_info": "stack",
            },
            json_default=str,
        )
        self.scrub = scrubber

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        log_data["level"] = str(log_data.get("level", "")).lower()
        # Scrubbed before JSON escaping can change a secret's spelling (quotes, backslashes);
        # covers the traceback and any ``extra`` fields too.
        return {k: self.scrub(v) if isinstance(v, str) else v for k, v in log_data.items()}

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))


def make_formatter(log_format: str, scrubber: Scrubber) -> logging.Formatter:
    return JsonFormatter(scrubber) if log_format == "json" else TextFormatter(scrubber)


def logging_config(
    settings: Settings, *, secrets: Iterable[str] = (), min_level: int = logging.NOTSET
) -> dict[str, Any]:
    """A dictConfig for the whole process, at ``NORCE_SYNC_LOG_LEVEL`` or ``min_level``,
    whichever is higher; ``secrets`` are scrubbed besides the settings' own. The secrets
    live in the factories' closures, not in the dict, so printing the app's configuration
    shows none of them."""
    configured = logging.getLevelName(settings.log_level.upper())
    if not isinstance(configured, int):
        raise ValueError(f"NORCE_SYNC_LOG_LEVEL={settings.log_level!r} is not a log level")
    level = max(configured, min_level)
    scrubber = Scrubber.from_settings(settings, secrets)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "repeats": {"()": lambda: RepeatFilter(settings.log_repeat_window_s)},
            "scrub": {"()": lambda: ScrubFilter(scrubber)},
        },
        "formatters": {"main": {"()": lambda: make_formatter(settings.log_format, scrubber)}},
        "handlers": {
            # stderr: app commands print their results on stdout.
            "main": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["repeats", "scrub"],
            }
        },
        "root": {"level": logging.getLevelName(level), "handlers": ["main"]},
    }


class RepeatFilter(logging.Filter):
    """Collapses a flood of one warning into three kinds of line: the first occurrence
    as it is (it names what is affected), a summary every ``window_s`` while it repeats,
    and one "cleared" line once it has not repeated for ``window_s``. A broker outage
    otherwise writes thousands of identical aiokafka/Faust errors.

    Keyed by (logger, level, message template); records below WARNING pass untouched.
    Install it before the scrub filter, which replaces the template with the text."""

    SELF = "norce_sync.log_repeats"

    def __init__(self, window_s: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, int, str], _Repeats] = {}
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name == self.SELF:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None:
                self._seen[key] = _Repeats(now, record.getMessage()[:300])
                self._start_sweeper()
                return True
            seen.last = now
            seen.total += 1
            seen.since_summary += 1
            if now - seen.summarised < self.window_s:
                return False
            count, seen.since_summary, seen.summarised = seen.since_summary, 0, now
        # The summary is this record, marked, without its traceback (logged at the start).
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        record.msg = (
            f"[repeated {count} times in the last {self.window_s:.0f}s, "
            f"for {now - seen.first:.0f}s so far] {text}"
        )
        record.args, record.exc_info, record.exc_text = None, None, None
        return True

    def sweep(self) -> None:
        """Say "cleared" for every repeated condition quiet for a window; forget the rest."""
        now = self.clock()
        with self._lock:
            quiet = [k for k, s in self._seen.items() if now - s.last >= self.window_s]
            ended = [(k, self._seen.pop(k)) for k in quiet]
        for (name, level, _), seen in ended:
            if seen.total:
                logging.getLogger(self.SELF).warning(
                    "cleared after %.0fs (%d repeats): [%s] %s %s",
                    seen.last - seen.first,
                    seen.total,
                    name,
                    logging.getLevelName(level),
                    seen.text,
                )

    def _start_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=self._sweep_forever, daemon=True)
            self._sweeper.start()

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(min(1.0, self.window_s / 4))
            self.sweep()


class _Repeats:
    def __init__(self, now: float, text: str) -> None:
        self.first = self.last = self.summarised = now
        self.total = self.since_summary = 0
        self.text = text
