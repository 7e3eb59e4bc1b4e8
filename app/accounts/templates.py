"""The texts of account mail, in English and French (the account's language).

Plain text only: links stay clickable in every client, and nothing is fetched
from a remote server when the mail is opened.
"""

from __future__ import annotations

from typing import NamedTuple

LANGUAGES = ("en", "fr")


class Template(NamedTuple):
    subject: str
    body: str


TEMPLATES: dict[str, dict[str, Template]] = {
    "verify": {
        "en": Template(
            "Confirm your email address for Sunrank",
            "Hello {username},\n\n"
            "Please confirm that {email} is your address by opening this link:\n\n"
            "{link}\n\n"
            "The link works once and expires in {hours} hours. If you did not ask for "
            "it, ignore this message: nothing changes.\n\n— Sunrank\n",
        ),
        "fr": Template(
            "Confirmez votre adresse e-mail pour Sunrank",
            "Bonjour {username},\n\n"
            "Merci de confirmer que {email} est bien votre adresse en ouvrant ce lien :\n\n"
            "{link}\n\n"
            "Le lien ne fonctionne qu'une fois et expire dans {hours} heures. Si vous "
            "n'avez rien demandé, ignorez ce message : rien ne change.\n\n— Sunrank\n",
        ),
    },
    "reset": {
        "en": Template(
            "Reset your Sunrank password",
            "Hello {username},\n\n"
            "Someone (hopefully you) asked to reset the password of your account. "
            "Choose a new one here:\n\n{link}\n\n"
            "The link works once and expires in {minutes} minutes. If you did not ask "
            "for it, ignore this message: your password stays as it is.\n\n— Sunrank\n",
        ),
        "fr": Template(
            "Réinitialisez votre mot de passe Sunrank",
            "Bonjour {username},\n\n"
            "Quelqu'un (vous, espérons-le) a demandé à réinitialiser le mot de passe de "
            "votre compte. Choisissez-en un nouveau ici :\n\n{link}\n\n"
            "Le lien ne fonctionne qu'une fois et expire dans {minutes} minutes. Si vous "
            "n'avez rien demandé, ignorez ce message : votre mot de passe reste le même."
            "\n\n— Sunrank\n",
        ),
    },
    "password_changed": {
        "en": Template(
            "Your Sunrank password was changed",
            "Hello {username},\n\n"
            "The password of your account was just changed, and every other session "
            "was signed out. If this was not you, reset your password at once:\n\n"
            "{link}\n\n— Sunrank\n",
        ),
        "fr": Template(
            "Votre mot de passe Sunrank a été modifié",
            "Bonjour {username},\n\n"
            "Le mot de passe de votre compte vient d'être modifié, et toutes les autres "
            "sessions ont été déconnectées. Si ce n'était pas vous, réinitialisez-le "
            "tout de suite :\n\n{link}\n\n— Sunrank\n",
        ),
    },
}


def render(kind: str, language: str, **values: object) -> Template:
    template = TEMPLATES[kind].get(language) or TEMPLATES[kind]["en"]
    return Template(template.subject, template.body.format(**values))


def language(value: object) -> str:
    """A supported language code ("en" for anything else)."""
    if isinstance(value, str) and value.lower()[:2] in LANGUAGES:
        return value.lower()[:2]
    return "en"
