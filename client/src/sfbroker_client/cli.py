"""`sfbroker`: get Salesforce credentials from an sfbroker server in a CI job."""

import argparse
import getpass
import hashlib
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import requests
from requests.auth import AuthBase

from sfbroker_client import __version__
from sfbroker_client.api import ApiError, BrokerClient, ConnectionFailed, JsonObject
from sfbroker_client.auth import (
    BearerAuth,
    IamUnavailable,
    NoAwsCredentials,
    iam_auth_from_environment,
)
from sfbroker_client.output import (
    FORMATS,
    OutputError,
    redact,
    secret_values,
    write_env,
    write_github,
    write_json,
)
from sfbroker_client.salesforce_cli import DEFAULT_SF_BIN, SfLoginFailed, log_in

PROG = "sfbroker"


class ExitCode(IntEnum):
    """Process exit codes; the table in `--help` and README.md."""

    OK = 0
    ERROR = 1  # unexpected, or a server error (5xx)
    USAGE = 2  # bad arguments or configuration; the server's 400
    AUTH = 3  # 401 / 403; no AWS credentials for --iam
    NOT_FOUND = 4  # 404
    CONFLICT = 5  # 409 / 422: the request is fine, the state is not
    NETWORK = 6  # the server cannot be reached
    SF_LOGIN = 7  # the Salesforce CLI login failed


EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  unexpected or server error (5xx, a response that is not JSON)
  2  usage error: bad arguments, missing URL or credentials, 400 from the server
  3  authentication or authorization failed (401, 403; no AWS credentials for --iam)
  4  not found (404: org_not_found, ...)
  5  conflict or invalid state (409, 422: org_credentials_invalid means re-register;
     lease_held; lease_wait_timeout when --wait ran out; pool_empty: no org available)
  6  the server cannot be reached (DNS, refused, TLS, timeout)
  7  the Salesforce CLI login (--sf-login) failed
"""

EPILOG = f"""\
examples:
  export SFBROKER_URL=https://abc123.execute-api.eu-west-1.amazonaws.com/v1
  export SFBROKER_TOKEN=sfb_...           # or: --iam, with any AWS credentials
  sfbroker token admin@acme.com
  eval "$(sfbroker --format env token admin@acme.com)"
  sfbroker --iam --format github token admin@acme.com.uat --sf-login uat
  sfbroker orgs list --org-type sandbox
  sfbroker orgs register --sfdx-auth-url-stdin --alias prod < auth-url.txt
  sfbroker --iam --format github pool fetch ci --sf-login scratch

environment:
  SFBROKER_URL      broker base URL (--url)
  SFBROKER_TOKEN    API token (--token)
  SFBROKER_SF_BIN   Salesforce CLI executable (--sf-bin), default: sf on PATH
  SFBROKER_IDEMPOTENCY_KEY   pool fetch's --idempotency-key (else derived from the CI run)
  AWS_REGION, AWS_DEFAULT_REGION, and the standard AWS credential chain (--iam)
  GITHUB_ENV, GITHUB_OUTPUT   files written by --format github

Errors are one line on stderr: "sfbroker: <error code>: <message> (request <id>)".

{EXIT_CODES_HELP}"""


class UsageError(Exception):
    """The command line or environment does not say enough to make the request."""


class LeaseWaitTimedOut(Exception):
    """`env lease acquire --wait` ran out of time (the queued lease was released)."""


@dataclass(frozen=True)
class Command:
    """One leaf command: its words, how it reads its arguments, and what it calls."""

    words: tuple[str, ...]
    summary: str
    run: Callable[[BrokerClient, argparse.Namespace], JsonObject]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    examples: str = ""
    exportable: bool = True  # one org or credential: the env and github formats apply
    needs_auth: bool = True
    sf_login: bool = False  # offers --sf-login ALIAS


# --- commands ---------------------------------------------------------------------------


def _token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("username", help="Salesforce username of a registered org")
    parser.add_argument(
        "--min-validity",
        type=_non_negative_int,
        metavar="SECONDS",
        help="do not reuse a cached token with less than this left",
    )
    parser.add_argument(
        "--force-refresh",
        action="store_true",
        help="skip the cache (e.g. Salesforce rejected the last token); at most once a minute",
    )


def _issue_token(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    body = client.issue_token(
        args.username, min_validity_seconds=args.min_validity, force_refresh=args.force_refresh
    )
    if body.get("forceRefreshLimited") is True:
        sys.stderr.write(
            f"{PROG}: note: --force-refresh answered from the cache: the org's token was "
            "refreshed less than a minute ago (at most one forced refresh per org per minute)\n"
        )
    return body


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--org-type", choices=("production", "sandbox", "devhub", "scratch"), help="only this type"
    )
    parser.add_argument("--dev-hub", action="store_true", help="only Dev Hubs")


def _list_orgs(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.list_orgs(org_type=args.org_type, is_dev_hub=True if args.dev_hub else None)


def _get_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("username", help="Salesforce username")


def _get_org(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.get_org(args.username)


def _register_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sfdx-auth-url-stdin",
        action="store_true",
        required=True,
        help="read the SFDX auth URL (force://...) from stdin; it is never taken from argv",
    )
    parser.add_argument("--alias", help="short name for the org")
    parser.add_argument("--dev-hub", action="store_true", help="the org is a Dev Hub")
    parser.add_argument("--default", action="store_true", help="make it the default org")


def _register_org(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.register_org(
        _read_auth_url(), alias=args.alias, is_dev_hub=args.dev_hub, is_default=args.default
    )


def _health(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.health()


def _sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sandbox_name", metavar="SANDBOX", help="Salesforce sandbox name, e.g. uat")
    parser.add_argument(
        "--production-username", required=True, help="the registered production org"
    )


def _sandbox_register_arguments(parser: argparse.ArgumentParser) -> None:
    _sandbox_arguments(parser)
    parser.add_argument(
        "--username", help="the sandbox username (default: <production username>.<sandbox>)"
    )


def _register_sandbox(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.register_sandbox(
        args.sandbox_name, args.production_username, username=args.username
    )


def _sandbox_auth_arguments(parser: argparse.ArgumentParser) -> None:
    _sandbox_arguments(parser)
    parser.add_argument(
        "--auth-url",
        action="store_true",
        help="also return an SFDX auth URL (scope sandboxes:auth-url; a new one each time)",
    )
    parser.add_argument(
        "--min-validity",
        type=_non_negative_int,
        metavar="SECONDS",
        help="do not reuse a cached token with less than this left",
    )
    parser.add_argument(
        "--force-refresh",
        action="store_true",
        help="skip the cache (e.g. after a sandbox refresh); at most once a minute",
    )


def _sandbox_auth(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.sandbox_auth(
        args.sandbox_name,
        args.production_username,
        auth_url=args.auth_url,
        min_validity_seconds=args.min_validity,
        force_refresh=args.force_refresh,
    )


def _repository_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo",
        default=os.environ.get("GITHUB_REPOSITORY"),
        help="repository owner/name (default: $GITHUB_REPOSITORY)",
    )


def _repository(args: argparse.Namespace) -> str:
    if not args.repo:
        raise UsageError("no repository: pass --repo OWNER/NAME (or set GITHUB_REPOSITORY)")
    return str(args.repo)


def _env_name_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="environment name, e.g. UAT")
    _repository_argument(parser)


def _env_create_arguments(parser: argparse.ArgumentParser) -> None:
    _env_name_arguments(parser)
    parser.add_argument("--username", required=True, help="the org (stored or JIT sandbox)")
    parser.add_argument(
        "--category", choices=("dev", "test", "snapshot", "release"), default="test"
    )
    parser.add_argument("--branch", help="branch pattern, e.g. release/*")
    parser.add_argument("--description")


def _create_environment(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    body: JsonObject = {
        "repository": _repository(args),
        "name": args.name,
        "category": args.category,
        "username": args.username,
    }
    if args.branch:
        body["branch"] = args.branch
    if args.description:
        body["description"] = args.description
    return client.create_environment(body)


def _list_environments(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.list_environments(_repository(args))


def _env_get_arguments(parser: argparse.ArgumentParser) -> None:
    _env_name_arguments(parser)
    parser.add_argument(
        "--authenticate",
        action="store_true",
        help="answer a token for the environment's org (JIT sandboxes included) instead",
    )
    parser.add_argument(
        "--lease-id",
        default=os.environ.get("SFBROKER_LEASE_ID"),
        help="the lease this job holds (env SFBROKER_LEASE_ID)",
    )


def _get_environment(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    body = client.get_environment(
        args.name, _repository(args), authenticate=args.authenticate, lease_id=args.lease_id
    )
    auth = body.get("auth")
    # With --authenticate the answer is the token, as `sfbroker token` prints it.
    return auth if args.authenticate and isinstance(auth, dict) else body


def _delete_environment(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    client.delete_environment(args.name, _repository(args))
    return {"deleted": args.name, "repository": _repository(args)}


def _lease_acquire_arguments(parser: argparse.ArgumentParser) -> None:
    _env_name_arguments(parser)
    parser.add_argument(
        "--ttl", type=_positive_int, default=1800, metavar="SECONDS", help="default 1800"
    )
    parser.add_argument(
        "--wait",
        type=_positive_float,
        metavar="SECONDS",
        help="queue and poll until acquired, at most this long (then give the place up)",
    )
    parser.add_argument(
        "--poll-interval", type=_positive_float, default=10.0, metavar="SECONDS", help="default 10"
    )


def _acquire_lease(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    repository = _repository(args)
    lease = client.acquire_lease(
        args.name, repository, ttl_seconds=args.ttl, wait=args.wait is not None
    )
    deadline = time.monotonic() + (args.wait or 0)
    while lease.get("status") == "queued":
        if time.monotonic() + args.poll_interval > deadline:
            client.lease(args.name, repository, str(lease["leaseId"]), release=True)
            raise LeaseWaitTimedOut(
                f"environment {args.name} still held after {args.wait:g} s; left the queue"
            )
        sys.stderr.write(f"{PROG}: queued for {args.name} (position {lease.get('position')})\n")
        time.sleep(args.poll_interval)
        lease = client.lease(args.name, repository, str(lease["leaseId"]))
    return lease


def _lease_arguments(parser: argparse.ArgumentParser) -> None:
    _env_name_arguments(parser)
    parser.add_argument("lease_id", metavar="LEASE_ID")


def _lease_status(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.lease(args.name, _repository(args), args.lease_id)


def _release_lease(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.lease(args.name, _repository(args), args.lease_id, release=True)


# Where a CI run says which job step this is: a retry of the step derives the same key (and
# gets the same org); another step, job, re-run attempt or pipeline derives another.
CI_RUN_VARIABLES = (
    ("github", ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB", "GITHUB_ACTION")),
    ("gitlab", ("CI_JOB_ID",)),
)
# What the server accepts as a key: 1-200 printable ASCII characters, no space.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")

IDEMPOTENCY_HELP = """\
idempotency:
  A fetch with an Idempotency-Key that this caller already used returns the same org, so a
  retried step does not take a second org from the pool. The key is, in this order:
  --idempotency-key KEY, $SFBROKER_IDEMPOTENCY_KEY, or derived from the CI run:
    GitHub Actions  github:$GITHUB_RUN_ID:$GITHUB_RUN_ATTEMPT:$GITHUB_JOB:$GITHUB_ACTION
                    (a re-run of the job is a new attempt: a new org)
    GitLab CI       gitlab:$CI_JOB_ID (a retried job is a new job: a new org)
  Elsewhere there is no key (each fetch takes another org): pass --idempotency-key.
  In a matrix (GitHub gives its legs the same variables) or for several fetches in one
  step, give each fetch its own key, e.g. with ${{ strategy.job-index }}.
  --no-idempotency-key sends none.
"""


def _tag_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tag", metavar="TAG", help="pool tag (Pooltag__c), e.g. ci")


def _dev_hub_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dev-hub",
        metavar="USERNAME",
        help="the pool's Dev Hub (default: the broker's default Dev Hub)",
    )


def _pool_arguments(parser: argparse.ArgumentParser) -> None:
    _tag_argument(parser)
    _dev_hub_argument(parser)


def _pool_status(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.pool_status(args.tag, dev_hub_username=args.dev_hub)


def _pool_fetch_arguments(parser: argparse.ArgumentParser) -> None:
    _pool_arguments(parser)
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument(
        "--idempotency-key",
        metavar="KEY",
        default=os.environ.get("SFBROKER_IDEMPOTENCY_KEY"),
        help="a retry with the same key gets the same org (default: env "
        "SFBROKER_IDEMPOTENCY_KEY, else derived from the CI run; see below)",
    )
    keys.add_argument(
        "--no-idempotency-key",
        action="store_true",
        help="send no key: every call takes another org",
    )
    parser.add_argument(
        "--access-token",
        action="store_true",
        help="answer an access token for the org instead of its auth URL "
        "(the auth URL then never leaves the broker)",
    )


def _fetch_pool_org(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    key = None if args.no_idempotency_key else args.idempotency_key or _ci_idempotency_key()
    if key is None and not args.no_idempotency_key:
        sys.stderr.write(
            f"{PROG}: note: no Idempotency-Key (not a known CI run): a retry takes another "
            "org; pass --idempotency-key\n"
        )
    elif key is not None:
        sys.stderr.write(f"{PROG}: Idempotency-Key: {key}\n")
    return client.fetch_pool_org(
        args.tag,
        access_token=args.access_token,
        dev_hub_username=args.dev_hub,
        idempotency_key=key,
    )


def _ci_idempotency_key() -> str | None:
    """The key of this CI step (see IDEMPOTENCY_HELP), or None outside a known CI."""
    for ci, names in CI_RUN_VARIABLES:
        values = [os.environ.get(name, "") for name in names]
        if all(values):
            key = ":".join([ci, *values])
            if _IDEMPOTENCY_KEY.fullmatch(key):
                return key
            return f"{ci}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return None


def _pool_return_arguments(parser: argparse.ArgumentParser) -> None:
    _tag_argument(parser)
    parser.add_argument("username", help="the fetched scratch org's username ($SF_USERNAME)")


def _return_pool_org(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    client.return_pool_org(args.tag, args.username)
    return {"returned": args.username, "tag": args.tag}


def _pool_cleanup_arguments(parser: argparse.ArgumentParser) -> None:
    _pool_arguments(parser)
    parser.add_argument(
        "--dry-run",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="only report what a real run would delete (default); --no-dry-run deletes",
    )
    parser.add_argument(
        "--max-deletions",
        type=_non_negative_int,
        metavar="N",
        help="delete at most N orgs in this run (default: the deployment's cap)",
    )


def _clean_pool(client: BrokerClient, args: argparse.Namespace) -> JsonObject:
    return client.clean_pool(
        args.tag,
        dry_run=args.dry_run,
        max_deletions=args.max_deletions,
        dev_hub_username=args.dev_hub,
    )


# The commands, in --help order.
COMMANDS = (
    Command(
        ("token",),
        "issue a short-lived Salesforce access token for a registered org",
        _issue_token,
        _token_arguments,
        examples="""\
examples:
  sfbroker token admin@acme.com
  sfbroker token admin@acme.com --min-validity 1800 --format env
  sfbroker --format github token admin@acme.com.uat --sf-login uat
""",
        sf_login=True,
    ),
    Command(
        ("orgs", "list"),
        "list registered orgs",
        _list_orgs,
        _list_arguments,
        examples="""\
examples:
  sfbroker orgs list --org-type sandbox
  sfbroker --format json orgs list --dev-hub | jq -r '.orgs[].username'
""",
        exportable=False,
    ),
    Command(("orgs", "get"), "show one registered org", _get_org, _get_arguments),
    Command(
        ("orgs", "register"),
        "register an org (or replace its credential) from its SFDX auth URL",
        _register_org,
        _register_arguments,
        examples="""\
examples:
  sf org display --target-org prod --verbose --json | jq -r .result.sfdxAuthUrl \\
    | sfbroker orgs register --sfdx-auth-url-stdin --alias prod
  sfbroker orgs register --sfdx-auth-url-stdin --dev-hub < hub-auth-url.txt
""",
    ),
    Command(
        ("sandbox", "register"),
        "register a JIT sandbox: only its production org's credential is stored",
        _register_sandbox,
        _sandbox_register_arguments,
        examples="""\
examples:
  sfbroker sandbox register uat --production-username admin@acme.com
""",
        exportable=False,
    ),
    Command(
        ("sandbox", "auth"),
        "a token for a JIT sandbox, through its production org",
        _sandbox_auth,
        _sandbox_auth_arguments,
        examples="""\
examples:
  sfbroker sandbox auth uat --production-username admin@acme.com --format env
  sfbroker sandbox auth uat --production-username admin@acme.com --sf-login uat
""",
        sf_login=True,
    ),
    Command(
        ("env", "create"),
        "create an environment: a stable name of a repository for an org",
        _create_environment,
        _env_create_arguments,
        examples="""\
examples:
  sfbroker env create UAT --repo acme/app --username admin@acme.com.uat --branch 'release/*'
""",
        exportable=False,
    ),
    Command(
        ("env", "list"),
        "list a repository's environments",
        _list_environments,
        _repository_argument,
        exportable=False,
    ),
    Command(
        ("env", "get"),
        "show an environment, or (--authenticate) a token for its org",
        _get_environment,
        _env_get_arguments,
        examples="""\
examples:
  sfbroker env get UAT --repo acme/app
  sfbroker --format github env get UAT --repo acme/app --authenticate --sf-login UAT
""",
        sf_login=True,
    ),
    Command(
        ("env", "delete"),
        "delete an environment (and its leases)",
        _delete_environment,
        _env_name_arguments,
        exportable=False,
    ),
    Command(
        ("env", "lease", "acquire"),
        "lease an environment (--wait: queue and poll until it is this job's)",
        _acquire_lease,
        _lease_acquire_arguments,
        examples="""\
examples:
  sfbroker env lease acquire UAT --repo acme/app --wait 1800 --ttl 3600 | jq -r .leaseId
""",
        exportable=False,
    ),
    Command(
        ("env", "lease", "status"),
        "show a lease: acquired, queued (position), released or expired",
        _lease_status,
        _lease_arguments,
        exportable=False,
    ),
    Command(
        ("env", "lease", "release"),
        "release a lease (the next in line gets the environment)",
        _release_lease,
        _lease_arguments,
        exportable=False,
    ),
    Command(
        ("pool", "list"),
        "count a scratch-org pool's orgs by status: available, in progress, assigned",
        _pool_status,
        _pool_arguments,
        examples="""\
examples:
  sfbroker pool list ci
  sfbroker pool list ci --dev-hub hub@acme.com | jq .available
""",
        exportable=False,
    ),
    Command(
        ("pool", "fetch"),
        "fetch a scratch org from a pool: never another caller's, the same one on a retry",
        _fetch_pool_org,
        _pool_fetch_arguments,
        examples=f"""\
examples:
  sfbroker pool fetch ci --idempotency-key build-42
  sfbroker --format github pool fetch ci --sf-login scratch      # in GitHub Actions
  sfbroker pool fetch ci --access-token --format env

{IDEMPOTENCY_HELP}
An empty pool exits 5 (pool_empty); a tag no active org of the Dev Hub carries exits 4
(pool_not_found). Give the org back with: sfbroker pool return TAG USERNAME
""",
        sf_login=True,
    ),
    Command(
        ("pool", "return"),
        "return a fetched org: it is deleted on the Dev Hub (its fetcher, or pools:admin)",
        _return_pool_org,
        _pool_return_arguments,
        examples="""\
examples:
  sfbroker pool return ci "$SF_USERNAME"
""",
        exportable=False,
    ),
    Command(
        ("pool", "cleanup"),
        "clean a pool as the schedule does: expired, stuck and orphaned orgs (dry run by default)",
        _clean_pool,
        _pool_cleanup_arguments,
        examples="""\
examples:
  sfbroker pool cleanup ci                       # what would be deleted, and why
  sfbroker pool cleanup ci --no-dry-run --max-deletions 5
""",
        exportable=False,
    ),
    Command(
        ("health",),
        "check that the broker answers (no credentials needed)",
        _health,
        exportable=False,
        needs_auth=False,
    ),
)

GROUPS = {
    ("orgs",): "registered Salesforce orgs: list, get, register",
    ("sandbox",): "JIT sandboxes: register, auth",
    ("env",): "environments of a repository: create, list, get, delete, lease",
    ("env", "lease"): "leases of an environment: acquire, status, release",
    ("pool",): "scratch-org pools: list, fetch, return, cleanup",
}


# --- parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command in `COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Get Salesforce credentials from an sfbroker server, e.g. in a CI job.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, top_level=True)
    parser.set_defaults(sf_login=None, sf_bin=None)
    top = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    groups: dict[tuple[str, ...], argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for command in COMMANDS:
        *group_words, name = command.words
        subparsers = top
        for depth, word in enumerate(group_words, start=1):
            path = tuple(group_words[:depth])
            if path not in groups:
                group = subparsers.add_parser(word, help=GROUPS[path], description=GROUPS[path])
                _add_global_options(group, top_level=False)
                groups[path] = group.add_subparsers(
                    title="commands", metavar="COMMAND", required=True
                )
            subparsers = groups[path]
        leaf = subparsers.add_parser(
            name,
            help=command.summary,
            description=command.summary,
            epilog=command.examples or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.arguments(leaf)
        if command.sf_login:
            _add_sf_login_options(leaf)
        _add_global_options(leaf, top_level=False)
        leaf.set_defaults(command=command)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    # Accepted before or after the command words. Only the top-level parser sets defaults,
    # so a subcommand's unset copy never overwrites a value given earlier.
    def default(value: object) -> object:
        return value if top_level else argparse.SUPPRESS

    options = parser.add_argument_group("connection and output")
    options.add_argument(
        "--url",
        default=default(None),
        help="broker base URL, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com/v1 "
        "(env SFBROKER_URL)",
    )
    auth = options.add_mutually_exclusive_group()
    auth.add_argument(
        "--token",
        default=default(None),
        help="API token for the token API (env SFBROKER_TOKEN; prefer the environment: "
        "argv is visible to other processes)",
    )
    auth.add_argument(
        "--iam",
        action="store_true",
        default=default(False),
        help="sign with AWS SigV4 for the IAM API, credentials from the standard AWS chain "
        "(env, profile, GitHub OIDC web identity, instance role)",
    )
    options.add_argument(
        "--region",
        default=default(None),
        help="AWS region for --iam (default: AWS_REGION, AWS_DEFAULT_REGION, profile)",
    )
    options.add_argument(
        "--timeout",
        type=_positive_float,
        default=default(30.0),
        metavar="SECONDS",
        help="HTTP timeout (default 30)",
    )
    options.add_argument(
        "--format",
        choices=FORMATS,
        default=default("json"),
        help="json: the response body; env: shell-quoted SF_* lines; github: mask secrets "
        "and write $GITHUB_ENV / $GITHUB_OUTPUT (default json)",
    )


def _add_sf_login_options(parser: argparse.ArgumentParser) -> None:
    options = parser.add_argument_group("Salesforce CLI")
    options.add_argument(
        "--sf-login",
        metavar="ALIAS",
        help="also log the Salesforce CLI in under ALIAS (secrets via env/stdin, never argv); "
        "--format json then prints only username, instanceUrl and alias",
    )
    options.add_argument(
        "--sf-bin",
        metavar="PATH",
        help=f"Salesforce CLI executable (env SFBROKER_SF_BIN, default {DEFAULT_SF_BIN!r})",
    )


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


# --- running -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, *, session: requests.Session | None = None) -> int:
    """Run one `sfbroker` command; return its exit code (see `ExitCode`)."""
    args = build_parser().parse_args(argv)
    command: Command = args.command
    secrets: list[str] = []
    try:
        token = args.token or os.environ.get("SFBROKER_TOKEN") or None
        if token:
            secrets.append(token)
        github_files = _check_format(command, args.format)
        base_url = _base_url(args)
        auth = _auth(command, args, token, base_url)
        client = BrokerClient(base_url, auth, args.timeout, session=session)
        body = command.run(client, args)
        secrets.extend(secret_values(body))
        if args.sf_login:
            login = _sf_login(body, args)
            if args.format == "json":  # what a CI log may show: env and github export it all
                body = login
        _write(body, args.format, github_files)
    except UsageError as exc:
        return _fail("usage_error", f"{exc} (see {PROG} --help)", ExitCode.USAGE, secrets)
    except IamUnavailable as exc:
        return _fail("usage_error", str(exc), ExitCode.USAGE, secrets)
    except NoAwsCredentials as exc:
        return _fail("no_aws_credentials", str(exc), ExitCode.AUTH, secrets)
    except ApiError as exc:
        return _fail(exc.code, _describe(exc), exit_code_for_status(exc.status), secrets)
    except ConnectionFailed as exc:
        return _fail("connection_failed", str(exc), ExitCode.NETWORK, secrets)
    except LeaseWaitTimedOut as exc:
        return _fail("lease_wait_timeout", str(exc), ExitCode.CONFLICT, secrets)
    except SfLoginFailed as exc:
        return _fail("sf_login_failed", str(exc), ExitCode.SF_LOGIN, secrets)
    except OutputError as exc:
        return _fail("usage_error", str(exc), ExitCode.USAGE, secrets)
    except OSError as exc:  # e.g. $GITHUB_ENV not writable
        return _fail("io_error", f"{exc.strerror or exc}: {exc.filename}", ExitCode.ERROR, secrets)
    return ExitCode.OK


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code for an HTTP error status."""
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status in (409, 422):
        return ExitCode.CONFLICT
    if status == 400:
        return ExitCode.USAGE
    return ExitCode.ERROR


def _base_url(args: argparse.Namespace) -> str:
    url: str = (args.url or os.environ.get("SFBROKER_URL") or "").strip().rstrip("/")
    if not url:
        raise UsageError("no broker URL: pass --url or set SFBROKER_URL")
    if not url.startswith(("https://", "http://")):
        raise UsageError(f"the broker URL must start with https:// (got {url!r})")
    return url


def _auth(
    command: Command, args: argparse.Namespace, token: str | None, base_url: str
) -> AuthBase | None:
    if args.iam:
        if args.token:  # both given, on either side of the command words
            raise UsageError("--token and --iam exclude each other")
        return iam_auth_from_environment(args.region, base_url)
    if token:
        return BearerAuth(token)
    if command.needs_auth:
        raise UsageError("no credentials: set SFBROKER_TOKEN (or pass --token), or use --iam")
    return None


def _check_format(command: Command, fmt: str) -> tuple[Path, Path] | None:
    # Checked before the request, so nothing is issued that cannot be delivered.
    if fmt == "json":
        return None
    if not command.exportable:
        raise UsageError(
            f"--format {fmt} is not meaningful for '{' '.join(command.words)}' "
            "(not a single org or credential); use --format json"
        )
    if fmt == "github":
        github_env = os.environ.get("GITHUB_ENV")
        github_output = os.environ.get("GITHUB_OUTPUT")
        if not github_env or not github_output:
            raise UsageError(
                "--format github needs GITHUB_ENV and GITHUB_OUTPUT (set by GitHub Actions)"
            )
        return Path(github_env), Path(github_output)
    return None


def _sf_login(body: JsonObject, args: argparse.Namespace) -> JsonObject:
    """Log the Salesforce CLI in; answer who it is logged in as, and where (no secret)."""
    sf_bin = args.sf_bin or os.environ.get("SFBROKER_SF_BIN") or DEFAULT_SF_BIN
    login = log_in(body, args.sf_login, sf_bin)
    who = login.username or body.get("username") or "the org"
    sys.stderr.write(f"{PROG}: Salesforce CLI logged in to {who} as '{args.sf_login}'\n")
    return {
        "username": login.username or body.get("username"),
        "instanceUrl": body.get("instanceUrl"),
        "alias": args.sf_login,
    }


def _write(body: JsonObject, fmt: str, github_files: tuple[Path, Path] | None) -> None:
    if fmt == "env":
        write_env(body, sys.stdout)
    elif fmt == "github" and github_files is not None:
        write_github(body, sys.stdout, *github_files)
    else:
        write_json(body, sys.stdout)
    sys.stdout.flush()


def _read_auth_url() -> str:
    if sys.stdin is None:
        raise UsageError("--sfdx-auth-url-stdin: no stdin")
    if sys.stdin.isatty():
        text = getpass.getpass("SFDX auth URL (input hidden): ")
    else:
        text = sys.stdin.read()
    words = text.split()
    if not words:
        raise UsageError("--sfdx-auth-url-stdin: nothing on stdin; pipe the force://... URL in")
    if len(words) > 1:
        raise UsageError("--sfdx-auth-url-stdin: expected one auth URL on stdin, got more text")
    return words[0]


def _describe(error: ApiError) -> str:
    message = error.message
    if error.details:
        fields = "; ".join(
            f"{detail.get('field', '?')}: {detail.get('message', '?')}" for detail in error.details
        )
        message = f"{message} ({fields})"
    if error.request_id:
        message = f"{message} (request {error.request_id})"
    return message


def _fail(code: str, message: str, exit_code: ExitCode, secrets: list[str]) -> int:
    line = " ".join(f"{PROG}: {code}: {message}".split())
    sys.stderr.write(redact(line, secrets) + "\n")
    return exit_code
