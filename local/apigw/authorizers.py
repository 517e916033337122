"""Lambda authorizers (REQUEST and TOKEN) run the way API Gateway runs them.

The authorizer function gets the documented authorizer event; it answers with a
principal, an IAM policy and a context, or raises ``Exception("Unauthorized")``. The
policy is evaluated against the method ARN of the request (an explicit Deny wins; no
Allow means 403), the context reaches the integration as ``requestContext.authorizer``,
and the answer is cached for ``ReauthorizeEvery`` seconds per identity source value --
so a cached policy is reused for other routes, exactly the trap API Gateway sets.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from local.template import PSEUDO_PARAMETERS, AuthorizerSpec

__all__ = ["AuthorizerFailure", "LambdaAuthorizer", "method_arn", "policy_allows"]

Invoke = Callable[[str, dict[str, Any]], Any]

_INVOKE_ACTIONS: Final = frozenset({"execute-api:invoke", "execute-api:*", "*"})


class AuthorizerFailure(Exception):
    """The request is refused: ``status`` and ``code`` as API Gateway would answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Decision:
    principal_id: str
    policy: Mapping[str, Any]
    context: dict[str, str]
    expires_at: float


def method_arn(api_id: str, stage: str, method: str, path: str) -> str:
    """``arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path>``.

    Region and account are the template's local pseudo parameters.
    """
    region, account = PSEUDO_PARAMETERS["AWS::Region"], PSEUDO_PARAMETERS["AWS::AccountId"]
    return (
        f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/"
        f"{method.upper()}/{path.lstrip('/')}"
    )


def policy_allows(policy: Mapping[str, Any], arn: str) -> bool:
    """Whether an authorizer's policy document lets the caller invoke ``arn``.

    Statements with ``execute-api:Invoke`` (or a wildcard action) count; resources may
    use ``*`` wildcards. An explicit Deny wins over any Allow; nothing matching denies.
    """
    statements = policy.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    allowed = False
    for statement in statements:
        if not isinstance(statement, Mapping):
            continue
        actions = _as_list(statement.get("Action"))
        if not any(str(action).lower() in _INVOKE_ACTIONS for action in actions):
            continue
        if not any(
            _arn_matches(str(resource), arn) for resource in _as_list(statement.get("Resource"))
        ):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        allowed = allowed or effect == "allow"
    return allowed


class LambdaAuthorizer:
    """One Lambda authorizer of an API, with API Gateway's result cache.

    ``invoke(function_logical_id, event)`` runs the authorizer function; ``clock`` is
    monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        spec: AuthorizerSpec,
        invoke: Invoke,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self._invoke = invoke
        self._clock = clock
        self._cache: dict[tuple[str, ...], _Decision] = {}
        self._lock = threading.Lock()

    def authorize(self, proxy_event: Mapping[str, Any], arn: str) -> dict[str, Any]:
        """The ``requestContext.authorizer`` for this request, or raise ``AuthorizerFailure``.

        ``proxy_event`` is the event the integration would get (without an authorizer);
        the authorizer event is derived from it.
        """
        identity = self._identity(proxy_event)
        decision = self._cached(identity)
        if decision is None:
            decision = self._decide(proxy_event, arn)
            if self.spec.ttl_seconds > 0:
                with self._lock:
                    self._cache[identity] = decision
        if not policy_allows(decision.policy, arn):
            raise AuthorizerFailure(
                403, "forbidden", "User is not authorized to access this resource"
            )
        return {**decision.context, "principalId": decision.principal_id}

    def _identity(self, proxy_event: Mapping[str, Any]) -> tuple[str, ...]:
        headers = {
            name.lower(): value for name, value in (proxy_event.get("headers") or {}).items()
        }
        values = tuple(headers.get(name.lower(), "") for name in self.spec.identity_headers)
        if not values or not all(values):
            # API Gateway refuses before calling the function when a source is missing.
            raise AuthorizerFailure(401, "unauthorized", "Unauthorized")
        return values

    def _cached(self, identity: tuple[str, ...]) -> _Decision | None:
        with self._lock:
            decision = self._cache.get(identity)
            if decision is not None and decision.expires_at <= self._clock():
                del self._cache[identity]
                return None
            return decision

    def _decide(self, proxy_event: Mapping[str, Any], arn: str) -> _Decision:
        event = self._event(proxy_event, arn)
        try:
            answer = self._invoke(self.spec.function_logical_id, event)
        except Exception as error:
            if str(error) == "Unauthorized":
                raise AuthorizerFailure(401, "unauthorized", "Unauthorized") from None
            raise _configuration_error() from error
        return self._decision(answer)

    def _event(self, proxy_event: Mapping[str, Any], arn: str) -> dict[str, Any]:
        if self.spec.payload_type == "TOKEN":
            header = self.spec.identity_headers[0].lower()
            headers = proxy_event.get("headers") or {}
            token = next((v for k, v in headers.items() if k.lower() == header), "")
            return {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}
        event = json.loads(json.dumps(proxy_event))  # a deep copy the function may mutate
        for key in ("body", "isBase64Encoded"):
            event.pop(key, None)
        event["requestContext"].pop("authorizer", None)
        return {"type": "REQUEST", "methodArn": arn, **event}

    def _decision(self, answer: Any) -> _Decision:
        if not isinstance(answer, Mapping):
            raise _configuration_error()
        principal_id = answer.get("principalId")
        policy = answer.get("policyDocument")
        context = answer.get("context") or {}
        if not isinstance(principal_id, str) or not isinstance(policy, Mapping):
            raise _configuration_error()
        if not isinstance(context, Mapping) or not all(
            isinstance(value, str | int | float | bool) for value in context.values()
        ):
            # API Gateway accepts only flat string/number/boolean context values.
            raise _configuration_error()
        return _Decision(
            principal_id=principal_id,
            policy=policy,
            context={str(key): _context_value(value) for key, value in context.items()},
            expires_at=self._clock() + self.spec.ttl_seconds,
        )


def _context_value(value: str | float | bool) -> str:
    # A REST API hands the context to the integration as strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _configuration_error() -> AuthorizerFailure:
    # API Gateway's AUTHORIZER_CONFIGURATION_ERROR, which the template answers with 503
    # and the API.md body (`dependency_unavailable`), as DynamoDB outages elsewhere.
    return AuthorizerFailure(503, "dependency_unavailable", "Authorizer error")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _arn_matches(pattern: str, arn: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, arn) is not None
