"""Which hosts may be contacted, and over which scheme (no SSRF through an auth URL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from sfbroker.errors import HostNotAllowed, SalesforceError

_NETLOC = re.compile(r"[a-z0-9.-]+(?::\d{1,5})?")


@dataclass(frozen=True)
class HostPolicy:
    """Host globs that may be reached over https, and the few (local only) over http.

    A glob with a colon (`127.0.0.1:*`) is matched against `host:port`, any other
    against the host name alone.
    """

    allowed: tuple[str, ...]
    plain_http: tuple[str, ...] = ()

    def base_url(self, host: str) -> str:
        """`scheme://host` for a host from an auth URL; `HostNotAllowed` if it is not allowed."""
        host = host.lower()
        if _matches(host, self.plain_http):
            return f"http://{host}"
        if _matches(host, self.allowed):
            return f"https://{host}"
        raise HostNotAllowed(f"The host '{_hostname(host)}' is not an allowed Salesforce host")

    def check_url(self, url: str) -> str:
        """Return `url` if it points at an allowed host over the right scheme.

        Used for URLs Salesforce hands back (instance and login URLs) before they are
        called; an answer pointing elsewhere is treated as a bad answer, not followed.
        """
        parts = urlsplit(url)
        host = (parts.netloc or "").lower()
        if not _NETLOC.fullmatch(host) or parts.scheme not in ("http", "https"):
            raise SalesforceError("Salesforce answered with an unusable URL")
        try:
            expected = self.base_url(host)
        except HostNotAllowed:
            raise SalesforceError(
                f"Salesforce pointed at '{_hostname(host)}', which is not an allowed host"
            ) from None
        if not expected.startswith(parts.scheme + "://"):
            raise SalesforceError("Salesforce answered with a URL of the wrong scheme")
        return url.rstrip("/")


def _hostname(host: str) -> str:
    return host.rsplit(":", 1)[0] if ":" in host else host


def _matches(host: str, globs: tuple[str, ...]) -> bool:
    name = _hostname(host)
    return any(fnmatchcase(host if ":" in glob else name, glob) for glob in globs)
