"""A local HTTP server on 127.0.0.1 that speaks YouTube's Data API v3
(``/youtube/v3/videos``) and oEmbed (``/oembed``), with canned answers shaped like
the real ones, and their failures on demand: quota 403, unknown ids, timeouts (a
slow handler), malformed JSON, 500s. Runs in a thread; every request is logged."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "AIzaSyTEST-fake-key-for-sunrank-tests"
SLOW_SECONDS = 3.0

# Failure modes, queued with FakeYouTube.fail_next or keyed to an id with fail_ids.
QUOTA, SERVER_ERROR, SLOW, MALFORMED, BAD_KEY = "quota", "500", "slow", "malformed", "bad_key"


def video_item(
    youtube_id: str,
    title: str,
    channel: str,
    *,
    description: str = "",
    tags: list[str] | None = None,
    published: str = "2023-03-14T15:09:26Z",
    duration: str = "PT12M34S",
    audio_language: str | None = None,
    default_language: str | None = None,
    privacy: str = "public",
    embeddable: bool = True,
) -> dict[str, Any]:
    """One ``videos.list`` item as YouTube returns it for part=snippet,contentDetails,status."""
    snippet: dict[str, Any] = {
        "publishedAt": published,
        "channelId": "UC" + youtube_id * 2,
        "title": title,
        "description": description,
        "thumbnails": {
            "default": {
                "url": f"https://i.ytimg.com/vi/{youtube_id}/default.jpg",
                "width": 120,
                "height": 90,
            },
            "medium": {
                "url": f"https://i.ytimg.com/vi/{youtube_id}/mqdefault.jpg",
                "width": 320,
                "height": 180,
            },
        },
        "channelTitle": channel,
        "categoryId": "27",
        "liveBroadcastContent": "none",
        "localized": {"title": title, "description": description},
    }
    if tags is not None:
        snippet["tags"] = tags
    if default_language:
        snippet["defaultLanguage"] = default_language
    if audio_language:
        snippet["defaultAudioLanguage"] = audio_language
    return {
        "kind": "youtube#video",
        "etag": f"etag-{youtube_id}",
        "id": youtube_id,
        "snippet": snippet,
        "contentDetails": {
            "duration": duration,
            "dimension": "2d",
            "definition": "hd",
            "caption": "true",
            "licensedContent": True,
            "contentRating": {},
            "projection": "rectangular",
        },
        "status": {
            "uploadStatus": "processed",
            "privacyStatus": privacy,
            "license": "youtube",
            "embeddable": embeddable,
            "publicStatsViewable": True,
            "madeForKids": False,
        },
    }


def catalog() -> dict[str, dict[str, Any]]:
    items = [
        video_item(
            "dQw4w9WgXcQ", "How democracies decide: a simple explanation", "Civic Lab",
            description="Why voting rules matter, with examples from elections around the world.",
            tags=["democracy", "voting", "explainer"], audio_language="en-US",
            published="2021-06-01T12:00:00Z", duration="PT1H2M3S",
        ),
        video_item(
            "Frc1111111A", "Le réchauffement climatique expliqué en dix minutes",
            "Sciences Étonnantes",
            description="Une explication claire des causes et des conséquences du "
            "réchauffement climatique, et de ce que nous pouvons faire.",
            tags=["climat"], published="2024-02-29T23:30:00+01:00", duration="PT10M",
        ),
        video_item(
            "NoEmbed0001", "Concert recording", "Some Label", embeddable=False,
            default_language="de", duration="PT3M", tags=[],
        ),
        video_item(
            "Private0001", "Private upload", "Someone", privacy="private", duration="PT1M",
        ),
        video_item(
            "NoTags00001", "Short clip", "Anon", duration="P0D", published="2025-01-01T00:00:00Z",
        ),
    ]  # fmt: skip
    return {item["id"]: item for item in items}


def quota_body() -> dict[str, Any]:
    message = (
        "The request cannot be completed because you have exceeded your "
        '<a href="/youtube/v3/getting-started#quota">quota</a>.'
    )
    return {
        "error": {
            "code": 403,
            "message": message,
            "errors": [{"message": message, "domain": "youtube.quota", "reason": "quotaExceeded"}],
        }
    }


def bad_key_body() -> dict[str, Any]:
    message = "API key not valid. Please pass a valid API key."
    return {
        "error": {
            "code": 400,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "badRequest"}],
            "status": "INVALID_ARGUMENT",
        }
    }


@dataclass
class FakeYouTube:
    url: str = ""
    videos: dict[str, dict[str, Any]] = field(default_factory=catalog)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)  # failure modes, one per request
    fail_ids: dict[str, str] = field(default_factory=dict)  # id → failure mode, every time
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return f"{self.url}/youtube/v3"

    @property
    def oembed_url(self) -> str:
        return f"{self.url}/oembed"

    def calls(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes, float]:
        """(status, body, seconds to wait first) for one request."""
        if path == "/youtube/v3/videos":
            ids = query.get("id", [""])[0].split(",")
        elif path == "/oembed":
            watch = urlsplit(query.get("url", [""])[0])
            ids = parse_qs(watch.query).get("v", [""])
        else:
            return 404, b"Not Found", 0.0
        with self.lock:
            self.requests.append({"path": path, "ids": ids, "query": query})
            mode = self.fail_next.pop(0) if self.fail_next else None
            mode = mode or next((self.fail_ids[i] for i in ids if i in self.fail_ids), None)
        if mode == SLOW:
            return 200, b"{}", SLOW_SECONDS
        if mode == SERVER_ERROR:
            return 500, b"<html><title>Error 500 (Server Error)!!1</title></html>", 0.0
        if mode == MALFORMED:
            return 200, b'{"kind": "youtube#videoListResponse", "items": [', 0.0
        if path == "/youtube/v3/videos":
            if mode == QUOTA:
                return 403, json.dumps(quota_body()).encode(), 0.0
            if mode == BAD_KEY or query.get("key") != [API_KEY]:
                return 400, json.dumps(bad_key_body()).encode(), 0.0
            items = [
                self.videos[i]
                for i in ids
                if i in self.videos and self.videos[i]["status"]["privacyStatus"] != "private"
            ]  # fmt: skip  (like YouTube, a key never sees private videos)
            body = {
                "kind": "youtube#videoListResponse",
                "etag": "list-etag",
                "items": items,
                "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
            }
            return 200, json.dumps(body).encode(), 0.0
        if mode == QUOTA:
            return 429, b"Too Many Requests", 0.0
        item = self.videos.get(ids[0])
        if item is None:
            return 404, b"Not Found", 0.0
        if item["status"]["privacyStatus"] == "private":
            return 401, b"Unauthorized", 0.0
        if not item["status"]["embeddable"]:
            return 403, b"Forbidden", 0.0
        snippet = item["snippet"]
        body = {
            "title": snippet["title"],
            "author_name": snippet["channelTitle"],
            "author_url": f"https://www.youtube.com/@{snippet['channelTitle'].replace(' ', '')}",
            "type": "video",
            "height": 113,
            "width": 200,
            "version": "1.0",
            "provider_name": "YouTube",
            "provider_url": "https://www.youtube.com/",
            "thumbnail_height": 360,
            "thumbnail_width": 480,
            "thumbnail_url": f"https://i.ytimg.com/vi/{ids[0]}/hqdefault.jpg",
            "html": f'<iframe width="200" height="113" src="https://www.youtube.com/embed/{ids[0]}'
            '?feature=oembed" frameborder="0" allowfullscreen></iframe>',
        }
        return 200, json.dumps(body).encode(), 0.0


def _handler(fake: FakeYouTube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, body, delay = fake.answer(parts.path, parse_qs(parts.query))
            if delay:
                time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=UTF-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def serve_fake_youtube() -> Iterator[FakeYouTube]:
    fake = FakeYouTube()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
