"""``GET /me/export.zip``: everything of mine, downloadable with my bearer token
(``Authorization: Bearer …``): profile, comparisons (Tournesol's columns, with
``week_date``), my personal scores, rating visibility, rate-later list, vouches
given and received, sessions (never the tokens)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app import auth
from app.accounts import preferences
from app.db.models import (
    ApiToken,
    Comparison,
    RateLater,
    RatingVisibility,
    User,
    UserEmail,
    Video,
    Vouch,
)
from app.http.auth import bearer_token

README = """Your Sunrank data, exported {now}.

profile.json                     your account
settings.json                    your settings
comparisons.csv                  your comparisons (Tournesol's columns; negative prefers video_a)
individual_criteria_scores.csv   your personal scores per video and criterion
rating_visibility.csv            videos whose rating you made private or public
rate_later.csv                   your rate-later list
vouchers.csv                     vouches you gave and received
sessions.csv                     your signed-in clients (no tokens)
"""


def week_date(moment: datetime) -> str:
    day = moment.astimezone(UTC).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def table(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


async def build(request: Request, user: User) -> bytes:
    learner = request.app.state.learner
    email = await UserEmail.get_or_none(user_id=user.id)
    videos: dict[int, str] = {}

    async def youtube_ids(ids: set[int]) -> None:
        missing = ids - videos.keys()
        if missing:
            found = Video.filter(id__in=missing).values_list("id", "youtube_id")
            videos.update(dict(await found))

    comparisons = await Comparison.filter(user_id=user.id).prefetch_related("scores").order_by("id")
    scores = await learner.contributor_scores(user.id)
    visibility = await RatingVisibility.filter(user_id=user.id).order_by("id")
    rate_later = await RateLater.filter(user_id=user.id).order_by("added_at", "id")
    await youtube_ids(
        {c.video_a_id for c in comparisons} | {c.video_b_id for c in comparisons}  # type: ignore[attr-defined]
        | {s.video_id for s in scores} | {v.video_id for v in visibility}  # type: ignore[attr-defined]
        | {r.video_id for r in rate_later}  # type: ignore[attr-defined]
    )  # fmt: skip
    given = await Vouch.filter(voucher_id=user.id).values_list("vouchee__username", flat=True)
    received = await Vouch.filter(vouchee_id=user.id).values_list("voucher__username", flat=True)
    sessions = await ApiToken.filter(user_id=user.id, revoked=False).order_by("id")
    profile = {
        "username": user.username,
        "email": email.email if email else None,
        "email_verified": bool(email and email.verified_at),
        "language": email.language if email else None,
        "created_at": user.created_at.isoformat(),
        "pretrust": user.pretrust,
        "trust": await learner.trust(user.id),
        "is_admin": user.is_admin,
    }
    files = {
        "README.txt": README.format(now=datetime.now(UTC).isoformat(timespec="seconds")),
        "profile.json": json.dumps(profile, indent=2, ensure_ascii=False) + "\n",
        "settings.json": (await preferences.load(user.id)).model_dump_json(indent=2) + "\n",
        "comparisons.csv": table(
            ["public_username", "video_a", "video_b", "criteria", "score", "score_max",
             "week_date", "created_at", "updated_at"],
            [[user.username, videos[c.video_a_id], videos[c.video_b_id], s.criterion,  # type: ignore[attr-defined]
              s.score, s.score_max, week_date(c.created_at), c.created_at.isoformat(),
              c.updated_at.isoformat()]
             for c in comparisons for s in sorted(c.scores, key=lambda s: s.criterion)],
        ),
        "individual_criteria_scores.csv": table(
            ["public_username", "video", "criteria", "score", "uncertainty", "raw_score"],
            [[user.username, videos[s.video_id], s.criterion, s.score, s.uncertainty, s.raw]
             for s in scores],
        ),
        "rating_visibility.csv": table(
            ["video", "is_public"], [[videos[v.video_id], v.is_public] for v in visibility]  # type: ignore[attr-defined]
        ),
        "rate_later.csv": table(
            ["video", "added_at"],
            [[videos[r.video_id], r.added_at.isoformat()] for r in rate_later],  # type: ignore[attr-defined]
        ),
        "vouchers.csv": table(
            ["by_username", "to_username"],
            [[user.username, n] for n in sorted(given)]
            + [[n, user.username] for n in sorted(received)],
        ),
        "sessions.csv": table(
            ["created_at", "last_used_at", "client"],
            [[t.created_at.isoformat(), t.last_used_at.isoformat() if t.last_used_at else "",
              t.client or ""] for t in sessions],
        ),
    }  # fmt: skip
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def unauthorized(message: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]},
        401,
        headers={"www-authenticate": "Bearer"},
    )


async def export_zip(request: Request) -> Response:
    header = request.headers.get("authorization")
    if header is None:
        return unauthorized("send your token: Authorization: Bearer <token>")
    state = request.app.state
    try:
        viewer = await auth.authenticate(
            bearer_token(header), state.settings, getattr(state, "token_cache", None)
        )
    except auth.BadToken:
        return unauthorized("invalid or revoked bearer token: log in again")
    user = await User.get(id=viewer.id)
    body = await build(request, user)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(
        body,
        media_type="application/zip",
        headers={
            "content-disposition": f'attachment; filename="sunrank-{stamp}.zip"',
            "cache-control": "no-store",
        },
    )
