"""Every route's access rule: the scope it needs, the target its org patterns apply to,
and the action the audit trail records. One table, enforced for every request by the
resolver (`sfbroker.http`) before a route runs; a route missing here is refused, and the
authorization matrix test is generated from this table and `template.yaml`.

`target` is a template over the route's path parameters: `"{username}"`, `"pool:{tag}"`.
Rules that depend on the body (e.g. an auth-URL format needing `sandboxes:auth-url`) are
checked by the route with `Principal.require` on top of its rule here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sfbroker.auth.principal import ADMIN_SCOPE, Scope


@dataclass(frozen=True)
class Access:
    """What a route demands of its caller, and what it records in the audit trail."""

    scope: Scope | None
    """The scope a token needs; `None`: any authenticated caller."""
    target: str | None = None
    """What the caller's org patterns must cover, from the path parameters."""
    action: str | None = None
    """The audit action of every call (`None`: a read, not audited)."""
    public: bool = False
    """No authentication at all (API Gateway has `Authorizer: NONE` on it)."""

    def target_of(self, path_parameters: Mapping[str, str]) -> str | None:
        """The concrete target of a request to this route."""
        return self.target.format_map(path_parameters) if self.target else None


PUBLIC = Access(scope=None, public=True)

ROUTE_ACCESS: Mapping[tuple[str, str], Access] = {
    ("GET", "/health"): PUBLIC,
    # The API's description: no secret, no data; readable before one has credentials.
    ("GET", "/openapi.json"): PUBLIC,
    # The registered username comes from Salesforce: the route names it for the trail.
    ("POST", "/orgs"): Access("orgs:write", action="org.register"),
    # Filtered by the caller's org patterns in the route.
    ("GET", "/orgs"): Access("orgs:read"),
    ("GET", "/orgs/{username}"): Access("orgs:read", target="{username}"),
    ("DELETE", "/orgs/{username}"): Access("orgs:write", target="{username}", action="org.delete"),
    ("POST", "/orgs/{username}/token"): Access(
        "token:issue", target="{username}", action="token.issue"
    ),
    # Org patterns apply to the body's production org and sandbox username: the route
    # checks them (and names the sandbox for the trail).
    ("POST", "/sandboxes"): Access("orgs:write", action="sandbox.register"),
    # The route checks the production org, then the registered sandbox's username, and
    # `sandboxes:auth-url` for an `sfdxAuthUrl` answer.
    ("POST", "/sandboxes/{sandboxName}/auth"): Access("sandboxes:auth", action="sandbox.auth"),
    # Environments: org patterns apply to the environment's org (known once it is read,
    # or from the body): the routes check them. `authenticate=true` also needs
    # `token:issue` and is recorded as `environment.authenticate`.
    ("POST", "/environments"): Access("environments:write", action="environment.create"),
    ("GET", "/environments"): Access("environments:read"),
    ("GET", "/environments/{name}"): Access("environments:read", action="environment.read"),
    ("PATCH", "/environments/{name}"): Access("environments:write", action="environment.update"),
    ("DELETE", "/environments/{name}"): Access("environments:write", action="environment.delete"),
    # A pipeline that reads an environment may queue for it.
    ("POST", "/environments/{name}/leases"): Access("environments:read", action="lease.acquire"),
    ("GET", "/environments/{name}/leases/{leaseId}"): Access("environments:read"),
    ("DELETE", "/environments/{name}/leases/{leaseId}"): Access(
        "environments:read", action="lease.release"
    ),
    ("POST", "/api-tokens"): Access(ADMIN_SCOPE, action="apitoken.create"),
    ("GET", "/api-tokens"): Access(ADMIN_SCOPE),
    ("DELETE", "/api-tokens/{id}"): Access(
        ADMIN_SCOPE, target="apitoken:{id}", action="apitoken.revoke"
    ),
    ("GET", "/audit"): Access(ADMIN_SCOPE),
    # Pools: the caller's patterns must cover `pool:<tag>` here, and the Dev Hub in the
    # route; only the fetcher (or `pools:admin`) may return an org (the service checks).
    ("GET", "/pools/{tag}"): Access("pools:read", target="pool:{tag}"),
    ("POST", "/pools/{tag}/fetch"): Access("pools:fetch", target="pool:{tag}", action="pool.fetch"),
    ("DELETE", "/pools/{tag}/orgs/{username}"): Access(
        "pools:fetch", target="pool:{tag}", action="pool.return"
    ),
    ("POST", "/pools/{tag}/cleanup"): Access(
        "pools:admin", target="pool:{tag}", action="pool.cleanup"
    ),
}
