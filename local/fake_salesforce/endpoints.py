"""Names of the fake's Salesforce endpoints: request-count keys and fault targets."""

TOKEN = "oauth2/token"
REVOKE = "oauth2/revoke"
USERINFO = "oauth2/userinfo"
VERSIONS = "versions"
RESOURCES = "resources"
QUERY = "query"
TOOLING_QUERY = "tooling/query"
DESCRIBE = "sobjects/describe"
RECORD_GET = "sobjects/get"
RECORD_PATCH = "sobjects/patch"
RECORD_DELETE = "sobjects/delete"
SANDBOX_AUTH = "tooling/sandboxAuth"
UNKNOWN = "unknown"

ENDPOINTS = frozenset(
    {
        TOKEN,
        REVOKE,
        USERINFO,
        VERSIONS,
        RESOURCES,
        QUERY,
        TOOLING_QUERY,
        DESCRIBE,
        RECORD_GET,
        RECORD_PATCH,
        RECORD_DELETE,
        SANDBOX_AUTH,
        UNKNOWN,
    }
)
ANY = "*"
ALIASES = {
    "token": TOKEN,
    "revoke": REVOKE,
    "userinfo": USERINFO,
    "sandboxAuth": SANDBOX_AUTH,
    "describe": DESCRIBE,
}


def canonical_endpoint(name: str) -> str:
    """`name` as a count key (`token` → `oauth2/token`); `*` stays; unknown → ValueError."""
    resolved = ALIASES.get(name, name)
    if resolved != ANY and resolved not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {name!r}; one of {sorted(ENDPOINTS | set(ALIASES))}")
    return resolved
