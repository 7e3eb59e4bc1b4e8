"""Account mail over real SMTP and HTTP: sign-up and verification, change of email,
password change and reset, expired and reused links, retries and the mail quota."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.accounts.conftest import Inbox, body_of, link_in
from tests.api.anonymous import answered_anonymous
from tests.api.conftest import PASSWORD, Api

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

ERRORS = "userErrors { field message code }"
REGISTER = f"""mutation($u: String!, $p: String!, $e: String, $l: String) {{
  register(input: {{username: $u, password: $p, email: $e, language: $l}}) {{
    token user {{ username }} {ERRORS} }} }}"""
ME = "{ me { username email emailVerified pendingEmail } }"
VERIFY = f"mutation($t: String!) {{ verifyEmail(input: {{token: $t}}) {{ email {ERRORS} }} }}"
CHANGE_EMAIL = f"""mutation($e: String!, $p: String!) {{
  changeEmail(input: {{email: $e, password: $p}}) {{ email {ERRORS} }} }}"""
CHANGE_PASSWORD = f"""mutation($o: String!, $n: String!) {{
  changePassword(input: {{oldPassword: $o, newPassword: $n}}) {{ revokedTokens {ERRORS} }} }}"""
REQUEST_RESET = f"""mutation($e: String!) {{
  requestPasswordReset(input: {{email: $e}}) {{ ok {ERRORS} }} }}"""
RESET = f"""mutation($t: String!, $n: String!) {{
  resetPassword(input: {{token: $t, newPassword: $n}}) {{ ok {ERRORS} }} }}"""
RESEND = f"mutation {{ resendVerificationEmail {{ email {ERRORS} }} }}"


def fresh() -> tuple[str, str]:
    name = f"user_{uuid.uuid4().hex[:10]}"
    return name, f"{name}@example.org"


async def register(api: Api, name: str, email: str | None, language: str | None = None) -> dict:
    body = await api.gql(REGISTER, {"u": name, "p": PASSWORD, "e": email, "l": language})
    return body["data"]["register"]


async def mail_to(inbox: Inbox, address: str):
    """The next mail to ``address`` (mail to others, such as notices, is skipped)."""
    for _ in range(20):
        mail = await inbox.next()
        if mail["To"] == address:
            return mail
    raise AssertionError(f"no mail to {address}")


def token_of(link: str) -> str:
    return link.split("token=", 1)[1]


async def me(api: Api, token: str) -> dict:
    body = await api.gql(ME, token=token)
    assert "errors" not in body, body
    return body["data"]["me"]


async def test_sign_up_mails_a_link_that_verifies_once(mail_api: Api, inbox: Inbox):
    name, email = fresh()
    done = await register(mail_api, name, email.upper(), "fr")
    assert done["userErrors"] == [] and done["token"], done
    # signing up signs in; the address is stored normalised (lowercase), unverified
    assert await me(mail_api, done["token"]) == {
        "username": name, "email": email, "emailVerified": False, "pendingEmail": None,
    }  # fmt: skip
    mail = await mail_to(inbox, email)
    assert mail["Subject"] == "Confirmez votre adresse e-mail pour Sunrank"
    assert name in body_of(mail)
    link = link_in(mail)
    assert link.startswith(f"{mail_api.url}/account/verify-email?token=")

    page = await mail_api.client.get(link)
    assert page.status_code == 200 and 'data-code="EMAIL_VERIFIED"' in page.text, page.text
    assert email in page.text and 'lang="fr"' in page.text
    assert (await me(mail_api, done["token"]))["emailVerified"] is True

    again = await mail_api.client.get(link)
    assert again.status_code == 400 and 'data-code="USED_TOKEN"' in again.text
    reused = (await mail_api.gql(VERIFY, {"t": token_of(link)}))["data"]["verifyEmail"]
    assert reused["userErrors"][0]["code"] == "USED_TOKEN" and reused["email"] is None
    unknown = (await mail_api.gql(VERIFY, {"t": "x" * 43}))["data"]["verifyEmail"]
    assert unknown["userErrors"][0]["code"] == "BAD_TOKEN"


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("not an address", "BAD_EMAIL"),
        ("someone@", "BAD_EMAIL"),
        ("a@b@example.org", "BAD_EMAIL"),
        ("x" * 300 + "@example.org", "BAD_EMAIL"),
        ("", "BAD_EMAIL"),
        ("throwaway@mailinator.com", "DISPOSABLE_EMAIL"),
        ("throwaway@sub.mailinator.com", "DISPOSABLE_EMAIL"),
    ],
)
async def test_bad_addresses_create_nothing(mail_api: Api, email: str, code: str):
    before = await mail_api.rows('SELECT count(*) FROM "user"')
    name, _ = fresh()
    done = await register(mail_api, name, email)
    assert done["token"] is None and done["user"] is None
    assert [(e["field"], e["code"]) for e in done["userErrors"]] == [("email", code)], done
    assert await mail_api.rows('SELECT count(*) FROM "user"') == before


async def test_an_address_holds_one_account(mail_api: Api, inbox: Inbox):
    name, email = fresh()
    assert (await register(mail_api, name, email))["userErrors"] == []
    await mail_to(inbox, email)
    other, _ = fresh()
    done = await register(mail_api, other, email.replace("user", "USER"))
    assert [e["code"] for e in done["userErrors"]] == ["EMAIL_TAKEN"]
    assert await mail_api.rows(f"SELECT count(*) FROM \"user\" WHERE username = '{other}'") == [
        (0,)
    ]
    bad_language = await register(mail_api, other, f"{other}@example.org", "klingon")
    assert [e["code"] for e in bad_language["userErrors"]] == ["BAD_LANGUAGE"]


async def test_change_of_email_waits_for_the_new_address(mail_api: Api, inbox: Inbox):
    name, email = fresh()
    token = (await register(mail_api, name, email))["token"]
    await mail_to(inbox, email)
    new = f"new_{email}"
    wrong = await mail_api.gql(CHANGE_EMAIL, {"e": new, "p": "wrong password"}, token)
    assert wrong["data"]["changeEmail"]["userErrors"][0]["code"] == "BAD_CREDENTIALS"
    assert (await me(mail_api, token))["pendingEmail"] is None
    done = (await mail_api.gql(CHANGE_EMAIL, {"e": new, "p": PASSWORD}, token))["data"]
    assert done["changeEmail"] == {"email": new, "userErrors": []}
    state = await me(mail_api, token)
    assert (state["email"], state["pendingEmail"]) == (email, new)  # old one until verified
    link = link_in(await mail_to(inbox, new))
    assert (await mail_api.client.get(link)).status_code == 200
    state = await me(mail_api, token)
    assert (state["email"], state["emailVerified"], state["pendingEmail"]) == (new, True, None)
    # the address is free again for someone else
    other, _ = fresh()
    assert (await register(mail_api, other, email))["userErrors"] == []


async def test_password_change_needs_the_old_one_and_signs_out_other_sessions(
    mail_api: Api, inbox: Inbox
):
    name, email = fresh()
    first = (await register(mail_api, name, email))["token"]
    await mail_to(inbox, email)
    second = await mail_api.login(name)
    wrong = await mail_api.gql(
        CHANGE_PASSWORD, {"o": "not my password", "n": "brand new pw"}, first
    )
    assert wrong["data"]["changePassword"]["userErrors"][0] == {
        "field": "oldPassword", "message": "wrong password", "code": "BAD_CREDENTIALS",
    }  # fmt: skip
    weak = await mail_api.gql(CHANGE_PASSWORD, {"o": PASSWORD, "n": "short"}, first)
    assert weak["data"]["changePassword"]["userErrors"][0]["code"] == "WEAK_PASSWORD"
    assert (await me(mail_api, second))["username"] == name  # nothing changed

    done = await mail_api.gql(CHANGE_PASSWORD, {"o": PASSWORD, "n": "brand new pw"}, first)
    assert done["data"]["changePassword"] == {"revokedTokens": 1, "userErrors": []}
    assert (await me(mail_api, first))["username"] == name
    gone = await mail_api.client.post(
        "/graphql", json={"query": ME}, headers={"authorization": f"Bearer {second}"}
    )
    assert answered_anonymous(gone)
    notice = await mail_to(inbox, email)
    assert notice["Subject"] == "Your Sunrank password was changed"
    assert await mail_api.login(name, "brand new pw")


async def test_password_reset_by_mail(mail_api: Api, inbox: Inbox):
    name, email = fresh()
    session = (await register(mail_api, name, email))["token"]
    await mail_to(inbox, email)
    # an address no account holds gets the same answer, and no mail
    nobody = await mail_api.gql(REQUEST_RESET, {"e": "nobody@example.org"})
    assert nobody["data"]["requestPasswordReset"] == {"ok": True, "userErrors": []}
    malformed = await mail_api.gql(REQUEST_RESET, {"e": "nobody"})
    assert malformed["data"]["requestPasswordReset"]["userErrors"][0]["code"] == "BAD_EMAIL"

    asked = await mail_api.gql(REQUEST_RESET, {"e": email.upper()})
    assert asked["data"]["requestPasswordReset"]["ok"] is True
    mail = await mail_to(inbox, email)
    assert mail["Subject"] == "Reset your Sunrank password"
    link = link_in(mail)
    form = await mail_api.client.get(link)
    assert form.status_code == 200 and 'name="password"' in form.text
    token = token_of(link)
    # a weak password is refused and does not spend the link
    weak = await mail_api.client.post(link, data={"token": token, "password": "short"})
    assert weak.status_code == 400 and 'data-code="WEAK_PASSWORD"' in weak.text
    done = await mail_api.client.post(link, data={"token": token, "password": "a new password!"})
    assert done.status_code == 200 and 'data-code="PASSWORD_RESET"' in done.text, done.text
    gone = await mail_api.client.post(
        "/graphql", json={"query": ME}, headers={"authorization": f"Bearer {session}"}
    )
    assert answered_anonymous(gone)  # every session signed out
    assert await mail_api.login(name, "a new password!")
    reused = await mail_api.gql(RESET, {"t": token, "n": "yet another one"})
    assert reused["data"]["resetPassword"]["userErrors"][0]["code"] == "USED_TOKEN"
    assert await mail_api.login(name, "a new password!")


async def test_expired_links_are_refused(mail_api: Api, inbox: Inbox):
    name, email = fresh()
    await register(mail_api, name, email)
    await mail_to(inbox, email)
    await mail_api.gql(REQUEST_RESET, {"e": email})
    token = token_of(link_in(await mail_to(inbox, email)))
    await mail_api.rows(
        "UPDATE email_token SET expires_at = '2001-01-01 00:00:00+00:00' WHERE purpose = 'reset'"
    )
    expired = await mail_api.gql(RESET, {"t": token, "n": "a new password!"})
    assert expired["data"]["resetPassword"]["userErrors"][0]["code"] == "EXPIRED_TOKEN"
    assert await mail_api.login(name)  # the old password still works


async def test_refused_mail_is_retried_and_the_quota_is_enforced(mail_api: Api, inbox: Inbox):
    name, email = fresh()
    inbox.refuse, refused_before = 2, inbox.refused
    token = (await register(mail_api, name, email))["token"]
    mail = await mail_to(inbox, email)
    assert inbox.refused - refused_before == 2 and "verify-email" in link_in(mail)
    query = f"SELECT attempts, sent_at IS NOT NULL FROM mail_outbox WHERE to_address = '{email}'"
    for _ in range(200):  # the sender marks the row sent just after the server accepted it
        if (rows := await mail_api.rows(query)) != [(2, False)] and rows != [(2, 0)]:
            break
        await asyncio.sleep(0.05)
    assert [(a, bool(s)) for a, s in rows] == [(3, True)]
    # 6 mails per account per hour in this server: the sign-up mail, then 5 more
    for _ in range(5):
        sent = await mail_api.gql(RESEND, token=token)
        assert sent["data"]["resendVerificationEmail"] == {"email": email, "userErrors": []}
    refused = (await mail_api.gql(RESEND, token=token))["data"]["resendVerificationEmail"]
    assert refused["userErrors"][0]["code"] == "TOO_MANY_MAILS"
    assert "SUNRANK_MAILS_PER_ACCOUNT_PER_HOUR" in refused["userErrors"][0]["message"]
    links = [link_in(await mail_to(inbox, email)) for _ in range(5)]
    # only the newest verification link works: each new mail supersedes the previous ones
    assert (await mail_api.client.get(links[0])).status_code == 400
    assert (await mail_api.client.get(links[-1])).status_code == 200
