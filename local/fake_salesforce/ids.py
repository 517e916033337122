"""Salesforce-shaped identifiers and credentials: record ids, tokens, codes.

Ids follow Salesforce's layout (3-character key prefix, 12 more characters, then the
3-character case-safe checksum), so code that slices or compares 15/18-character ids
behaves as it would against a real org.
"""

import secrets
import string

_BASE62 = string.ascii_letters + string.digits
_TOKEN_ALPHABET = _BASE62 + "._"
_CHECKSUM_ALPHABET = string.ascii_uppercase + "012345"


def id_checksum(id15: str) -> str:
    """Return the 3-character suffix that turns a 15-character id into its 18-character form."""
    suffix = ""
    for chunk_start in range(0, 15, 5):
        bits = 0
        for position, char in enumerate(id15[chunk_start : chunk_start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def new_record_id(key_prefix: str) -> str:
    """A fresh 18-character record id with the given 3-character key prefix."""
    unique = "".join(secrets.choice(_BASE62) for _ in range(9))
    id15 = f"{key_prefix}8d0{unique}"
    return id15 + id_checksum(id15)


def id15(record_id: str) -> str:
    """The case-sensitive 15-character form of a 15- or 18-character id."""
    return record_id[:15]


def _random_text(length: int, alphabet: str = _TOKEN_ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_refresh_token() -> str:
    """A refresh token shaped like Salesforce's (`5Aep861…`), valid in an SFDX auth URL."""
    return "5Aep861" + _random_text(80)


def new_access_token(org_id: str) -> str:
    """An access token shaped like Salesforce's: `<15-char org id>!AQ<opaque>`."""
    return f"{id15(org_id)}!AQ" + _random_text(100)


def new_authorization_code() -> str:
    """An authorization code; like real ones it ends in `==`, so clients must form-encode it."""
    return "aPrx" + _random_text(60, _BASE62) + "=="


def new_password() -> str:
    """A scratch-org user password (pool records carry one in `Password__c`)."""
    return _random_text(12, _BASE62) + "!1a"
