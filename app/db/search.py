"""Full-text search over videos' title, channel, description and tags, accent- and
case-insensitive (migration 0020): PostgreSQL's ``simple`` tsvector of the unaccented
text (a GIN index), SQLite's FTS5 with ``remove_diacritics``.

Every word of the query must match the start of a word of the video (prefix
search, as a search box expects: ``pedago`` finds "Pédagogie"). Words are what
``\\w+`` finds, so no operator syntax of either engine ever reaches it.
"""

from __future__ import annotations

import re

from app.db.models import Video

WORD = re.compile(r"\w+")
MAX_WORDS = 16  # a longer query keeps its first words


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)][:MAX_WORDS]


async def matching_ids(text: str) -> list[int]:
    """Ids of the videos matching every word of ``text`` (none for a query without words)."""
    terms = words(text)
    if not terms:
        return []
    conn = Video._meta.db
    if conn.capabilities.dialect == "sqlite":
        query = " ".join('"' + t.replace('"', '""') + '"*' for t in terms)
        sql = "SELECT rowid AS id FROM video_fts WHERE video_fts MATCH ?"
    else:
        query = " & ".join(f"{t}:*" for t in terms)
        sql = (
            "SELECT id FROM video WHERE sunrank_video_document(title, uploader, description, "
            "tags::text) @@ to_tsquery('simple', sunrank_unaccent($1))"
        )
    rows = await conn.execute_query_dict(sql, [query])
    return [int(r["id"]) for r in rows]
