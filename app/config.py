"""Settings, read once from ``SUNRANK_*`` environment variables.

Every knob of the server lives here so that an operator has one place to look
(README.md lists them). A bad value raises :class:`ConfigError` whose message is one
line naming the variable; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

PREFIX = "SUNRANK_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "asyncpg")
CACHE_SCHEMES = ("memory", "redis")
HTTP_SCHEMES = ("http", "https")


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
    refit_every_events: int = 1  # 1: back to back while events arrive (live = full fit)
    refit_every_seconds: float = 3600.0
    # TensorFlow intra-op threads for the whole process (0: TF's default, one per core).
    # 1 by default: online solves are tiny, and a refit sharing the pool queued them.
    learner_threads: int = 1
    checkpoint_every_seconds: float = 300.0
    # PostgreSQL, several processes: the refit leader publishes its fitted state into
    # the database at most this often (after a refit); the others adopt it.
    publish_every_seconds: float = 10.0
    # Public dataset (app/datasets/published.py): rebuilt in the background this often.
    export_every_seconds: float = 86_400.0
    # API limits (per user, or per IP when anonymous).
    rate_limit_per_minute: int = 120
    admin_usernames: tuple[str, ...] = field(default=())
    # API cache (app/cache.py): entry lifetime, on/off switch, key prefix.
    cache_ttl_seconds: float = 300.0
    cache_enabled: bool = True
    cache_namespace: str = "sunrank"
    # Pinned rankings (app/resolvers/rankings.py) live this long in the cache for
    # their cursors, on every process; a later cursor of one is STALE_CURSOR.
    ranking_snapshot_ttl_seconds: float = 900.0
    # What rankings read of the video table (app/resolvers/catalog.py) is kept this
    # long in each process; its own writes are seen at once, others' within this.
    video_catalog_max_age_seconds: float = 2.0
    # Largest accepted HTTP request body or WebSocket message (bytes): 413 / close 1009.
    max_body_bytes: int = 1024 * 1024
    # GraphQL documents (app/schema/limits.py), over HTTP and WebSocket: length before
    # parsing, tokens, and per operation depth, aliases and estimated cost.
    max_query_bytes: int = 16 * 1024
    max_query_tokens: int = 2000
    max_query_depth: int = 10
    max_query_aliases: int = 20
    max_query_cost: int = 50_000
    # The edge (app/http): addresses of reverse proxies whose X-Forwarded-For is
    # believed (IPs or CIDR networks, "*" for any; none by default), the per-address
    # request limit (signed in or not), and the WebSocket limits.
    forwarded_allow_ips: tuple[str, ...] = field(default=())
    rate_limit_per_ip_per_minute: int = 600
    ws_max_connections_per_ip: int = 16
    ws_max_operations: int = 20
    ws_idle_seconds: float = 300.0
    ws_send_timeout_seconds: float = 10.0
    ws_init_timeout_seconds: float = 10.0
    # Browser apps on other origins (app/http/cors.py): the origins allowed to call the
    # API over HTTP and WebSocket ("*" for any, development only; none by default),
    # and how long a browser may reuse a preflight's answer.
    cors_origins: tuple[str, ...] = field(default=())
    cors_max_age_seconds: int = 600
    # Automatic persisted queries (app/http/persisted.py): "on" (Apollo's APQ: a client
    # may send a query's SHA-256 instead of its text once the server has seen it),
    # "off", or "allowlist" (only the operations of SUNRANK_PERSISTED_QUERIES_FILE run);
    # how many documents the server remembers (least recently used go first).
    persisted_queries: str = "on"
    persisted_queries_file: str = ""
    persisted_queries_max: int = 10_000
    # GraphiQL's browser assets (app/graphiql.py): a node_modules directory holding
    # react, react-dom, graphiql and @graphiql/plugin-explorer (`npm ci` makes it).
    graphiql_assets: Path = Path(__file__).resolve().parent.parent / "node_modules"
    # Video metadata (app/sources): the YouTube Data API v3 when a key is set, oEmbed
    # (title and channel only) otherwise; a background queue in the server fetches
    # new videos and refreshes old ones, within a daily quota of API units.
    youtube_api_key: str = ""
    youtube_api_url: str = "https://www.googleapis.com/youtube/v3"
    youtube_oembed_url: str = "https://www.youtube.com/oembed"
    youtube_timeout_seconds: float = 10.0
    youtube_daily_quota: int = 10_000
    metadata_worker: bool = True
    metadata_retry_seconds: float = 60.0  # first retry after a failure; doubles, with jitter
    metadata_refresh_min_seconds: float = 86_400.0
    # A video leaves a user's rate-later list once they compared it this many times
    # (Tournesol's default); 0 keeps it until removed by hand.
    rate_later_auto_remove: int = 4
    # Account mail (app/accounts): SMTP server (smtp://user:pass@host:port, smtps:// for
    # TLS, ?starttls=true; empty: mails are written to the log), sender, the public
    # address links point to, token lifetimes, the outbox's retries and per-account quota.
    smtp_url: str = ""
    mail_from: str = "Sunrank <noreply@localhost>"
    public_url: str = "http://127.0.0.1:8000"
    email_verify_hours: float = 48.0
    password_reset_minutes: float = 60.0
    mail_max_attempts: int = 8
    mail_retry_seconds: float = 30.0  # first retry after a failure; doubles
    mail_poll_seconds: float = 10.0  # outbox polling (mail queued by another process)
    mail_timeout_seconds: float = 20.0
    mails_per_account_per_hour: int = 10
    # Pretrust of a verified address on an accepted email domain (Tournesol: 0.8).
    email_domain_pretrust: float = 0.8
    # Bearer tokens (sessions) expire this long after sign-in.
    session_days: float = 30.0
    # Abuse controls (app/accounts/abuse.py): failed sign-ins per hour per (account,
    # address) and per address (never per account alone: no lockout by a stranger),
    # and new accounts per address per hour.
    login_failures_per_account_ip: int = 10
    login_failures_per_ip: int = 100
    registrations_per_ip_per_hour: int = 20
    # A deleted account's username may be taken again after this many days.
    username_reuse_days: float = 30.0

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite://{(self.data_dir / 'sunrank.sqlite3').resolve()}"

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(days=self.session_days)

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


_Number = TypeVar("_Number", int, float)


def _number(kind: Callable[[str], _Number], raw: str) -> _Number:
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"expected {'an integer' if kind is int else 'a number'}") from None


def _port(raw: str) -> int:
    value = _number(int, raw)
    if not 0 < value < 65536:
        raise ValueError("expected a port number between 1 and 65535")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(_number(int, raw))
    if value < 0:
        raise ValueError("expected a number ≥ 0")
    return value


def _positive(kind: Callable[[str], _Number]) -> Callable[[str], _Number]:
    def parse(raw: str) -> _Number:
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


def _persisted_mode(raw: str) -> str:
    if raw.strip().lower() not in ("on", "off", "allowlist"):
        raise ValueError("expected on, off or allowlist")
    return raw.strip().lower()


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _names(raw: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in raw.split(",") if n.strip())


def _networks(raw: str) -> tuple[str, ...]:
    names = _names(raw)
    for name in names:
        if name == "*":
            continue
        try:
            ipaddress.ip_network(name, strict=False)
        except ValueError:
            raise ValueError(f"expected IP addresses or networks (or *), got {name!r}") from None
    return names


def _origins(raw: str) -> tuple[str, ...]:
    """Origins as browsers send them (scheme://host[:port], lower case, no path)."""
    origins: list[str] = []
    for name in _names(raw):
        if name == "*":
            origins.append(name)
            continue
        parts = urlsplit(name)
        try:
            port = parts.port
        except ValueError:
            port = None
            parts = parts._replace(netloc="")
        if (
            parts.scheme.lower() not in HTTP_SCHEMES
            or not parts.hostname
            or (parts.path not in ("", "/") or parts.query or parts.fragment or parts.username)
        ):
            raise ValueError(f"expected origins like https://app.example.org (or *), got {name!r}")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        scheme = parts.scheme.lower()
        default = {"http": 80, "https": 443}[scheme]  # browsers leave it out of Origin
        origins.append(f"{scheme}://{host}" + (f":{port}" if port and port != default else ""))
    return tuple(origins)


def _unit(raw: str) -> float:
    value = _number(float, raw)
    if not 0 <= value <= 1:
        raise ValueError("expected a number between 0 and 1")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(_number(float, raw))
    if value < 0:
        raise ValueError("expected a number ≥ 0")
    return value


def _smtp_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("expected smtp://[user:pass@]host[:port] or smtps://…")
    return raw


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
    "learner_threads": _non_negative_int,
    "checkpoint_every_seconds": _positive(float),
    "publish_every_seconds": _positive(float),
    "export_every_seconds": _positive(float),
    "rate_limit_per_minute": _positive(int),
    "admin_usernames": _names,
    "cache_ttl_seconds": _positive(float),
    "cache_enabled": _bool,
    "cache_namespace": str,
    "ranking_snapshot_ttl_seconds": _positive(float),
    "video_catalog_max_age_seconds": _non_negative_float,
    "max_body_bytes": _positive(int),
    "max_query_bytes": _positive(int),
    "max_query_tokens": _positive(int),
    "max_query_depth": _positive(int),
    "max_query_aliases": _positive(int),
    "max_query_cost": _positive(int),
    "forwarded_allow_ips": _networks,
    "rate_limit_per_ip_per_minute": _positive(int),
    "ws_max_connections_per_ip": _positive(int),
    "ws_max_operations": _positive(int),
    "ws_idle_seconds": _positive(float),
    "ws_send_timeout_seconds": _positive(float),
    "ws_init_timeout_seconds": _positive(float),
    "cors_origins": _origins,
    "cors_max_age_seconds": _non_negative_int,
    "persisted_queries": _persisted_mode,
    "persisted_queries_file": str,
    "persisted_queries_max": _positive(int),
    "graphiql_assets": Path,
    "youtube_api_key": str,
    "youtube_api_url": _url(HTTP_SCHEMES),
    "youtube_oembed_url": _url(HTTP_SCHEMES),
    "youtube_timeout_seconds": _positive(float),
    "youtube_daily_quota": _positive(int),
    "metadata_worker": _bool,
    "metadata_retry_seconds": _positive(float),
    "metadata_refresh_min_seconds": _positive(float),
    "rate_later_auto_remove": _non_negative_int,
    "smtp_url": _smtp_url,
    "mail_from": str,
    "email_verify_hours": _positive(float),
    "password_reset_minutes": _positive(float),
    "mail_max_attempts": _positive(int),
    "mail_retry_seconds": _positive(float),
    "mail_poll_seconds": _positive(float),
    "mail_timeout_seconds": _positive(float),
    "mails_per_account_per_hour": _positive(int),
    "email_domain_pretrust": _unit,
    "session_days": _positive(float),
    "login_failures_per_account_ip": _positive(int),
    "login_failures_per_ip": _positive(int),
    "registrations_per_ip_per_hour": _positive(int),
    "username_reuse_days": _non_negative_float,
    "public_url": _url(HTTP_SCHEMES),
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build the settings from ``environ`` (default: ``os.environ``), then ``overrides``."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}  # each parser returns its field's type
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
    settings = Settings(**values)
    if (
        settings.persisted_queries == "allowlist"
        and not Path(settings.persisted_queries_file or ".").is_file()
    ):
        raise ConfigError(
            f"SUNRANK_PERSISTED_QUERIES_FILE={settings.persisted_queries_file!r}: "
            "expected the file of registered operations (SUNRANK_PERSISTED_QUERIES=allowlist)"
        )
    return settings
