"""The language of a video's text when YouTube declares none.

py3langid (a maintained fork of langid.py: naive Bayes over byte n-grams, its model
shipped in the wheel, numpy only) works offline and is deterministic: the same text
always gives the same answer. A guess below ``MIN_PROBABILITY``, or on too little
text, is no answer: null means unknown, which is better than a wrong language.
"""

from __future__ import annotations

import functools
import re
from typing import Any

MIN_PROBABILITY = 0.7
MIN_LETTERS = 12
_NOT_TEXT = re.compile(r"https?://\S+|[#@]\w+|\d+")


@functools.cache
def _identifier() -> Any:
    # Loading the model takes ~0.3 s: once, on first use, never at import.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(*texts: str | None) -> str | None:
    """ISO 639-1 code of the language of ``texts`` together, or None if unsure."""
    text = _NOT_TEXT.sub(" ", "\n".join(t for t in texts if t))
    if sum(c.isalpha() for c in text) < MIN_LETTERS:
        return None
    language, probability = _identifier().classify(text)
    return str(language) if probability >= MIN_PROBABILITY else None


def normalize(tag: str | None) -> str | None:
    """A declared BCP 47 tag (``en-US``, ``fr``, ``zxx``) as its primary language."""
    if not tag:
        return None
    primary = tag.strip().split("-")[0].lower()
    # zxx: "no linguistic content"; und: undetermined; mul: several
    if primary in ("zxx", "und", "mul") or not primary.isalpha() or len(primary) > 3:
        return None
    return primary
