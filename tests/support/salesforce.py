"""Small facts about fake-Salesforce credentials used across tests."""

from __future__ import annotations


def refresh_token_of(auth_url: str) -> str:
    """The refresh token inside `force://<id>:<secret>:<refresh token>@<host>`."""
    return auth_url.rsplit("@", 1)[0].rsplit(":", 1)[1]
