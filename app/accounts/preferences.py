"""Per-user settings: one JSON document per account, validated against a schema
(pydantic) on every write, so what is stored is always readable back. Unknown keys
are refused; a missing document means the defaults.

- ``default_weights``: the ranking weights a front end starts from (criterion → 0..100);
- ``rate_later_auto_remove``: leave the rate-later list after this many comparisons
  of a video (0: never; null: the server's ``SUNRANK_RATE_LATER_AUTO_REMOVE``);
- ``language``: of the interface and of mail (``en``, ``fr``);
- ``extension``: options of the browser extension.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.criteria import CRITERION_NAMES
from app.db.models import UserEmail, UserSettings
from app.db.validation import InvalidInput


class ExtensionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    search_recommendations: bool = True  # Sunrank's picks on YouTube's search page
    show_scores: bool = True  # scores beside videos on YouTube


class Preferences(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_weights: dict[str, float] = Field(default_factory=dict)
    rate_later_auto_remove: int | None = Field(default=None, ge=0, le=100)
    language: Literal["en", "fr"] = "en"
    extension: ExtensionOptions = Field(default_factory=ExtensionOptions)

    @field_validator("default_weights")
    @classmethod
    def known_criteria(cls, weights: dict[str, float]) -> dict[str, float]:
        for criterion, weight in weights.items():
            if criterion not in CRITERION_NAMES:
                raise ValueError(f"unknown criterion {criterion!r}")
            if not 0 <= weight <= 100:
                raise ValueError(f"the weight of {criterion} must be between 0 and 100")
        return weights


def _camel(path: tuple[Any, ...]) -> str:
    def camel(part: Any) -> str:
        head, *rest = str(part).split("_")
        return head + "".join(p.title() for p in rest)

    return "settings." + ".".join(camel(p) for p in path if p != "__root__")


async def load(user_id: int) -> Preferences:
    row = await UserSettings.get_or_none(user_id=user_id)
    return Preferences.model_validate(row.document) if row else Preferences()


async def update(user_id: int, changes: dict[str, Any]) -> Preferences:
    """Merge ``changes`` (top-level keys; ``extension`` merged key by key) into the
    stored document; INVALID_SETTINGS (naming the field) and nothing written if the
    result does not validate."""
    current = (await load(user_id)).model_dump()
    if isinstance(changes.get("extension"), dict):
        changes = {**changes, "extension": {**current["extension"], **changes["extension"]}}
    try:
        merged = Preferences.model_validate({**current, **changes})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidInput(_camel(error["loc"]), error["msg"], "INVALID_SETTINGS") from None
    await UserSettings.update_or_create(user_id=user_id, defaults={"document": merged.model_dump()})
    if "language" in changes:  # mail follows the interface language
        await UserEmail.filter(user_id=user_id).update(language=merged.language)
    return merged
