"""``me.settings`` and ``updateSettings``: the account's settings document
(app/accounts/preferences.py), typed for clients."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types.unset import UNSET

from app.accounts import preferences
from app.criteria import CRITERION_NAMES


@strawberry.type
class SettingsWeight:
    criterion: str
    weight: float


@strawberry.type
class ExtensionSettings:
    search_recommendations: bool = strawberry.field(
        description="Show Sunrank's picks on YouTube's search page."
    )
    show_scores: bool = strawberry.field(description="Show scores beside videos on YouTube.")


@strawberry.type(name="Settings", description="My settings (defaults until I change them).")
class SettingsType:
    default_weights: list[SettingsWeight] = strawberry.field(
        description="Ranking weights a front end starts from (0..100); empty: the main "
        "criterion only."
    )
    rate_later_auto_remove: int | None = strawberry.field(
        description="A video leaves my rate-later list after I compared it this many times "
        "(0: never; null: the server's default)."
    )
    language: str = strawberry.field(description="`en` or `fr`: the interface and my mail.")
    extension: ExtensionSettings

    @classmethod
    def of(cls, prefs: preferences.Preferences) -> SettingsType:
        return cls(
            default_weights=[  # in the criteria table's order (PostgreSQL's jsonb sorts keys)
                SettingsWeight(criterion=c, weight=prefs.default_weights[c])
                for c in CRITERION_NAMES
                if c in prefs.default_weights
            ],
            rate_later_auto_remove=prefs.rate_later_auto_remove,
            language=prefs.language,
            extension=ExtensionSettings(**prefs.extension.model_dump()),
        )


@strawberry.input
class SettingsWeightInput:
    criterion: str
    weight: float


@strawberry.input
class ExtensionSettingsInput:
    search_recommendations: bool | None = UNSET
    show_scores: bool | None = UNSET


@strawberry.input(description="Only the fields given change.")
class UpdateSettingsInput:
    default_weights: list[SettingsWeightInput] | None = UNSET
    rate_later_auto_remove: int | None = strawberry.field(
        default=UNSET, description="null: back to the server's default."
    )
    language: str | None = UNSET
    extension: ExtensionSettingsInput | None = UNSET

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.default_weights is not UNSET:
            weights = self.default_weights or []
            out["default_weights"] = {w.criterion: w.weight for w in weights}
        if self.rate_later_auto_remove is not UNSET:
            out["rate_later_auto_remove"] = self.rate_later_auto_remove
        if self.language is not UNSET:
            out["language"] = self.language
        if self.extension is not UNSET and self.extension is not None:
            ext = self.extension
            out["extension"] = {
                k: v
                for k, v in (("search_recommendations", ext.search_recommendations),
                             ("show_scores", ext.show_scores))
                if v is not UNSET
            }  # fmt: skip
        return out


async def my_settings(info: strawberry.Info) -> SettingsType:
    viewer = info.context.require_viewer()
    return SettingsType.of(await preferences.load(viewer.id))
