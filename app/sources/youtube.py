"""A YouTube metadata client: the Data API v3 with a key, oEmbed without one.

- Data API: ``GET {api_url}/videos?part=snippet,contentDetails,status&id=a,b,…&key=K``,
  up to 50 ids per call, 1 quota unit per call. Ids missing from ``items`` are
  unknown to YouTube (deleted, or private: the API hides both from a key).
- oEmbed: ``GET {oembed_url}?url=https://www.youtube.com/watch?v=ID&format=json``,
  one id per call, no key, no quota: title and channel only. 404 means unknown, 401
  private, 403 not embeddable.

Failures are typed (:class:`YouTubeError` and its subclasses) so the queue can tell
a spent quota (stop until it resets) from a passing failure (retry that batch
later). Nothing here knows the database or GraphQL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from app.sources import language

BATCH_SIZE = 50  # videos.list accepts at most 50 ids
OEMBED_CONCURRENCY = 4
WATCH_URL = "https://www.youtube.com/watch?v={}"
_DURATION = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?"
)
_QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded"}


class Availability(StrEnum):
    OK = "ok"
    DELETED = "deleted"  # unknown to YouTube: removed, or never existed
    PRIVATE = "private"
    NOT_EMBEDDABLE = "not_embeddable"  # watchable on YouTube only


class Source(StrEnum):
    DATA_API = "youtube_api"
    OEMBED = "oembed"


@dataclass(frozen=True)
class VideoMetadata:
    """What the source says of one video; None: the source does not say."""

    youtube_id: str
    source: Source
    availability: Availability
    title: str | None = None
    uploader: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    language: str | None = None
    duration_s: int | None = None
    published_at: datetime | None = None


_OEMBED_GONE = {
    404: Availability.DELETED,
    401: Availability.PRIVATE,
    403: Availability.NOT_EMBEDDABLE,  # the owner disabled embedding
}


class YouTubeError(Exception):
    """The source could not answer; ``retryable``: worth trying again later."""

    retryable = True


class QuotaExceeded(YouTubeError):
    """The API key's daily quota is spent (403 quotaExceeded): wait for its reset."""


class UnknownVideo(YouTubeError):
    """YouTube does not know this id (deleted or never existed)."""

    retryable = False


class SourceTimeout(YouTubeError):
    """No answer within the configured timeout."""


class ServerError(YouTubeError):
    """A 5xx answer, or the connection failed."""


class MalformedResponse(YouTubeError):
    """The answer is not the JSON the API documents."""


class RequestRejected(YouTubeError):
    """A 4xx other than quota: a bad or restricted key, a bad request."""


def parse_duration(value: str | None) -> int | None:
    """Seconds in an ISO 8601 duration (``PT1H2M3S``, ``P1DT2S``, ``P0D``)."""
    if not value or not (match := _DURATION.fullmatch(value)) or value in ("P", "PT"):
        return None
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return (
        parts.get("w", 0) * 604_800 + parts.get("d", 0) * 86_400
        + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
    )  # fmt: skip


def parse_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedResponse(f"not a date: {value!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def parse_item(item: Any) -> VideoMetadata:
    """One ``videos.list`` item."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise MalformedResponse("a video item without an id")
    snippet, details, status = (item.get(k) or {} for k in ("snippet", "contentDetails", "status"))
    if not all(isinstance(x, dict) for x in (snippet, details, status)):
        raise MalformedResponse(f"video {item['id']}: snippet/contentDetails/status not objects")
    title, description = _text(snippet.get("title")), _text(snippet.get("description"))
    declared = language.normalize(
        _text(snippet.get("defaultAudioLanguage")) or _text(snippet.get("defaultLanguage"))
    )
    tags = snippet.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise MalformedResponse(f"video {item['id']}: tags is not a list of strings")
    if status.get("privacyStatus") == "private":
        availability = Availability.PRIVATE
    elif status.get("uploadStatus") in ("deleted", "rejected", "failed"):
        availability = Availability.DELETED
    elif status.get("embeddable") is False:
        availability = Availability.NOT_EMBEDDABLE
    else:
        availability = Availability.OK
    return VideoMetadata(
        youtube_id=item["id"],
        source=Source.DATA_API,
        availability=availability,
        title=title,
        uploader=_text(snippet.get("channelTitle")),
        description=description,
        tags=tags,
        language=declared or language.detect(title, description),
        duration_s=parse_duration(details.get("duration")),
        published_at=parse_datetime(snippet.get("publishedAt")),
    )


def _error_reasons(response: httpx.Response) -> tuple[set[str], str]:
    """Google's error body: ``{"error": {"message", "errors": [{"reason"}]}}``."""
    try:
        error = response.json().get("error") or {}
        reasons = {e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)}
        return {r for r in reasons if isinstance(r, str)}, str(error.get("message") or "")
    except (ValueError, AttributeError):
        return set(), response.text[:200]


class YouTubeClient:
    """Async client; one per worker or command (it holds a connection pool)."""

    def __init__(
        self,
        *,
        api_key: str = "",
        api_url: str = "https://www.googleapis.com/youtube/v3",
        oembed_url: str = "https://www.youtube.com/oembed",
        timeout: float = 10.0,
    ):
        self.api_key, self.api_url, self.oembed_url = api_key, api_url.rstrip("/"), oembed_url
        self._http = httpx.AsyncClient(
            timeout=timeout, headers={"user-agent": "sunrank (+video metadata)"}
        )

    @classmethod
    def from_settings(cls, settings: Any) -> YouTubeClient:
        return cls(
            api_key=settings.youtube_api_key,
            api_url=settings.youtube_api_url,
            oembed_url=settings.youtube_oembed_url,
            timeout=settings.youtube_timeout_seconds,
        )

    @property
    def source(self) -> Source:
        return Source.DATA_API if self.api_key else Source.OEMBED

    @property
    def batch_size(self) -> int:
        return BATCH_SIZE if self.api_key else OEMBED_CONCURRENCY

    def cost(self, n_ids: int) -> int:
        """Quota units that fetching ``n_ids`` ids spends (oEmbed has no quota)."""
        return -(-n_ids // BATCH_SIZE) if self.api_key else 0

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> YouTubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def fetch(self, youtube_ids: Iterable[str]) -> dict[str, VideoMetadata]:
        """Metadata of each id; an id YouTube does not know comes back DELETED.

        With a key: one ``videos.list`` call per 50 ids. Without: oEmbed, a few ids
        at a time. Raises a :class:`YouTubeError` if any call fails.
        """
        ids = list(dict.fromkeys(youtube_ids))
        out: dict[str, VideoMetadata] = {}
        if self.api_key:
            for start in range(0, len(ids), BATCH_SIZE):
                out.update(await self._videos_list(ids[start : start + BATCH_SIZE]))
            return out
        semaphore = asyncio.Semaphore(OEMBED_CONCURRENCY)

        async def one(youtube_id: str) -> VideoMetadata:
            async with semaphore:
                return await self._oembed(youtube_id)

        # The first failure cancels the calls still running (none is left unobserved).
        tasks = [asyncio.ensure_future(one(i)) for i in ids]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if task.done() and not task.cancelled() and (exc := task.exception()) is not None:
                raise exc
        return {m.youtube_id: m for m in (task.result() for task in tasks)}

    async def video(self, youtube_id: str) -> VideoMetadata:
        """One video; :class:`UnknownVideo` when YouTube does not know it."""
        meta = (await self.fetch([youtube_id]))[youtube_id]
        if meta.availability is Availability.DELETED:
            raise UnknownVideo(f"YouTube does not know the video {youtube_id!r}")
        return meta

    async def _get(self, url: str, params: dict[str, str]) -> httpx.Response:
        try:
            return await self._http.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise SourceTimeout(f"no answer from {url} in time") from exc
        except httpx.HTTPError as exc:
            raise ServerError(f"{url}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise MalformedResponse(
                f"{response.url.copy_with(query=None)}: not JSON: {response.text[:80]!r}"
            ) from None

    async def _videos_list(self, ids: list[str]) -> dict[str, VideoMetadata]:
        response = await self._get(
            f"{self.api_url}/videos",
            {"part": "snippet,contentDetails,status", "id": ",".join(ids), "key": self.api_key,
             "maxResults": str(BATCH_SIZE)},
        )  # fmt: skip
        if response.status_code >= 500:
            raise ServerError(f"YouTube Data API answered {response.status_code}")
        if response.status_code >= 400:
            reasons, message = _error_reasons(response)
            if reasons & _QUOTA_REASONS:
                raise QuotaExceeded(f"YouTube Data API quota exceeded: {message}")
            raise RequestRejected(
                f"YouTube Data API answered {response.status_code} "
                f"({', '.join(sorted(reasons)) or 'no reason'}): {message}"
            )
        body = self._json(response)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise MalformedResponse("YouTube Data API answer without an items list")
        # Off the event loop: language detection loads its model (~2 s) on first use.
        parsed = await asyncio.to_thread(lambda: [parse_item(item) for item in items])
        found = {m.youtube_id: m for m in parsed}
        return {
            i: found.get(i) or VideoMetadata(i, Source.DATA_API, Availability.DELETED) for i in ids
        }

    async def _oembed(self, youtube_id: str) -> VideoMetadata:
        response = await self._get(
            self.oembed_url, {"url": WATCH_URL.format(youtube_id), "format": "json"}
        )
        status = response.status_code
        if status >= 500:
            raise ServerError(f"YouTube oEmbed answered {status}")
        if status in _OEMBED_GONE:
            return VideoMetadata(youtube_id, Source.OEMBED, _OEMBED_GONE[status])
        if status == 429:
            raise QuotaExceeded("YouTube oEmbed is rate limiting (429)")
        if status >= 400:
            raise RequestRejected(f"YouTube oEmbed answered {status} for {youtube_id!r}")
        body = self._json(response)
        if not isinstance(body, dict) or not isinstance(body.get("title"), str):
            raise MalformedResponse(f"YouTube oEmbed answer for {youtube_id!r} has no title")
        title = _text(body["title"])
        return VideoMetadata(
            youtube_id=youtube_id,
            source=Source.OEMBED,
            availability=Availability.OK,
            title=title,
            uploader=_text(body.get("author_name")),
            language=await asyncio.to_thread(language.detect, title),
        )
