"""The public dataset over HTTP: ``GET /exports/all.zip`` and ``/exports/comparisons.csv``.

A background task of the server builds both with the builder ``sunrank
export-tournesol`` uses (app/datasets/exporter.py), at startup when a file is
missing or older than the period, then every ``SUNRANK_EXPORT_EVERY_SECONDS``. The
files live in ``$SUNRANK_DATA_DIR/exports/``, each replaced atomically (a temporary
file, fsync, rename); a rebuild that gives the same bytes leaves the file, and so
its ``Last-Modified``, alone. Requests only ever read a finished file: the build is
never on the request path, and before the first one the answer is 503.

The build runs in a child process (``python -m app.datasets.exporter``): reading and
decoding every row took the event loop for seconds at a million comparisons, and no
request was answered meanwhile (bench/export_blocking.py). Only the refit leader
builds; on PostgreSQL it stores each file in ``public_export`` (migration 0060), and
the other replicas (:meth:`PublicExports.follow`) copy it into their own data dir
when its ETag differs from theirs, every ``min(period, 30 s)``.

Responses carry a strong ``ETag`` (SHA-256 of the bytes), ``Last-Modified`` (the
file's mtime) and ``Content-Disposition``; ``If-None-Match`` (or, without it,
``If-Modified-Since``) answers 304.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from tortoise import connections

from app.config import Settings
from app.datasets.exporter import Export

log = logging.getLogger("sunrank.exports")

CHUNK = 256 * 1024
RETRY_SECONDS = 60.0  # after a failed build
FOLLOW_SECONDS = 30.0  # how often a follower looks for the leader's newer export


@dataclass(frozen=True)
class Artifact:
    name: str  # under /exports/
    media_type: str
    download_name: str

    def content(self, export: Export) -> bytes:
        return export.zip_bytes if self.name == "all.zip" else export.comparisons_csv


ARTIFACTS = (
    Artifact("all.zip", "application/zip", "sunrank_public_dataset.zip"),
    Artifact("comparisons.csv", "text/csv; charset=utf-8", "sunrank_comparisons.csv"),
)


@dataclass(frozen=True)
class Published:
    """A finished file, as served: its identity on disk and its validators."""

    path: Path
    etag: str
    last_modified: datetime
    size: int
    inode: tuple[int, int]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _write_temp(directory: Path, name: str, data: bytes) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


class PublicExports:
    """The published files, their background builder and their HTTP endpoints."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.directory = settings.data_dir / "exports"
        self.every = settings.export_every_seconds
        self._files: dict[str, Published] = {}
        self._task: asyncio.Task | None = None
        self.builds = 0  # finished builds in this process (changed or not)

    # -- files --------------------------------------------------------------

    def _install(self, artifact: Artifact, path: Path, etag: str) -> None:
        st = path.stat()
        self._files[artifact.name] = Published(
            path=path,
            etag=etag,
            last_modified=datetime.fromtimestamp(int(st.st_mtime), UTC),
            size=st.st_size,
            inode=(st.st_dev, st.st_ino),
        )

    async def load_existing(self) -> float | None:
        """Publish the files a previous run left; the age of the oldest, or None if
        one is missing."""
        ages = []
        for artifact in ARTIFACTS:
            path = self.directory / artifact.name
            if not path.is_file():
                return None
            etag = await asyncio.to_thread(_digest_file, path)
            self._install(artifact, path, etag)
            ages.append(time.time() - path.stat().st_mtime)
        return max(ages)

    async def _publish(self, artifact: Artifact, data: bytes, etag: str) -> bool:
        """Replace the served file unless it already holds these bytes."""
        current = self._files.get(artifact.name)
        if current is not None and current.etag == etag and current.path.is_file():
            return False
        tmp = await asyncio.to_thread(_write_temp, self.directory, artifact.name, data)
        path = self.directory / artifact.name
        # Rename and record in one step of the event loop: a request sees the old
        # file with its validators or the new one with its own, never a mix.
        os.replace(tmp, path)
        self._install(artifact, path, etag)
        return True

    async def rebuild(self) -> Export:
        """Build from the database (in a child process) and publish what changed; on
        PostgreSQL also store it for the other replicas."""
        export = await build_in_child(self.settings)
        shared = _postgres()
        for artifact in ARTIFACTS:
            data = artifact.content(export)
            etag = await asyncio.to_thread(_digest, data)  # tens of MB at scale
            await self._publish(artifact, data, etag)
            if shared:
                await _store(artifact.name, etag, data)
        self.builds += 1
        log.info(
            "public dataset published: %s", ", ".join(f"{n} {k}" for k, n in export.rows.items())
        )
        return export

    # -- schedule -----------------------------------------------------------

    def start(self) -> None:
        """Build on a schedule (the refit leader, or the one SQLite process)."""
        self._replace_task(asyncio.create_task(self._run(), name="public-exports"))

    def follow(self) -> None:
        """Serve what the leader stored in PostgreSQL (a replica that does not lead)."""
        self._replace_task(asyncio.create_task(self._follow(), name="public-exports-follow"))

    def _replace_task(self, task: asyncio.Task) -> None:
        if self._task is not None:  # never two schedules at once, nor an orphan one
            self._task.cancel()
        self._task = task

    async def sync(self) -> int:
        """Fetch the stored export where its ETag differs from the served file; how
        many files changed."""
        changed = 0
        for name, etag, _ in await _stored_etags():
            artifact = next((a for a in ARTIFACTS if a.name == name), None)
            current = self._files.get(name)
            if artifact is None or (current is not None and current.etag == etag):
                continue
            data = await _load(name, etag)
            if data is not None and await self._publish(artifact, data, etag):
                changed += 1
        return changed

    async def reconcile(self) -> float | None:
        """A new leader (PostgreSQL): adopt the stored export where it is newer than
        this data dir's file, store this file where it is newer (or none is stored:
        the first start after migration 0060), so followers need not wait a period.
        Returns the age of the oldest file served, or None if one is missing."""
        stored = {name: (etag, at) for name, etag, at in await _stored_etags()}
        ages = []
        for artifact in ARTIFACTS:
            local = self._files.get(artifact.name)
            row = stored.get(artifact.name)
            if local is not None and row is not None and row[0] == local.etag:
                ages.append(time.time() - local.last_modified.timestamp())
            elif local is not None and (row is None or row[1] < local.last_modified):
                data = await asyncio.to_thread(local.path.read_bytes)
                await _store(artifact.name, local.etag, data, local.last_modified)
                ages.append(time.time() - local.last_modified.timestamp())
            elif row is not None:
                adopted = await _load(artifact.name, row[0])
                if adopted is None:
                    return None  # replaced meanwhile: build
                await self._publish(artifact, adopted, row[0])
                ages.append(time.time() - row[1].timestamp())
            else:
                return None  # nothing to serve: build
        return max(ages)

    async def _follow(self) -> None:
        with contextlib.suppress(OSError):
            await self.load_existing()  # what this data dir holds, at once
        while True:
            try:
                if await self.sync():
                    log.info("public dataset adopted from the leader")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the leader's public dataset failed; retrying")
            await asyncio.sleep(min(self.every, FOLLOW_SECONDS))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # it failed before we stopped it: say so, stop anyway
                log.exception("public dataset task failed")

    async def _run(self) -> None:
        try:
            age = await self.load_existing()
        except OSError:
            log.exception("cannot read the published exports; rebuilding them")
            age = None
        if _postgres():
            try:
                age = await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cannot share the published exports; rebuilding them")
                age = None
        delay = 0.0 if age is None else max(0.0, self.every - age)
        while True:
            await asyncio.sleep(delay)
            try:
                await self.rebuild()
                delay = self.every
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("building the public dataset failed; retrying")
                delay = min(self.every, RETRY_SECONDS)

    # -- HTTP ---------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route(f"/exports/{artifact.name}", self._endpoint(artifact), methods=["GET", "HEAD"])
            for artifact in ARTIFACTS
        ]

    def _endpoint(self, artifact: Artifact):
        async def endpoint(request: Request) -> Response:
            return self._respond(request, artifact)

        return endpoint

    def _respond(self, request: Request, artifact: Artifact) -> Response:
        published = self._files.get(artifact.name)
        if published is None:
            return PlainTextResponse(
                "the public dataset is being built; try again in a minute\n",
                status_code=503,
                headers={"Retry-After": "60"},
            )
        headers = {
            "ETag": f'"{published.etag}"',
            "Last-Modified": format_datetime(published.last_modified, usegmt=True),
            "Cache-Control": "public, no-cache",
        }
        if _not_modified(request, published):
            return Response(status_code=304, headers=headers)
        headers["Content-Disposition"] = f'attachment; filename="{artifact.download_name}"'
        headers["Content-Length"] = str(published.size)
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers, media_type=artifact.media_type)
        try:
            # Opened here, with the validators just read, in the same step of the event
            # loop as a rebuild's rename: the bytes sent are the ones the ETag names.
            handle = published.path.open("rb")
        except OSError:
            log.exception("published export %s is unreadable", published.path)
            return PlainTextResponse("the public dataset is unavailable\n", status_code=503,
                                     headers={"Retry-After": "60"})  # fmt: skip
        return StreamingResponse(_chunks(handle), headers=headers, media_type=artifact.media_type)


async def build_in_child(settings: Settings) -> Export:
    """``python -m app.datasets.exporter`` in a child process: reading and decoding
    every row (seconds at a million comparisons) then holds the child, not this
    event loop (bench/export_blocking.py)."""
    directory = settings.data_dir / "exports"
    directory.mkdir(parents=True, exist_ok=True)
    fd, out = tempfile.mkstemp(dir=directory, prefix=".build.", suffix=".zip")
    os.close(fd)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.datasets.exporter", out, settings.public_url,
            env={**os.environ, "SUNRANK_EXPORT_DB_URL": settings.db_url},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            stdout, stderr = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"export child exited with {proc.returncode}: {tail[0]}")
        summary = json.loads(stdout.decode().strip().splitlines()[-1])
        zip_bytes, csv_bytes = await asyncio.to_thread(_read_zip, Path(out))
    finally:
        Path(out).unlink(missing_ok=True)
    return Export(
        zip_bytes=zip_bytes,
        comparisons_csv=csv_bytes,
        rows={k: int(v) for k, v in summary["rows"].items()},
        data_included_until=datetime.fromisoformat(summary["data_included_until"]),
    )


def _read_zip(path: Path) -> tuple[bytes, bytes]:
    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return data, zf.read("comparisons.csv")


# -- PostgreSQL: the leader's export for every replica (migration 0060) ------------


def _conn() -> Any:
    return connections.get(next(iter(connections.db_config)))  # named after its backend


def _postgres() -> bool:
    return _conn().capabilities.dialect == "postgres"


async def _store(name: str, etag: str, data: bytes, created: datetime | None = None) -> None:
    await _conn().execute_query(
        "INSERT INTO public_export (name, etag, size_bytes, data, created_at) "
        "VALUES ($1, $2, $3, $4, COALESCE($5::timestamptz, now())) "
        "ON CONFLICT (name) DO UPDATE SET etag = EXCLUDED.etag, size_bytes = "
        "EXCLUDED.size_bytes, data = EXCLUDED.data, created_at = EXCLUDED.created_at "
        "WHERE public_export.etag <> EXCLUDED.etag",
        [name, etag, len(data), data, created],
    )


async def _stored_etags() -> list[tuple[str, str, datetime]]:
    _, rows = await _conn().execute_query("SELECT name, etag, created_at FROM public_export")
    return [(row["name"], row["etag"], row["created_at"]) for row in rows]


async def _load(name: str, etag: str) -> bytes | None:
    """The stored bytes if they still carry ``etag`` (else a newer build replaced them
    meanwhile: the next sync takes that one)."""
    _, rows = await _conn().execute_query(
        "SELECT data FROM public_export WHERE name = $1 AND etag = $2", [name, etag]
    )
    return bytes(rows[0]["data"]) if rows else None


async def _chunks(handle: IO[bytes]):
    try:
        while block := await asyncio.to_thread(handle.read, CHUNK):
            yield block
    finally:
        handle.close()


def _not_modified(request: Request, published: Published) -> bool:
    """RFC 9110 §13.2.2: If-None-Match first; If-Modified-Since only without it."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or f'"{published.etag}"' in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False  # an unparsable date is ignored (RFC 9110)
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return published.last_modified <= since
    return False
