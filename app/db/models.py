"""The data model of DESIGN.md §3.

Invariants are enforced by the database itself (CHECK and UNIQUE constraints, see
each ``Meta``), not only in Python, so that scripts, imports and concurrent writers
cannot bypass them. A comparison is stored once per (user, unordered pair), in
canonical orientation ``video_a_id < video_b_id``; code that receives the pair the
other way round flips the sign of the scores (:func:`app.db.comparisons.canonical`).

``Event`` is the append-only log the learner replays; every change the learner
depends on writes its event in the same transaction (see ``app/db/writes.py``).

Each relation is followed by a bare ``<name>_id: int`` annotation: tortoise adds that
key column at class creation, and declaring it lets mypy check the code that reads it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from app.criteria import CRITERION_NAMES
from app.db import usernames

YOUTUBE_ID_LENGTH = 11
USERNAME_KEY_LENGTH = 1000
_CRITERIA_SQL = ", ".join(f"'{name}'" for name in CRITERION_NAMES)


class User(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=150, unique=True)
    # Equal for names a reader could confuse (case, width, look-alike letters):
    # app/db/usernames.py. Set from ``username`` on every save; bulk inserts set it.
    username_key = fields.CharField(max_length=USERNAME_KEY_LENGTH, unique=True)
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

    async def save(self, *args: Any, **kwargs: Any) -> None:
        self.username_key = usernames.key(self.username)
        await super().save(*args, **kwargs)


class Vouch(Model):
    id = fields.IntField(primary_key=True)
    voucher: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="vouches_given", on_delete=fields.CASCADE
    )
    voucher_id: int
    vouchee: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="vouches_received", on_delete=fields.CASCADE
    )
    vouchee_id: int
    created_at = fields.DatetimeField(auto_now_add=True)
    # From a public dataset whose trust_score already counts it (imported as the
    # vouchee's pretrust): stored and exported, never propagated again (app/datasets).
    imported = fields.BooleanField(default=False, db_default=False)

    class Meta:
        table = "vouch"
        unique_together = (("voucher", "vouchee"),)
        constraints = (CheckConstraint(check="voucher_id <> vouchee_id", name="vouch_not_self"),)


class ApiToken(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="tokens", on_delete=fields.CASCADE
    )
    user_id: int
    token_sha256 = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked = fields.BooleanField(default=False)
    client = fields.CharField(max_length=200, null=True)  # the User-Agent that signed in

    class Meta:
        table = "api_token"


class Video(Model):
    # Metadata comes from the source (app/sources), never from ordinary users; an
    # admin may override a field and lock it. Null: unknown (not fetched yet, or the
    # source does not say). (A comment, not a docstring: tortoise would make it a
    # table comment, and altering that rebuilds the table on SQLite.)
    id = fields.IntField(primary_key=True)
    youtube_id = fields.CharField(max_length=YOUTUBE_ID_LENGTH, unique=True)
    title = fields.CharField(max_length=500, null=True)
    uploader = fields.CharField(max_length=200, null=True)
    description = fields.TextField(null=True)
    tags: Any = fields.JSONField(null=True)  # list of strings
    language = fields.CharField(max_length=16, null=True)
    duration_s = fields.IntField(null=True)
    published_at = fields.DatetimeField(null=True)
    # app.sources.youtube.Availability: ok, deleted, private, not_embeddable.
    availability = fields.CharField(max_length=16, null=True)
    added_at = fields.DatetimeField(auto_now_add=True)
    metadata_fetched_at = fields.DatetimeField(null=True)
    metadata_source = fields.CharField(max_length=16, null=True)  # youtube_api or oembed
    # The metadata queue's schedule (app/sources/queue.py), kept here so it survives
    # restarts: fetch at or after this instant; null: as soon as possible.
    metadata_due_at = fields.DatetimeField(null=True, db_index=True)
    metadata_failures = fields.IntField(default=0, db_default=0)  # in a row, for backoff
    metadata_error = fields.CharField(max_length=500, null=True)  # the last failure
    # Names of the metadata fields an admin set and locked: the source leaves them.
    locked_fields: Any = fields.JSONField(null=True)

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


class VideoModeration(Model):
    # An admin marked the video unsafe to recommend (Tournesol's "moderated"): one row
    # while it lasts, deleted when lifted; every change is kept in ModerationLog. A
    # table of its own: altering "video" would rebuild it on SQLite (see 0010).
    id = fields.IntField(primary_key=True)
    video: fields.OneToOneRelation[Video] = fields.OneToOneField(
        "models.Video", related_name="moderation", on_delete=fields.CASCADE
    )
    video_id: int
    reason = fields.CharField(max_length=500)
    moderated_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="moderations", on_delete=fields.SET_NULL, null=True
    )
    moderated_by_id: int | None
    moderated_at = fields.DatetimeField()

    class Meta:
        table = "video_moderation"


class ModerationLog(Model):
    # Append-only: who marked a video unsafe (or lifted it), when, and why.
    id = fields.IntField(primary_key=True)
    video: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="moderation_log", on_delete=fields.CASCADE
    )
    video_id: int
    admin: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="moderation_log", on_delete=fields.SET_NULL, null=True
    )
    admin_id: int | None
    unsafe = fields.BooleanField()
    reason = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "moderation_log"


class Comparison(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="comparisons", on_delete=fields.CASCADE
    )
    user_id: int
    video_a: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="comparisons_as_a", on_delete=fields.RESTRICT
    )
    video_a_id: int
    video_b: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="comparisons_as_b", on_delete=fields.RESTRICT
    )
    video_b_id: int
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
    comparison_id: int
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
    user_id: int
    video: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="visibilities", on_delete=fields.CASCADE
    )
    video_id: int
    is_public = fields.BooleanField(default=True)

    class Meta:
        table = "rating_visibility"
        unique_together = (("user", "video"),)


class RateLater(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="rate_later", on_delete=fields.CASCADE
    )
    user_id: int
    video: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="rate_later", on_delete=fields.CASCADE
    )
    video_id: int
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
    payload: Any = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "event"


class ContributorScore(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="scores", on_delete=fields.CASCADE
    )
    user_id: int
    video: fields.ForeignKeyRelation[Video] = fields.ForeignKeyField(
        "models.Video", related_name="contributor_scores", on_delete=fields.CASCADE
    )
    video_id: int
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
    video_id: int
    criterion = fields.CharField(max_length=32)
    score = fields.FloatField()
    uncertainty = fields.FloatField()
    n_contributors = fields.IntField(default=0)
    n_comparisons = fields.IntField(default=0)

    class Meta:
        table = "video_score"
        unique_together = (("video", "criterion"),)


# Accounts (app/accounts). Tables of their own rather than columns of "user": on
# SQLite, tortoise rebuilds a table to alter it, and rebuilding "user" cascades.


class UserEmail(Model):
    # The account's address (normalised, lowercase: unique), verified or not, and the
    # language its mail is written in. A change of address keeps this row until the
    # new one is verified (the new address waits in its EmailToken).
    id = fields.IntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="email", on_delete=fields.CASCADE
    )
    user_id: int
    email = fields.CharField(max_length=254, unique=True)
    verified_at = fields.DatetimeField(null=True)
    language = fields.CharField(max_length=8, default="en")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "user_email"


class EmailToken(Model):
    # A single-use link sent by mail: only its SHA-256 is stored; used_at marks it spent.
    # purpose "verify" confirms ``email`` (a first address or a change), "reset" sets a
    # new password.
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="email_tokens", on_delete=fields.CASCADE
    )
    user_id: int
    purpose = fields.CharField(max_length=16)
    token_sha256 = fields.CharField(max_length=64, unique=True)
    email = fields.CharField(max_length=254, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "email_token"


class MailOutbox(Model):
    # Mail waiting to be sent by the background sender (app/accounts/mailer.py): kept in
    # the database so it survives restarts; due_at schedules retries (and leases a row to
    # the process sending it).
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="mails", on_delete=fields.SET_NULL, null=True
    )
    user_id: int | None
    to_address = fields.CharField(max_length=254)
    subject = fields.CharField(max_length=255)
    body = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    due_at = fields.DatetimeField(db_index=True)
    attempts = fields.IntField(default=0)
    sent_at = fields.DatetimeField(null=True)
    failed = fields.BooleanField(default=False)  # gave up after the last attempt
    last_error = fields.CharField(max_length=500, null=True)

    class Meta:
        table = "mail_outbox"


class EmailDomain(Model):
    # Admin-managed mail domains: a verified address on an "accepted" one grants
    # pretrust (app/accounts/domains.py); "rejected" ones grant nothing.
    id = fields.IntField(primary_key=True)
    domain = fields.CharField(max_length=253, unique=True)
    status = fields.CharField(max_length=16)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "email_domain"


class AdminPretrust(Model):
    # The pretrust an admin (or an import) gave, kept apart from ``user.pretrust``
    # (the effective value: the larger of this and a trusted email domain's grant,
    # app/accounts/domains.py) once a domain grant could hide it.
    id = fields.IntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="admin_pretrust", on_delete=fields.CASCADE
    )
    user_id: int
    value = fields.FloatField()

    class Meta:
        table = "admin_pretrust"


class ReleasedUsername(Model):
    # The name of a deleted account (by its look-alike key): reserved for a while
    # (app/accounts/deletion.py).
    id = fields.IntField(primary_key=True)
    username_key = fields.CharField(max_length=USERNAME_KEY_LENGTH, unique=True)
    released_at = fields.DatetimeField()

    class Meta:
        table = "released_username"


class UserSettings(Model):
    # The account's settings document, validated by app/accounts/preferences.py.
    id = fields.IntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="settings", on_delete=fields.CASCADE
    )
    user_id: int
    document: Any = fields.JSONField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "user_settings"


class AccountDeactivation(Model):
    # An admin deactivated the account (app/accounts/deactivation.py): one row while it
    # lasts. It cannot sign in, and the learner leaves its data out.
    id = fields.IntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="deactivation", on_delete=fields.CASCADE
    )
    user_id: int
    deactivated_at = fields.DatetimeField()
    by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="deactivations", on_delete=fields.SET_NULL, null=True
    )
    by_id: int | None
    reason = fields.CharField(max_length=500, null=True)

    class Meta:
        table = "account_deactivation"
