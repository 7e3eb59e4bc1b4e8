"""Trusted email domains: a verified address on an accepted domain gives pretrust
(``SUNRANK_EMAIL_DOMAIN_PRETRUST``, 0.8 as in Tournesol).

How it combines with pretrust from an admin (``setPretrust``, ``sunrank
create-user --pretrust``, imports): the learner sees the larger of the two.
``user.pretrust`` holds that effective value (what the learner reads and every
event carries); the admin's part is kept in ``AdminPretrust`` from the first time a
domain grant could hide it (until then ``user.pretrust`` *is* the admin's value).
Every change goes through :func:`app.db.writes.set_pretrust`, so it reaches the
learner as an event: trust and voting rights move at once.
"""

from __future__ import annotations

from app.config import Settings
from app.db import writes
from app.db.models import AccountDeactivation, AdminPretrust, EmailDomain, Event, User, UserEmail
from app.db.validation import InvalidInput

ACCEPTED, REJECTED, PENDING = "accepted", "rejected", "pending"
STATUSES = (ACCEPTED, REJECTED, PENDING)
MAX_DOMAIN = 253


def normalize(domain: object, field: str = "domain") -> str:
    """A domain as stored: lowercase, IDNA-encoded, without a leading ``@``."""
    if not isinstance(domain, str):
        raise InvalidInput(field, "expected a domain name", "BAD_DOMAIN")
    name = domain.strip().lstrip("@").rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(field, f"{domain!r} is not a domain name", "BAD_DOMAIN") from None
    labels = name.split(".")
    valid = (
        0 < len(name) <= MAX_DOMAIN
        and len(labels) >= 2
        and all(0 < len(x) <= 63 and x.replace("-", "").isalnum() for x in labels)
        and not any(x.startswith("-") or x.endswith("-") for x in labels)
    )
    if not valid:
        raise InvalidInput(field, f"{domain!r} is not a domain name", "BAD_DOMAIN")
    return name


def check_status(value: object, field: str = "status") -> str:
    if not isinstance(value, str) or value.lower() not in STATUSES:
        raise InvalidInput(field, f"expected one of {', '.join(STATUSES)}", "BAD_STATUS")
    return value.lower()


async def domain_pretrust(settings: Settings, user_id: int) -> float:
    """What the user's email earns: the setting for a verified address on an
    accepted domain, else 0."""
    row = await UserEmail.get_or_none(user_id=user_id)
    if row is None or row.verified_at is None:
        return 0.0
    domain = row.email.rpartition("@")[2]
    accepted = await EmailDomain.exists(domain=domain, status=ACCEPTED)
    return settings.email_domain_pretrust if accepted else 0.0


async def admin_pretrust(user_id: int) -> float:
    row = await AdminPretrust.get_or_none(user_id=user_id)
    if row is not None:
        return row.value
    user = await User.get(id=user_id)
    # No row yet: no domain grant was ever combined in, so this is the admin's value.
    await AdminPretrust.get_or_create(user_id=user_id, defaults={"value": user.pretrust})
    return (await AdminPretrust.get(user_id=user_id)).value


async def refresh(settings: Settings, user_id: int) -> Event | None:
    """Write the user's effective pretrust (with its event) if it changed. Nothing
    while the account is deactivated (its pretrust counts for nothing then; the
    reactivation calls this again)."""
    if await AccountDeactivation.exists(user_id=user_id):
        return None
    admin = await admin_pretrust(user_id)
    effective = max(admin, await domain_pretrust(settings, user_id))
    return await writes.set_pretrust(user_id, effective)


async def set_admin_pretrust(settings: Settings, user_id: int, value: float) -> Event | None:
    """An admin's pretrust for the user; the effective value is the larger of it and
    the domain's grant."""
    await AdminPretrust.update_or_create(user_id=user_id, defaults={"value": value})
    return await refresh(settings, user_id)


async def note_domain(address: str) -> None:
    """A newly verified address's domain, listed as pending for admins to review."""
    domain = address.rpartition("@")[2]
    await EmailDomain.get_or_create(domain=domain, defaults={"status": PENDING})


async def set_status(settings: Settings, domain: str, status: str) -> list[Event]:
    """Accept, reject or reset a domain; re-computes the pretrust of every account
    with a verified address on it. Returns the events written."""
    name, status = normalize(domain), check_status(status)
    row, created = await EmailDomain.get_or_create(domain=name, defaults={"status": status})
    if not created and row.status != status:
        row.status = status
        await row.save(update_fields=["status", "updated_at"])
    users = await UserEmail.filter(email__endswith=f"@{name}", verified_at__not_isnull=True)
    events = []
    for holder in users:
        if (event := await refresh(settings, holder.user_id)) is not None:  # type: ignore[attr-defined]
            events.append(event)
    return events


async def listing(status: str | None = None) -> list[tuple[EmailDomain, int]]:
    """Domains (optionally of one status) with how many verified accounts use each."""
    query = EmailDomain.all().order_by("domain")
    if status is not None:
        query = query.filter(status=check_status(status))
    out = []
    for row in await query:
        n = await UserEmail.filter(
            email__endswith=f"@{row.domain}", verified_at__not_isnull=True
        ).count()
        out.append((row, n))
    return out
