"""The ``sunrank`` command line (also ``python -m app``).

Commands stay quick to start: heavy modules (TensorFlow, the web stack) are imported
inside the command that needs them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from app.config import ConfigError, Settings, load_settings

DEMO_DATASET = (
    Path(__file__).resolve().parent.parent / "data" / "tournesol" / "tiny_tournesol_2024-01"
)
log = logging.getLogger("sunrank")


MIGRATE_LOCK = 0x53554E4D  # "SUNM": PostgreSQL advisory lock held while migrating


async def _migrate(settings: Settings) -> None:
    from app.db.connection import migrate

    if settings.db_url.startswith("sqlite:"):
        await migrate(settings.db_url)
        return
    # Replicas started together (compose, a rolling deploy) would race to apply the
    # same migration: the first one applies it under the lock, the others find none.
    import asyncpg

    conn = await asyncpg.connect("postgresql://" + settings.db_url.split("://", 1)[1])
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK)
        await migrate(settings.db_url)
    finally:
        await conn.close()  # ends the session, releasing the lock


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(_migrate(settings))
    print(f"database is up to date: {_safe_url(settings.db_url)}")
    return 0


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('@', 1)[1]}"


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from app.datasets.importer import ImportAborted, import_dataset
    from app.datasets.reader import DatasetError, read_dataset
    from app.db.connection import database

    try:
        dataset = read_dataset(args.path, progress=not args.quiet)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for bad in dataset.bad_rows[: args.show_bad]:
        print(f"bad row: {bad}", file=sys.stderr)
    if len(dataset.bad_rows) > args.show_bad:
        print(f"... and {len(dataset.bad_rows) - args.show_bad} more bad rows", file=sys.stderr)

    async def run() -> int:
        async with database(settings):
            try:
                report = await import_dataset(dataset, strict=args.strict, progress=not args.quiet)
            except ImportAborted as exc:
                print(f"error: --strict: {exc}", file=sys.stderr)
                return 1
        print(f"imported {args.path}: {report.summary()}")
        return 0

    return asyncio.run(run())


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from app.datasets.exporter import export_dataset
    from app.db.connection import database

    async def run() -> dict[str, int]:
        async with database(settings):
            return await export_dataset(args.out, generated_by=settings.public_url)

    try:
        counts = asyncio.run(run())
    except OSError as exc:  # the database was read; the file could not be written
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from app.db.connection import database
    from app.engine.leader import LeaderLock, LeaderLockError
    from app.engine.service import LearnerService

    async def run() -> None:
        # A running server owns the learner and its checkpoints: ask it instead.
        leader = LeaderLock(settings.db_url, settings.data_dir)
        try:
            await leader.acquire()
        except LeaderLockError as exc:
            raise LeaderLockError(f"{exc}; while it runs, use the admin `refit` mutation") from None
        try:
            await fit()
        finally:
            await leader.release()

    async def fit() -> None:
        async with database(settings):
            service = LearnerService(settings)
            with tqdm(desc="full fit", unit=" it", disable=args.quiet) as bar:

                def progress(iteration: int, objective: float, grad: float) -> None:
                    bar.set_postfix_str(f"J={objective:.6g} max|grad|={grad:.2e}")
                    bar.update(iteration + 1 - bar.n)

                restored = await service.start(background=False, progress=progress)
                if restored:  # warm start from the checkpoint, then fit to tolerance
                    await service.refit(progress)
            await service.stop()  # checkpoint + scores written to the database
            report = service.last_fit
            print(
                f"fitted {service.learner.counts['active_rows']} comparison rows up to event "
                f"{service.watermark}: {report.iterations} iterations, "
                f"max|grad| {report.grad_norm:.2e} (tolerance {service.hparams.fit_gtol:g}), "
                f"{report.seconds:.1f} s; checkpoint in {settings.checkpoint_dir}"
            )

    asyncio.run(run())
    return 0


def cmd_refresh_metadata(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from app.db.connection import database
    from app.sources.refresh import refresh

    async def run() -> int:
        async with database(settings):
            with tqdm(desc="video metadata", unit=" videos", disable=args.quiet) as bar:
                report = await refresh(
                    settings, everything=args.all, limit=args.limit,
                    progress=bar.update, on_total=lambda n: bar.reset(total=n),
                )  # fmt: skip
        source = "YouTube Data API" if settings.youtube_api_key else "oEmbed (no API key)"
        print(f"{source}: {report.summary()}")
        for error in dict.fromkeys(report.errors):
            print(f"error: {error}", file=sys.stderr)
        return 1 if report.failed or report.quota_until else 0

    return asyncio.run(run())


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    """Create an account; the password is read from standard input (one line)."""
    from app import auth
    from app.db import writes
    from app.db.connection import database
    from app.db.validation import InvalidInput

    if sys.stdin.isatty() and not args.password_stdin:
        import getpass

        password = getpass.getpass(f"password for {args.username}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if args.pretrust is not None and not 0.0 <= args.pretrust <= 1.0:
        print("error: --pretrust must be between 0 and 1", file=sys.stderr)
        return 1

    async def run() -> int:
        async with database(settings):
            try:
                user = await auth.create_user(args.username, password, is_admin=args.admin)
            except InvalidInput as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 1
            if args.pretrust:  # through the write path, with its event for the learner
                await writes.set_pretrust(user.id, args.pretrust)
        role = "admin" if args.admin else "user"
        print(
            f"created {role} {args.username!r}"
            + (f" with pretrust {args.pretrust:g}" if args.pretrust else "")
        )
        return 0

    return asyncio.run(run())


def cmd_domains(args: argparse.Namespace, settings: Settings) -> int:
    """List, accept or reject trusted email domains (app/accounts/domains.py)."""
    from app.accounts import domains
    from app.db.connection import database
    from app.db.validation import InvalidInput

    async def run() -> int:
        async with database(settings):
            try:
                if args.action == "list":
                    for row, n in await domains.listing(args.status):
                        print(f"{row.domain}\t{row.status}\t{n} verified account(s)")
                    return 0
                status = {"add": domains.ACCEPTED, "reject": domains.REJECTED}[args.action]
                changed = []
                for name in args.domains:
                    changed += await domains.set_status(settings, name, status)
            except InvalidInput as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 1
        # the server's learner follows the event log: trust moves there too
        n = len(args.domains)
        print(f"{n} domain(s) {status}; pretrust changed for {len(changed)} account(s)")
        return 0

    return asyncio.run(run())


async def _load_demo_if_empty(settings: Settings, path: Path) -> None:
    from app.datasets.importer import import_dataset
    from app.datasets.reader import read_dataset
    from app.db.connection import database
    from app.db.models import Comparison

    async with database(settings):
        if await Comparison.exists():
            return
        log.info("empty database: loading the demo dataset %s", path)
        report = await import_dataset(read_dataset(path, progress=True), progress=True)
        log.info("demo data loaded: %s", report.summary())


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    sqlite = settings.db_url.startswith("sqlite:")
    if sqlite and args.workers > 1:  # checked before anything slow is imported
        print(
            f"sunrank: --workers {args.workers}: SQLite allows one server process; "
            "run several on PostgreSQL (SUNRANK_DATABASE_URL=postgres://...)",
            file=sys.stderr,
        )
        return 2

    from app.engine.leader import LeaderLock

    async def check_leader() -> None:  # fail before uvicorn, with one clear line
        lock = LeaderLock(settings.db_url, settings.data_dir)
        await lock.acquire()
        await lock.release()

    if sqlite:  # on PostgreSQL any number of processes serve (one leads refits)
        asyncio.run(check_leader())
    asyncio.run(_migrate(settings))
    if args.demo:
        asyncio.run(_load_demo_if_empty(settings, Path(args.demo_path)))
    if args.workers == 1:
        from app.server import run_server

        run_server(settings)
        return 0
    return _serve_workers(settings, args.workers)


def _serve_workers(settings: Settings, workers: int) -> int:
    """N uvicorn worker processes sharing one listening socket (uvicorn's supervisor:
    it restarts a worker that dies, SIGHUP replaces them one by one, SIGTERM stops all).
    Each worker is a full server with its own learner following the event log."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from app.server import uvicorn_config

    # The workers are fresh interpreters (spawn) that read their settings from the
    # environment: the command line's --host/--port go there too.
    os.environ["SUNRANK_HOST"], os.environ["SUNRANK_PORT"] = settings.host, str(settings.port)
    config = uvicorn_config(
        "app.__main__:worker_app", settings, factory=True, workers=workers
    )  # fmt: skip
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        print("sunrank: a worker failed to start (its error is logged above)", file=sys.stderr)
        return 1
    return 0


def worker_app() -> Any:
    """The app of one ``--workers`` process, with the CLI's logging set up in it."""
    from app.main import create_app
    from app.ops import setup_logging

    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {raw!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {raw!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sunrank",
        description="Collaborative comparison-based ranking server. "
        "Settings come from SUNRANK_* environment variables (see README.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP server (migrates the database first)")
    serve.add_argument("--host", help="bind address (default: SUNRANK_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: SUNRANK_PORT or 8000)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="load the bundled Tournesol sample into an empty database",
    )
    serve.add_argument(
        "--demo-path",
        default=os.environ.get("SUNRANK_DEMO_DATASET") or str(DEMO_DATASET),
        help="dataset --demo loads (default: SUNRANK_DEMO_DATASET or the bundled sample)",
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=os.environ.get("SUNRANK_WORKERS") or "1",  # argparse converts it
        metavar="N",
        help="server processes sharing the port (default: SUNRANK_WORKERS or 1); "
        "more than 1 needs PostgreSQL",
    )
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(func=cmd_migrate)

    imp = sub.add_parser("import-tournesol", help="import a Tournesol public dataset (dir or zip)")
    imp.add_argument("path", help="dataset directory or .zip")
    imp.add_argument("--strict", action="store_true", help="abort, writing nothing, on any bad row")
    imp.add_argument("--quiet", action="store_true", help="no progress bars")
    imp.add_argument(
        "--show-bad",
        type=int,
        default=20,
        metavar="N",
        help="print at most N bad rows (default 20)",
    )
    imp.set_defaults(func=cmd_import)

    train = sub.add_parser(
        "train", help="full fit of the learner from the database (warm-started from the checkpoint)"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    exp = sub.add_parser(
        "export-tournesol",
        help="write the public dataset (Tournesol's format; the bytes GET /exports/all.zip serves)",
    )
    exp.add_argument("out", help="output .zip path")
    exp.set_defaults(func=cmd_export)

    refresh = sub.add_parser(
        "refresh-metadata",
        help="fetch video metadata from YouTube (the server also does it in the background)",
    )
    which = refresh.add_mutually_exclusive_group()
    which.add_argument(
        "--stale", action="store_true",
        help="videos never fetched or due by the refresh rule (the default)",
    )  # fmt: skip
    which.add_argument("--all", action="store_true", help="every video")
    refresh.add_argument("--limit", type=_positive_int, metavar="N", help="at most N videos")
    refresh.add_argument("--quiet", action="store_true", help="no progress bar")
    refresh.set_defaults(func=cmd_refresh_metadata)

    create = sub.add_parser(
        "create-user", help="create an account; the password is read from standard input"
    )
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="with administrator rights")
    create.add_argument("--pretrust", type=float, help="initial pretrust, 0..1 (default 0)")
    create.add_argument(
        "--password-stdin", action="store_true",
        help="read the password from stdin even on a terminal (no prompt)",
    )  # fmt: skip
    create.set_defaults(func=cmd_create_user)

    domains = sub.add_parser(
        "domains",
        help="trusted email domains: a verified address on an accepted one earns pretrust",
    )
    actions = domains.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="domains with their status and verified accounts")
    listing.add_argument("--status", choices=("accepted", "rejected", "pending"))
    for action, text in (("add", "accept"), ("reject", "reject")):
        one = actions.add_parser(action, help=f"{text} domains (pretrust follows at once)")
        one.add_argument("domains", nargs="+", metavar="DOMAIN")
    domains.set_defaults(func=cmd_domains)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {k: v for k in ("host", "port") if (v := getattr(args, k, None)) is not None}
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"sunrank: configuration error: {exc}", file=sys.stderr)
        return 2
    from app.ops import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    try:
        return args.func(args, settings)
    except Exception as exc:
        message = _expected_failure(exc, settings)
        if message is None:
            raise
        print(f"sunrank: {message}", file=sys.stderr)
        return 1


def _expected_failure(exc: Exception, settings: Settings) -> str | None:
    """One line for failures an operator can fix (no traceback), else None."""
    from tortoise.exceptions import DBConnectionError

    from app.engine.leader import LeaderLockError

    if isinstance(exc, LeaderLockError):
        return str(exc)
    import asyncpg

    unreachable = (
        OSError,
        DBConnectionError,
        asyncio.TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.InvalidCatalogNameError,
        asyncpg.InvalidPasswordError,
        asyncpg.InvalidAuthorizationSpecificationError,
    )
    if isinstance(exc, unreachable):
        return f"cannot use the database {_safe_url(settings.db_url)}: {exc}"
    return None


if __name__ == "__main__":
    sys.exit(main())
