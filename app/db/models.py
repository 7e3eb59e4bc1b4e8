"""The data model of DESIGN.md §3.

Invariants are enforced by the database itself (CHECK and UNIQUE constraints, see
each ``Meta``), not only in Python, so that scripts, imports and concurrent writers
cannot bypass them. A comparison is stored once per (user, unordered pair), in
canonical orientation ``video_a_id < video_b_id``; code that receives the pair the
other way round flips the sign of the scores (:func:`app.db.comparisons.canonical`).

``Event`` is the append-only log the learner replays; every change the learner
depends on writes its event in the same transaction (see ``app/db/writes.py``).
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from app.criteria import CRITERION_NAMES

YOUTUBE_ID_LENGTH = 11
_CRITERIA_SQL = ", ".join(f"'{name}'" for name in CRITERION_NAMES)


class User(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=150, unique=True)
    # NULL: the account cannot log in (imported contributors, until a password is set).
    password_hash = fields.CharField(max_length=255, null=True)
    pretrust = fields.FloatField(default=0.0)
    trust = fields.FloatField(default=0.0)
    is_admin = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "user"
        constraints = (
            CheckConstraint(check="pretrust >= 0 AND pretrust <= 1", name="user_pretrust_range"),
            CheckConstraint(check="trust >= 0 AND trust <= 1", name="user_trust_range"),
        )

    def __str__(self) -> str:
        return self.username


class Vouch(Model):
    id = fields.IntField(primary_key=True)
    voucher: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="vouches_given", on_delete=fields.CASCADE
    )
    vouchee: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="vouches_received", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "vouch"
        unique_together = (("voucher", "vouchee"),)
        constraints = (CheckConstraint(check="voucher_id <> vouchee_id", name="vouch_not_self"),)


class ApiToken(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="tokens", on_delete=fields.CASCADE
    )
    token_sha256 = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked = fields.BooleanField(default=False)

    class Meta:
        table = "api_token"


class Video(Model):
    id = fields.IntField(primary_key=True)
    youtube_id = fields.CharField(max_length=YOUTUBE_ID_LENGTH, unique=True)
    title = fields.CharField(max_length=500, default="")
    uploader = fields.CharField(max_length=200, default="")
    language = fields.CharField(max_length=16, default="")
    duration_s = fields.IntField(null=True)
    published_at = fields.DatetimeField(null=True)
    added_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "video"
        constraints = (
            CheckConstraint(
                check=f"length(youtube_id) = {YOUTUBE_ID_LENGTH}", name="video_youtube_id_length"
            ),
            CheckConstraint(
                check="duration_s IS NULL OR duration_s >= 0", name="video_duration_nonnegative"
            ),
        )

    def __str__(self) -> str:
        return self.youtube_id


class Comparison(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="comparisons", on_delete=fields.CASCADE
    )
    video_a: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="comparisons_as_a", on_delete=fields.RESTRICT
    )
    video_b: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="comparisons_as_b", on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    scores: fields.ReverseRelation[ComparisonScore]

    class Meta:
        table = "comparison"
        unique_together = (("user", "video_a", "video_b"),)
        constraints = (
            # Canonical orientation makes (user, video_a, video_b) unique per unordered
            # pair, and implies video_a != video_b.
            CheckConstraint(check="video_a_id < video_b_id", name="comparison_canonical_pair"),
        )


class ComparisonScore(Model):
    id = fields.IntField(primary_key=True)
    comparison: fields.ForeignKeyRelation[Comparison] = fields.ForeignKeyField(
        "models.Comparison", related_name="scores", on_delete=fields.CASCADE
    )
    criterion = fields.CharField(max_length=32)
    score = fields.IntField()
    score_max = fields.IntField()

    class Meta:
        table = "comparison_score"
        unique_together = (("comparison", "criterion"),)
        constraints = (
            CheckConstraint(check=f"criterion IN ({_CRITERIA_SQL})", name="score_known_criterion"),
            CheckConstraint(check="score_max > 0", name="score_max_positive"),
            CheckConstraint(
                check="score >= -score_max AND score <= score_max", name="score_within_max"
            ),
        )


class RatingVisibility(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="visibilities", on_delete=fields.CASCADE
    )
    video: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="visibilities", on_delete=fields.CASCADE
    )
    is_public = fields.BooleanField(default=True)

    class Meta:
        table = "rating_visibility"
        unique_together = (("user", "video"),)


class RateLater(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="rate_later", on_delete=fields.CASCADE
    )
    video: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="rate_later", on_delete=fields.CASCADE
    )
    added_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "rate_later"
        unique_together = (("user", "video"),)


class EventKind(StrEnum):
    COMPARISON_CREATED = "comparison_created"
    COMPARISON_UPDATED = "comparison_updated"
    COMPARISON_DELETED = "comparison_deleted"
    PRETRUST_CHANGED = "pretrust_changed"
    VOUCH_CHANGED = "vouch_changed"
    VISIBILITY_CHANGED = "visibility_changed"


class Event(Model):
    """One append-only entry of the learner's input log.

    ``payload`` carries everything the learner needs to apply the event without
    reading other tables (ids are database ids):

    - comparison_created / _updated: ``{"user", "video_a", "video_b",
      "scores": {criterion: [score, score_max]}}`` in canonical orientation
    - comparison_deleted: ``{"user", "video_a", "video_b"}``
    - pretrust_changed: ``{"user", "pretrust"}``
    - vouch_changed: ``{"voucher", "vouchee", "active"}``
    - visibility_changed: ``{"user", "video", "is_public"}``
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharEnumField(EventKind, max_length=32)
    payload = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "event"


class ContributorScore(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="scores", on_delete=fields.CASCADE
    )
    video: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="contributor_scores", on_delete=fields.CASCADE
    )
    criterion = fields.CharField(max_length=32)
    score = fields.FloatField()
    uncertainty = fields.FloatField()
    voting_right = fields.FloatField(default=0.0)

    class Meta:
        table = "contributor_score"
        unique_together = (("user", "video", "criterion"),)


class VideoScore(Model):
    id = fields.IntField(primary_key=True)
    video: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="scores", on_delete=fields.CASCADE
    )
    criterion = fields.CharField(max_length=32)
    score = fields.FloatField()
    uncertainty = fields.FloatField()
    n_contributors = fields.IntField(default=0)
    n_comparisons = fields.IntField(default=0)

    class Meta:
        table = "video_score"
        unique_together = (("video", "criterion"),)
