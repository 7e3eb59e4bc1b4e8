"""The language of human-readable labels: a ``lang`` argument, else the request's
``Accept-Language`` (RFC 9110 §12.5.4: quality values, ranges like ``fr-CH``,
``*``), else English. Only languages in ``app.criteria.LANGUAGES`` are served."""

from __future__ import annotations

from app.criteria import LANGUAGES

DEFAULT = LANGUAGES[0]
MAX_HEADER = 512  # longer headers are ignored rather than parsed


def _ranges(header: str) -> list[tuple[float, int, str]]:
    out = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and 0.0 < quality <= 1.0:
            out.append((-quality, position, tag.strip().lower()))
    return sorted(out)


def negotiate(header: str | None) -> str:
    """The best served language for an ``Accept-Language`` header."""
    if not header or len(header) > MAX_HEADER:
        return DEFAULT
    for _, _, tag in _ranges(header):
        primary = tag.split("-", 1)[0]
        if primary in LANGUAGES:
            return primary
        if primary == "*":
            return DEFAULT
    return DEFAULT


def choose(lang: str | None, accept_language: str | None) -> str:
    """``lang`` when it names a served language (``fr``, ``fr-FR``), else the header's."""
    if lang:
        primary = lang.strip().lower().split("-", 1)[0]
        if primary in LANGUAGES:
            return primary
    return negotiate(accept_language)
