"""The token API as API Gateway runs it, in-process: the real REQUEST authorizer function
(through the local gateway's authorizer emulation: identity source, policy evaluation,
context), then — if it allowed the call — the route's real handler with the authorizer's
context in `requestContext.authorizer`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sfbroker import runtime
from sfbroker.services.api_tokens import ApiTokenService, NewApiToken
from sfbroker.store.api_tokens import ApiTokenStore

from local import template as sam
from local.apigw.authorizers import AuthorizerFailure, LambdaAuthorizer, method_arn
from local.events import proxy_event
from tests.support.broker import Answer, Broker

TOKEN_API = "TokenApi"
TOKEN_API_ID = "t0k3n4p1id"


def bearer(token: str) -> str:
    return f"Bearer {token}"


class TokenApi:
    """Calls routes of the token API with an `Authorization` header, as a CI client does.

    `cache_seconds=0` (the default) runs the authorizer on every call: what "the next
    uncached authorizer call" sees. `clock` drives the cache when it is on.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        cache_seconds: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        api = next(a for a in sam.apis(broker.template) if a.logical_id == TOKEN_API)
        assert api.default_authorizer is not None
        spec = replace(api.authorizers[api.default_authorizer], ttl_seconds=cache_seconds)
        self.stage = api.stage_name
        self.authorizer = LambdaAuthorizer(spec, self._invoke, clock=clock)
        self.authorizer_calls = 0
        self.functions = {f.logical_id: f for f in sam.functions(broker.template)}
        self.routes = {
            (route.method, route.path): route
            for route in sam.api_routes(broker.template)
            if route.api_logical_id == TOKEN_API
        }

    def call(
        self,
        method: str,
        path_template: str,
        *,
        authorization: str | None = None,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Answer:
        route = self.routes[(method, path_template)]
        headers = {
            "Accept": "application/json",
            "Host": f"{TOKEN_API_ID}.execute-api.us-east-1.amazonaws.com",
            "User-Agent": "sfbroker-tests",
            "X-Forwarded-For": "198.51.100.7",
        }
        if authorization is not None:
            headers["Authorization"] = authorization
        if json_body is not None:
            headers["Content-Type"] = "application/json"
        event = proxy_event(
            method,
            path_template,
            path_params=path_params,
            query=query,
            body=json.dumps(json_body) if json_body is not None else None,
            headers=headers,
            iam_arn=None,
            source_ip="198.51.100.7",
        )
        event["requestContext"]["apiId"] = TOKEN_API_ID
        if not route.auth_none:
            arn = method_arn(TOKEN_API_ID, self.stage, method, event["path"])
            try:
                context = self.authorizer.authorize(event, arn)
            except AuthorizerFailure as refused:
                body = {"error": refused.code, "message": refused.message}
                return Answer(refused.status, body, {}, json.dumps(body))
            event["requestContext"]["authorizer"] = context
        result = self.broker.invoke(self.functions[route.function_logical_id], event)
        raw = result.get("body")
        self.broker.answers.append(raw or "")
        return Answer(
            result["statusCode"],
            json.loads(raw) if raw else None,
            dict(result.get("headers") or {}),
            raw,
        )

    def _invoke(self, function_logical_id: str, event: dict[str, Any]) -> Any:
        self.authorizer_calls += 1
        return self.broker.invoke(self.functions[function_logical_id], event)


def create_token(
    *,
    scopes: tuple[str, ...],
    orgs: tuple[str, ...] = (),
    name: str = "test",
    expires_in_days: int = 90,
    days_ago: int = 0,
) -> tuple[str, str]:
    """A token straight in the table (id, token), created `days_ago` days in the past."""
    service = runtime.api_token_service()
    if days_ago:
        past = runtime.utc_now() - timedelta(days=days_ago)
        service = ApiTokenService(ApiTokenStore(runtime.table()), lambda: past, service.max_days)
    record, token = service.create(
        NewApiToken(name=name, scopes=scopes, org_patterns=orgs, expires_in_days=expires_in_days),
        created_by="arn:aws:iam::123456789012:role/test",
    )
    return record.token_id, token.get_secret_value()
