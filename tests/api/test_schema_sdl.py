"""The committed SDL (schema.graphql) matches the code.

Regenerate it with ``.venv/bin/python -m app.schema > schema.graphql``.
"""

from app.schema import sdl
from tests.conftest import ROOT


def test_committed_sdl_matches_the_code():
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == sdl(), (
        "schema.graphql is out of date: run `.venv/bin/python -m app.schema > schema.graphql`"
    )
