"""The admin API under `/__fake__/`: lets another process drive the fake.

JSON in, JSON out, no authentication (the fake listens on 127.0.0.1 only). It exists
for the local stack and end-to-end tests; Salesforce clients never call it.
"""

import json
import re
from collections.abc import Callable
from typing import Any, TypeAlias

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from local.fake_salesforce.faults import FaultInjector
from local.fake_salesforce.state import FakeSalesforceState
from local.fake_salesforce.traffic import TrafficLog

ADMIN_PREFIX = "/__fake__/"

_ROUTES = Map(
    [
        Rule("/__fake__/health", endpoint="health", methods=["GET"]),
        Rule("/__fake__/counts", endpoint="counts", methods=["GET"]),
        Rule("/__fake__/counts/reset", endpoint="reset_counts", methods=["POST"]),
        Rule("/__fake__/faults", endpoint="list_faults", methods=["GET"]),
        Rule("/__fake__/faults", endpoint="add_fault", methods=["POST"]),
        Rule("/__fake__/faults", endpoint="clear_faults", methods=["DELETE"]),
        Rule("/__fake__/delay", endpoint="get_delay", methods=["GET"]),
        Rule("/__fake__/delay", endpoint="set_delay", methods=["PUT"]),
        Rule("/__fake__/seed", endpoint="seed", methods=["POST"]),
        Rule("/__fake__/state", endpoint="summary", methods=["GET"]),
        Rule("/__fake__/revoke", endpoint="revoke", methods=["POST"]),
        Rule("/__fake__/auth-urls", endpoint="mint_auth_url", methods=["POST"]),
        Rule("/__fake__/sandboxes", endpoint="create_sandbox", methods=["POST"]),
        Rule("/__fake__/scratch-orgs", endpoint="create_scratch_org", methods=["POST"]),
        Rule("/__fake__/sandboxes/<name>", endpoint="set_sandbox_status", methods=["PUT"]),
        Rule("/__fake__/sandboxes/<name>/refresh", endpoint="refresh_sandbox", methods=["POST"]),
        Rule("/__fake__/access-tokens/expire", endpoint="expire_sessions", methods=["POST"]),
        Rule("/__fake__/rotation", endpoint="set_rotation", methods=["PUT"]),
        Rule("/__fake__/users/deactivate", endpoint="deactivate_user", methods=["POST"]),
    ]
)

_AUTH_URL_TOKEN = re.compile(r"^force://(?:[^:@]*:[^:@]*:)?([^:@]+)@")

_Body: TypeAlias = dict[str, Any]


class _BadRequest(Exception):
    pass


class AdminApi:
    """Handlers of `/__fake__/…`."""

    def __init__(self, state: FakeSalesforceState, traffic: TrafficLog, faults: FaultInjector):
        self.state = state
        self.traffic = traffic
        self.faults = faults

    def dispatch(self, request: Request) -> Response:
        """Route and answer one admin request."""
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
            handler: Callable[..., object] = getattr(self, f"_{endpoint}")
            result = handler(_body(request), **args)
        except HTTPException as error:
            return _json({"error": error.name}, error.code or 500)
        except KeyError as error:
            return _json({"error": str(error.args[0] if error.args else error)}, 404)
        except (ValueError, TypeError, _BadRequest) as error:
            return _json({"error": str(error)}, 400)
        if result is None:
            return Response(status=204)
        return _json(result, 200)

    def _health(self, body: _Body) -> object:
        return {"ok": True, "base_url": self.state.base_url}

    def _counts(self, body: _Body) -> object:
        return {
            "counts": dict(self.traffic.counts),
            "requests": [r._asdict() for r in self.traffic.requests_log],
        }

    def _reset_counts(self, body: _Body) -> None:
        self.traffic.reset()

    def _list_faults(self, body: _Body) -> object:
        return {"faults": [f.to_json() for f in self.faults.pending()]}

    def _add_fault(self, body: _Body) -> object:
        fault = self.faults.add(
            kind=_required(body, "kind"),
            endpoint=str(body.get("endpoint", "*")),
            times=body.get("times", 1),
            seconds=float(body.get("seconds", 3.0)),
        )
        return fault.to_json()

    def _clear_faults(self, body: _Body) -> None:
        self.faults.clear()

    def _get_delay(self, body: _Body) -> object:
        return {"seconds": self.faults.delay}

    def _set_delay(self, body: _Body) -> object:
        self.faults.delay = float(_required(body, "seconds"))
        return {"seconds": self.faults.delay}

    def _seed(self, body: _Body) -> object:
        return self.state.seed_default().to_json()

    def _summary(self, body: _Body) -> object:
        return summarize(self.state)

    def _revoke(self, body: _Body) -> object:
        state = self.state
        if "username" in body:
            return {"revoked": state.revoke_user_tokens(str(body["username"]))}
        if "access_token" in body:
            return {"revoked": int(state.revoke_access_token(str(body["access_token"])))}
        token = body.get("refresh_token")
        if "auth_url" in body:
            match = _AUTH_URL_TOKEN.match(str(body["auth_url"]))
            if match is None:
                raise _BadRequest("auth_url is not an SFDX auth URL")
            token = match.group(1)
        if not token:
            raise _BadRequest("give one of refresh_token, auth_url, access_token, username")
        return {"revoked": int(state.revoke_refresh_token(str(token)))}

    def _mint_auth_url(self, body: _Body) -> object:
        client_id = str(body.get("client_id", "PlatformCLI"))
        return {
            "auth_url": self.state.mint_auth_url(_required(body, "username"), client_id=client_id)
        }

    def _create_sandbox(self, body: _Body) -> object:
        sandbox = self.state.create_sandbox(
            _required(body, "production_username"),
            _required(body, "name"),
            status=str(body.get("status", "Completed")),
        )
        return {"name": sandbox.name, "status": sandbox.status}

    def _create_scratch_org(self, body: _Body) -> object:
        """A new `Active` scratch org under a Dev Hub, `Available` in pool `pool_tag`
        (what a pool's replenishment job would add)."""
        scratch = self.state.create_scratch_org(
            _required(body, "dev_hub_username"), pool_tag=_required(body, "pool_tag")
        )
        return {"username": scratch.user.username}

    def _set_sandbox_status(self, body: _Body, name: str) -> None:
        self.state.set_sandbox_status(
            _required(body, "production_username"), name, _required(body, "status")
        )

    def _refresh_sandbox(self, body: _Body, name: str) -> object:
        sandbox = self.state.refresh_sandbox(
            _required(body, "production_username"),
            name,
            status=str(body.get("status", "Completed")),
        )
        return {"name": sandbox.name, "status": sandbox.status, "org_id": sandbox.org_id}

    def _expire_sessions(self, body: _Body) -> object:
        username = body.get("username")
        return {"expired": self.state.expire_access_tokens(str(username) if username else None)}

    def _set_rotation(self, body: _Body) -> None:
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise _BadRequest("enabled must be a boolean")
        self.state.set_refresh_token_rotation(_required(body, "username"), enabled)

    def _deactivate_user(self, body: _Body) -> None:
        self.state.deactivate_user(_required(body, "username"))


def summarize(state: FakeSalesforceState) -> dict[str, object]:
    """Orgs, users, sandboxes and Dev Hub pool rows, without any token."""
    with state.lock:
        return {
            "base_url": state.base_url,
            "orgs": [
                {
                    "id": org.id,
                    "name": org.name,
                    "organization_type": org.organization_type,
                    "is_sandbox": org.is_sandbox,
                    "is_scratch": org.is_scratch,
                    "is_dev_hub": org.is_dev_hub,
                    "my_domain": org.my_domain,
                    "deleted": org.deleted,
                    "rotate_refresh_tokens": org.rotate_refresh_tokens,
                    "users": [u.username for u in state.org_users(org)],
                }
                for org in state.orgs.values()
            ],
            "sandboxes": [
                {
                    "name": s.name,
                    "status": s.status,
                    "production_org_id": s.production_org_id,
                    "org_id": s.org_id,
                }
                for s in state.sandboxes
            ],
            "scratch_org_infos": [
                {
                    "id": r.fields["Id"],
                    "status": r.fields["Status"],
                    "pool_tag": r.fields["Pooltag__c"],
                    "allocation_status": r.fields["Allocation_status__c"],
                    "signup_username": r.fields["SignupUsername"],
                }
                for r in state.dev_hub_records.values()
                if r.entity.name == "ScratchOrgInfo"
            ],
        }


def _body(request: Request) -> _Body:
    raw = request.get_data()
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        raise _BadRequest("body is not JSON") from None
    if not isinstance(document, dict):
        raise _BadRequest("body must be a JSON object")
    return document


def _required(body: _Body, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise _BadRequest(f"{key} is required")
    return value


def _json(body: object, status: int) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")
