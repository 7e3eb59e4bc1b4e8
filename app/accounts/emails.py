"""Email addresses as accounts hold them: syntax checked and normalised by
email-validator (no DNS lookup on the request path), stored lowercase so that one
mailbox cannot hold two accounts, and throwaway domains refused (the maintained
``disposable-email-domains`` list)."""

from __future__ import annotations

from disposable_email_domains import blocklist
from email_validator import EmailNotValidError, validate_email

from app.db.validation import InvalidInput

MAX_LENGTH = 254


def normalize(value: object, field: str = "email") -> str:
    """The stored form of an address, or :class:`InvalidInput` (BAD_EMAIL,
    DISPOSABLE_EMAIL)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "an email address is required", "BAD_EMAIL")
    if len(value) > MAX_LENGTH or "\x00" in value:
        raise InvalidInput(field, "not a valid email address", "BAD_EMAIL")
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(field, f"not a valid email address: {exc}", "BAD_EMAIL") from None
    address = checked.normalized.lower()
    if is_disposable(domain_of(address)):
        raise InvalidInput(
            field, "addresses of disposable mail services are not accepted", "DISPOSABLE_EMAIL"
        )
    return address


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def is_disposable(domain: str) -> bool:
    # a subdomain of a listed service is as disposable as the service
    labels = domain.split(".")
    return any(".".join(labels[i:]) in blocklist for i in range(len(labels) - 1))
