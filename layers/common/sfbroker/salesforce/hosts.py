"""Which hosts may be contacted, and over which scheme (no SSRF through an auth URL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from sfbroker.errors import HostNotAllowed, SalesforceError

HTTPS_PORT = "443"
_NETLOC = re.compile(r"[a-z0-9.-]+(?::\d{1,5})?")


@dataclass(frozen=True)
class HostPolicy:
    """Host globs that may be reached over https, and the few (local only) over http.

    A glob with a colon (`127.0.0.1:*`) is matched against `host:port`; any other
    matches the host name alone, and only on https's own port (none given, or 443):
    `acme.my.salesforce.com:22` is refused before anything is dialled.
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
        if _matches(_hostname(host), self.allowed):
            raise HostNotAllowed(
                f"The host '{_hostname(host)}' may only be reached on port 443, not on "
                f"port {_port(host)}"
            )
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
            if _port(host) not in (None, HTTPS_PORT):
                raise  # another port: refused as it is in an auth URL
            raise SalesforceError(
                f"Salesforce pointed at '{_hostname(host)}', which is not an allowed host"
            ) from None
        if not expected.startswith(parts.scheme + "://"):
            raise SalesforceError("Salesforce answered with a URL of the wrong scheme")
        return url.rstrip("/")


def _hostname(host: str) -> str:
    return host.rsplit(":", 1)[0] if ":" in host else host


def _port(host: str) -> str | None:
    return host.rsplit(":", 1)[1] if ":" in host else None


def _matches(host: str, globs: tuple[str, ...]) -> bool:
    on_https_port = _port(host) in (None, HTTPS_PORT)
    return any(
        fnmatchcase(host, glob)
        if ":" in glob
        else on_https_port and fnmatchcase(_hostname(host), glob)
        for glob in globs
    )
