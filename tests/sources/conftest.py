from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sources.fake_youtube import FakeYouTube, serve_fake_youtube


@pytest.fixture
def fake_youtube() -> Iterator[FakeYouTube]:
    with serve_fake_youtube() as fake:
        yield fake
