"""Settings, read once from ``SUNRANK_*`` environment variables.

Every knob of the server lives here so that an operator has one place to look
(README.md lists them). A bad value raises :class:`ConfigError` whose message is one
line naming the variable; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PREFIX = "SUNRANK_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "asyncpg")
CACHE_SCHEMES = ("memory", "redis")


class ConfigError(ValueError):
    """A setting has a value Sunrank cannot use."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: a SQLite file in data_dir
    cache_url: str = "memory://"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    log_format: str = "text"  # or "json": one JSON object per line
    # Learner scheduling: refit after this many events or seconds, whichever first.
    refit_every_events: int = 5000
    refit_every_seconds: float = 3600.0
    checkpoint_every_seconds: float = 300.0
    # API limits (per user, or per IP when anonymous).
    rate_limit_per_minute: int = 120
    admin_usernames: tuple[str, ...] = field(default=())
    # API cache (app/cache.py): entry lifetime, on/off switch, key prefix.
    cache_ttl_seconds: float = 300.0
    cache_enabled: bool = True
    cache_namespace: str = "sunrank"
    # Largest accepted HTTP request body (bytes); bigger ones get 413.
    max_body_bytes: int = 1024 * 1024

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite://{(self.data_dir / 'sunrank.sqlite3').resolve()}"

    @property
    def checkpoint_dir(self) -> Path:
        return self.data_dir / "checkpoints"


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        scheme = urlsplit(raw).scheme
        if scheme not in schemes:
            raise ValueError(f"expected a URL starting with one of {', '.join(schemes)}://")
        return raw

    return parse


def _number(kind: Callable[[str], float | int], raw: str) -> float | int:
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"expected {'an integer' if kind is int else 'a number'}") from None


def _port(raw: str) -> int:
    value = _number(int, raw)
    if not 0 < value < 65536:
        raise ValueError("expected a port number between 1 and 65535")
    return value


def _positive(kind: Callable[[str], float | int]) -> Callable[[str], float | int]:
    def parse(raw: str) -> float | int:
        value = _number(kind, raw)
        if value <= 0:
            raise ValueError("expected a positive number")
        return value

    return parse


def _log_level(raw: str) -> str:
    if raw.lower() not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return raw.lower()


def _log_format(raw: str) -> str:
    if raw.lower() not in ("text", "json"):
        raise ValueError("expected text or json")
    return raw.lower()


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _names(raw: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in raw.split(",") if n.strip())


_PARSERS: dict[str, Callable[[str], object]] = {
    "data_dir": Path,
    "database_url": _url(DATABASE_SCHEMES),
    "cache_url": _url(CACHE_SCHEMES),
    "host": str,
    "port": _port,
    "log_level": _log_level,
    "log_format": _log_format,
    "refit_every_events": _positive(int),
    "refit_every_seconds": _positive(float),
    "checkpoint_every_seconds": _positive(float),
    "rate_limit_per_minute": _positive(int),
    "admin_usernames": _names,
    "cache_ttl_seconds": _positive(float),
    "cache_enabled": _bool,
    "cache_namespace": str,
    "max_body_bytes": _positive(int),
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build the settings from ``environ`` (default: ``os.environ``), then ``overrides``."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, parse in _PARSERS.items():
        var = PREFIX + name.upper()
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            reason = str(exc) if "expected" in str(exc) else "not a valid value"
            raise ConfigError(f"{var}={raw!r}: {reason}") from None
    values.update(overrides)
    return Settings(**values)
