"""Drive the real handlers in-process with API Gateway proxy events, on a real backend.

The backend is moto's server (KMS, and DynamoDB unless DynamoDB Local is chosen) and
the fake Salesforce, all over HTTP on 127.0.0.1. Routes, handlers, environment and
tables come from `template.yaml`, so what is tested is what deploys.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sfbroker import runtime

from local import template as sam
from local.events import proxy_event
from local.lambdas import invoke
from local.provision import LocalResources, provision
from tests.support import iam

# Generous for a loaded 2-core CI machine; the timeout tests stall longer than this.
TEST_SALESFORCE_SETTINGS = {"SALESFORCE_TIMEOUT_SECONDS": "3", "SALESFORCE_MAX_RETRIES": "2"}


def configure_handlers(
    template: Mapping[str, Any],
    set_env: Callable[[str, str], None],
    *,
    aws_endpoint_url: str,
    dynamodb_endpoint_url: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> LocalResources:
    """Fresh tables and key from the template, and the in-process handlers pointed at them.

    `set_env` sets one variable (`monkeypatch.setenv`, or `os.environ.__setitem__`);
    `overrides` win over the template's values. The runtime forgets its cached clients.
    """
    resources = provision(
        aws_endpoint_url=aws_endpoint_url,
        dynamodb_endpoint_url=dynamodb_endpoint_url,
        stack_name=f"t{uuid.uuid4().hex[:10]}",
        template=template,
    )
    environment = {**resources.environment, **TEST_SALESFORCE_SETTINGS, **(overrides or {})}
    for name, value in environment.items():
        set_env(name, value)
    runtime.reset()
    return resources


class CallRecorder(list[iam.Call]):
    """Records each AWS request as IAM sees it (`iam.Call`), from its API parameters."""

    def __call__(self, event_name: str, params: Mapping[str, Any], **_: Any) -> None:
        service_name, operation = event_name.split(".", 2)[1:]
        self.extend(iam.calls_of(service_name, operation, params))


def drop_cached_token(broker: Broker, username: str) -> None:
    """Delete an org's cached access token, so its next token request refreshes."""
    key = {"PK": {"S": f"ORG#{username}"}, "SK": {"S": "TOKEN"}}
    broker.dynamodb.delete_item(TableName=broker.table_name, Key=key)


class CallCounter(Counter[str]):
    """Counts the AWS API calls a botocore client makes (`"dynamodb.Query"`, …)."""

    def __call__(self, event_name: str, **_: Any) -> None:
        service_name, operation = event_name.split(".", 2)[1:]
        self[f"{service_name}.{operation}"] += 1

    def of(self, service: str) -> int:
        return sum(n for name, n in self.items() if name.startswith(f"{service}."))


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]
    raw: str | None

    @property
    def error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else None


@dataclass
class Broker:
    """The API, called as API Gateway would call it; records every raw answer it got."""

    template: dict[str, Any]
    table_name: str
    dynamodb: Any
    aws_calls: CallCounter = field(default_factory=CallCounter)
    iam_calls: CallRecorder = field(default_factory=CallRecorder)
    answers: list[str] = field(default_factory=list)

    def watch_aws(self) -> None:
        """Count the calls of the clients the handlers use (after `runtime.reset()`)."""
        self.aws_calls.clear()
        for client in (runtime.dynamodb(), runtime.kms()):
            client.meta.events.register("before-call", self.aws_calls)
            client.meta.events.register("before-parameter-build", self.iam_calls)

    def call(
        self,
        method: str,
        path_template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        json_body: Any = None,
        raw_body: str | None = None,
        headers: Mapping[str, str] | None = None,
        iam_arn: str | None = "arn:aws:iam::123456789012:role/ci",
        authorizer: Mapping[str, Any] | None = None,
    ) -> Answer:
        spec = self._function_for(method, path_template)
        body = json.dumps(json_body) if json_body is not None else raw_body
        event = proxy_event(
            method,
            path_template,
            path_params=path_params,
            query=query,
            body=body,
            headers=headers,
            iam_arn=iam_arn,
            authorizer=authorizer,
        )
        result = self.invoke(spec, event)
        raw = result.get("body")
        self.answers.append(raw or "")
        parsed = json.loads(raw) if raw else None
        return Answer(result["statusCode"], parsed, dict(result.get("headers") or {}), raw)

    def invoke(self, spec: sam.FunctionSpec, event: dict[str, Any]) -> Any:
        """Run one function's handler; every AWS call it made must be granted to it."""
        before = len(self.iam_calls)
        try:
            return invoke(spec.code_uri, spec.handler, event, spec.logical_id)
        finally:
            self._assert_granted(spec.logical_id, self.iam_calls[before:])

    def table_items(self) -> list[dict[str, Any]]:
        """Every item of the data table but the audit trail, raw (as DynamoDB holds it)."""
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.table_name)
        return [
            item
            for page in pages
            for item in page["Items"]
            if not item["PK"]["S"].startswith("AUDIT#")
        ]

    def snapshot(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The table's org data by (PK, SK): compare one taken before a failed write path
        with one taken after."""
        return {(item["PK"]["S"], item["SK"]["S"]): item for item in self.table_items()}

    def _assert_granted(self, function: str, calls: list[iam.Call]) -> None:
        """Every AWS call a function made is allowed by its role in template.yaml.

        Action, table or index, partition keys, written attributes and encryption
        context: so a least-privilege policy that lacks a grant fails here, not in
        production with AccessDenied.
        """
        missing = sorted({str(c) for c in calls if not iam.allowed(self.template, function, c)})
        assert not missing, f"{function} calls {missing}, not granted in template.yaml"

    def _function_for(self, method: str, path_template: str) -> sam.FunctionSpec:
        for spec in sam.functions(self.template):
            if any(r.method == method and r.path == path_template for r in spec.events):
                return spec
        raise KeyError(f"no route {method} {path_template} in template.yaml")
