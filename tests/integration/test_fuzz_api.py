"""Property-based fuzzing: every route validates its input and answers errors as API.md says.

Requests go through the local API Gateway (route matching, the real bearer authorizer)
to the real handlers, on moto, with the fake Salesforce behind them and an org
registered, so generated requests reach past validation too. Every answer must keep the
contract:

- never a 5xx: Salesforce and AWS are local and healthy, so not even 502/503/504;
- every status >= 400 has the body `{"error", "message", "requestId"}` (+ `details`, a
  non-empty list of `{field, message}`), a (status, code) pair of API.md's table, and
  the request id of the `x-amzn-RequestId` header;
- never a stack trace, never a credential (the API token, an auth URL sent or stored).

Three generators:

- schemathesis, from the OpenAPI document the API serves: valid and schema-violating
  requests (examples, boundary values, random data, wrong media types), authenticated;
- raw bodies (any bytes, any media type) for the routes that take a body;
- any `Authorization` header, for every route.

Both APIs: the token API (bearer, the Lambda authorizer) and the IAM API (every request
signed with SigV4 by `CurrentGateway` just before the gateway verifies it).

Bounded and reproducible: derandomized, `SFBROKER_FUZZ_EXAMPLES` examples per operation
(15 in `make test`, 100 in `make fuzz`), no deadline. `FUZZ_CASES` counts the requests
sent per API; the run prints it. Nothing leaves 127.0.0.1: the only Salesforce host the
broker may call is the fake's `127.0.0.1:<port>`, so a fuzzed auth URL naming any other
host is refused before a connection is made.
"""

from __future__ import annotations

import copy
import io
import json
import os
import string
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pytest
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sfbroker import errors, runtime
from sfbroker.auth.rules import ROUTE_ACCESS
from sfbroker.authurl import parse_auth_url
from sfbroker.openapi import openapi_document
from sfbroker.services.api_tokens import NewApiToken
from werkzeug.test import Client

from local import template as sam
from local.apigw import GatewayApp
from local.apigw.server import build_gateway
from local.apigw.sigv4 import IamUser
from local.fake_salesforce import start_fake_salesforce
from local.stack import new_local_user
from tests.support.broker import configure_handlers
from tests.support.run_summary import report

REGISTERED: Final = "admin@acme.com"
# Stands for the fake's working auth URL, whose port is known only at run time: the
# document offers it as an example and the test swaps in the real one before sending.
AUTH_URL_PLACEHOLDER: Final = "force://PlatformCLI::5AepWORKINGAUTHURL@fake-salesforce.invalid"
MAX_EXAMPLES: Final = int(os.environ.get("SFBROKER_FUZZ_EXAMPLES", "15"))
APIS: Final = ("bearer", "sigv4")
# Requests sent by the generated-request test, per API ("bearer", "sigv4") and status.
FUZZ_CASES: Final = Counter[tuple[str, int]]()

SETTINGS: Final = settings(
    deadline=None,
    derandomize=True,
    database=None,
    # One world per operation, shared by its examples: state accumulates, as in a
    # deployment. Requests run in-process, some through KMS: never "too slow".
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# The gateway's own refusals (local/apigw/app.py), besides the handlers' BrokerErrors.
GATEWAY_ERRORS: Final = {(401, "unauthorized"), (404, "not_found"), (405, "method_not_allowed")}


def _subclasses(cls: type[errors.BrokerError]) -> Iterator[type[errors.BrokerError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


# (status, code) pairs of API.md's error table, as `sfbroker/errors.py` encodes them.
ERROR_CODES: Final = {(e.status, e.code) for e in _subclasses(errors.BrokerError)} | GATEWAY_ERRORS
ERROR_KEYS: Final = {"error", "message", "requestId"}
STACK_TRACE: Final = ("Traceback (most recent call last)", 'File "/')


def _document_with_examples() -> dict[str, Any]:
    """The served document plus examples that reach past validation: the registered org's
    username and a working auth URL. Examples change what is generated, not what is valid."""
    document = copy.deepcopy(openapi_document())
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if (parameter["in"], parameter["name"]) == ("path", "username"):
                    parameter["examples"] = {"registered": {"value": REGISTERED}}
    register = document["components"]["schemas"]["RegisterOrgRequest"]
    register["properties"]["sfdxAuthUrl"]["examples"] = [AUTH_URL_PLACEHOLDER]
    return document


OPEN_ROUTES: Final = frozenset(route for route, rule in ROUTE_ACCESS.items() if rule.public)


def _operations(*, with_body: bool = False) -> list[tuple[str, str]]:
    """(method, path with its parameters filled in) of every operation: the registered
    org's username, the names the routes know; any other parameter (a pool tag, …) `fuzz`."""
    filled = defaultdict(
        lambda: "fuzz",
        username=REGISTERED.replace("@", "%40"),
        id="fuzzfuzzfuzz",
        sandboxName="uat",
        name="UAT",
        leaseId="fuzzlease",
    )
    return [
        (method.upper(), path.format_map(filled))
        for path, operations in openapi_document()["paths"].items()
        for method, operation in operations.items()
        if not with_body or "requestBody" in operation
    ]


class CurrentGateway:
    """The WSGI app requests go to: the gateway of the running test's world.

    The schema is loaded at import (one test per operation) while each world is built by
    a fixture; schemathesis' own follow-up requests reach the same gateway through this.
    With `signer` set, every request is signed with SigV4 first (the IAM API).
    """

    gateway: GatewayApp | None = None
    signer: IamUser | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        assert self.gateway is not None, "no world is running"
        if self.signer is not None:
            sign(environ, self.signer)
        return self.gateway(environ, start_response)


def sign(environ: dict[str, Any], user: IamUser) -> None:
    """Sign a WSGI request in place, as an AWS SDK would sign what it sends (service
    `execute-api`): the raw path and query, the host, the date, the exact body."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    host = environ.get("HTTP_HOST") or "localhost"
    target = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
    request = AWSRequest(
        method=environ["REQUEST_METHOD"],
        url=f"http://{host}{target}",
        data=body,
        headers={"Host": host},
    )
    SigV4Auth(
        Credentials(user.access_key_id, user.secret_access_key), "execute-api", "us-east-1"
    ).add_auth(request)
    environ["HTTP_HOST"] = host
    environ["HTTP_AUTHORIZATION"] = request.headers["Authorization"]
    environ["HTTP_X_AMZ_DATE"] = request.headers["X-Amz-Date"]


CURRENT: Final = CurrentGateway()
CONFIG: Final = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",  # valid and schema-violating data
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "phases": {"stateful": {"enabled": False}},
        # The contract is checked below; of schemathesis' checks only "no 5xx" (which
        # also re-sends its media-type probes to tell a bad header from a broken route).
        "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
    }
)
schema = schemathesis.openapi.from_dict(_document_with_examples(), config=CONFIG)
schema.app = CURRENT


pytestmark = pytest.mark.filterwarnings(
    # Powertools' note on multipart bodies API Gateway did not base64-encode: fuzzed here.
    "ignore:Received multipart/form-data without base64 encoding:UserWarning"
)


@dataclass(frozen=True)
class World:
    """An admin token for the gateway, and the fake's auth URL of the registered org."""

    token: str
    auth_url: str
    user: IamUser

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def secrets(self) -> tuple[str, ...]:
        """What no answer may contain: the API token, its secret, the org's credential,
        the IAM user's secret key."""
        secret = self.token.split("_", 2)[2]  # sfb_<id>_<secret>; the id is no secret
        refresh_token = parse_auth_url(self.auth_url).refresh_token.get_secret_value()
        return self.token, secret, self.auth_url, refresh_token, self.user.secret_access_key

    def headers_for(self, api: str) -> dict[str, str]:
        """The bearer header (token API), or none: the gateway wrapper signs (IAM API)."""
        CURRENT.signer = self.user if api == "sigv4" else None
        return self.headers if api == "bearer" else {}

    def send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        sent = dict(self.headers if headers is None else headers)
        response = Client(CURRENT).open(path, method=method, data=body, headers=sent)
        label = f"{method} {path} headers={sent!r} body={(body or b'')[:300]!r}"
        return Answer(
            label=label.replace(self.token, "[admin token]"),
            status=response.status_code,
            headers={name.lower(): value for name, value in response.headers.items()},
            text=response.get_data(as_text=True),
        )


@dataclass(frozen=True)
class Answer:
    label: str
    status: int
    headers: dict[str, str]
    text: str


@pytest.fixture(scope="module", autouse=True)
def _fuzz_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for api in APIS:
        statuses = {status: n for (of, status), n in sorted(FUZZ_CASES.items()) if of == api}
        if statuses:
            report(
                request.config,
                f"fuzz [{api}]: {sum(statuses.values())} generated requests, answers by status "
                f"{statuses}, {MAX_EXAMPLES} examples per operation",
            )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Iterator[World]:
    """Fresh tables and key on moto, the fake Salesforce, an admin token, an org registered."""
    template = sam.load_template()
    with start_fake_salesforce() as salesforce:
        salesforce.state.create_production_org(REGISTERED)
        fake_host = salesforce.base_url.split("://", 1)[1]
        # The fake and nothing else, over http: no fuzzed auth URL reaches beyond it.
        configure_handlers(
            template,
            monkeypatch.setenv,
            aws_endpoint_url=moto_endpoint,
            overrides={"SALESFORCE_ALLOWED_HOSTS": fake_host, "SALESFORCE_HTTP_HOSTS": fake_host},
        )
        _, token = runtime.api_token_service().create(
            NewApiToken(name="fuzz", scopes=("admin",)), created_by="test_fuzz_api"
        )
        user = new_local_user()
        CURRENT.gateway = build_gateway(template, users=[user])
        world = World(token.get_secret_value(), salesforce.state.mint_auth_url(REGISTERED), user)
        body = json.dumps({"sfdxAuthUrl": world.auth_url}).encode()
        registered = world.send(
            "POST",
            "/orgs",
            body=body,
            headers={**world.headers, "Content-Type": "application/json"},
        )
        assert registered.status == 201, registered
        try:
            yield world
        finally:
            CURRENT.gateway = None
            CURRENT.signer = None
            runtime.reset()


def assert_contract(answer: Answer, world: World, sent: Iterable[str] = ()) -> None:
    """What API.md promises of any answer, whatever was asked. `sent`: values the request
    carried that the answer must not echo (auth URLs)."""
    label = f"{answer.label} -> {answer.status}: {answer.text[:2000]!r}"
    assert answer.status < 500, label
    for marker in STACK_TRACE:
        assert marker not in answer.text, label
    for secret in (*world.secrets, *sent):
        assert secret not in answer.text, f"a credential was echoed: {label}"
    if answer.status < 400:
        return
    assert answer.headers.get("content-type", "").startswith("application/json"), label
    body = json.loads(answer.text)
    assert isinstance(body, dict), label
    assert ERROR_KEYS <= body.keys() <= ERROR_KEYS | {"details"}, label
    assert all(isinstance(body[key], str) and body[key] for key in ERROR_KEYS), label
    assert (answer.status, body["error"]) in ERROR_CODES, label
    assert body["requestId"] == answer.headers.get("x-amzn-requestid"), label
    if "details" in body:
        details = body["details"]
        assert isinstance(details, list), label
        assert details, label
        for detail in details:
            assert isinstance(detail, dict), label
            assert detail.keys() == {"field", "message"}, label
            assert all(isinstance(value, str) and value for value in detail.values()), label


def _auth_urls(case: schemathesis.Case[Any]) -> list[str]:
    """The auth URL a case sends, if it is long enough to be told apart from our messages."""
    sent = case.body.get("sfdxAuthUrl") if isinstance(case.body, dict) else None
    return [sent] if isinstance(sent, str) and len(sent) >= 16 else []


@pytest.mark.parametrize("api", APIS)
@schema.parametrize()
@SETTINGS
def test_generated_requests_get_answers_of_the_contract(
    case: schemathesis.Case[Any], world: World, api: str
) -> None:
    if isinstance(case.body, dict) and case.body.get("sfdxAuthUrl") == AUTH_URL_PLACEHOLDER:
        case.body["sfdxAuthUrl"] = world.auth_url
    headers = world.headers_for(api)
    response = case.call(headers=headers)
    FUZZ_CASES[api, response.status_code] += 1
    answer = Answer(
        label=f"[{api}] " + case.as_curl_command(headers=headers),  # token is "[Filtered]"
        status=response.status_code,
        headers={name: values[-1] for name, values in response.headers.items()},
        text=response.text,
    )
    assert_contract(answer, world, _auth_urls(case))
    case.validate_response(response, headers=headers)
    if (case.method, case.path, answer.status) == ("GET", "/openapi.json", 200):
        assert json.loads(answer.text) == openapi_document()  # what was fuzzed is served


MEDIA_TYPES: Final = (
    None,
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=x",
)
JSON_VALUES: Final = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=8,
)
RAW_BODIES: Final = (
    st.binary(max_size=64)
    | JSON_VALUES.map(lambda value: json.dumps(value).encode())
    | st.text(max_size=64).map(lambda text: text.encode("utf-8", "surrogatepass"))
)


@pytest.mark.parametrize(("method", "path"), _operations(with_body=True))
@settings(SETTINGS, max_examples=MAX_EXAMPLES)
@given(media_type=st.sampled_from(MEDIA_TYPES), body=RAW_BODIES)
@example(media_type="application/json", body=b"9" * 5000)  # past int()'s digit limit
@example(media_type="application/json", body=b"[" * 100_000 + b"]" * 100_000)  # too deep
@example(media_type="application/json", body=b'{"sfdxAuthUrl": "\xc3\x28"}')  # not UTF-8
def test_raw_bodies_get_answers_of_the_contract(
    world: World, method: str, path: str, media_type: str | None, body: bytes
) -> None:
    headers = dict(world.headers)
    if media_type is not None:
        headers["Content-Type"] = media_type
    assert_contract(world.send(method, path, body=body, headers=headers), world)


AUTHORIZATIONS: Final = (
    st.text(alphabet=string.printable.strip() + " ", max_size=80)
    | st.builds("Bearer {}".format, st.text(alphabet=string.printable.strip(), max_size=80))
    | st.builds(
        "Bearer sfb_{}_{}".format,
        st.text(alphabet=string.ascii_lowercase + string.digits, min_size=12, max_size=12),
        st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=43),
    )
)


@pytest.mark.parametrize(("method", "path"), _operations())
@settings(SETTINGS, max_examples=10)
@given(authorization=st.none() | AUTHORIZATIONS)
def test_any_authorization_header_gets_an_answer_of_the_contract(
    world: World, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    body = b"{}" if (method, path) != ("POST", "/orgs") else None
    answer = world.send(method, path, body=body, headers=headers)
    assert_contract(answer, world)
    if (method, path) not in OPEN_ROUTES:  # /health, /openapi.json: no parameters to fill
        assert answer.status in (401, 403), answer
