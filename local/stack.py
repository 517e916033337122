"""Run sfbroker locally (make run): on 127.0.0.1, no Docker, no AWS account, no Salesforce.

One process runs local AWS (moto: DynamoDB and KMS; or DynamoDB Local, a Java child, for
the database), the fake Salesforce seeded with its default world, and the API Gateway
emulator calling the real handlers. Tables, keys, routes, handlers and environment come
from template.yaml. The seeded production org and Dev Hub are registered through the
real API, then the URL, local IAM credentials and commands to try are printed.
With --salesforce-tls the fake speaks https as `localhost` with a throwaway CA (which the
real Salesforce CLI needs: it speaks only https), trusted by the in-process handlers.
SIGINT (Ctrl-C) or SIGTERM stops everything: no child process, no open port. Started by
make (`make run`), --stop-with-parent also stops it when make is told to stop.
With --bind (e.g. the docker bridge, 172.17.0.1) it listens where `sam local` containers
reach it, and every URL it hands out (API, moto, the fake's instance URLs) carries
--public-host, a name both this machine and the containers resolve.
With --heap-report FILE, each SIGUSR1 writes the Python heap gained since the first, by
owner (local/heap.py: `make soak` tells moto's stored data from a leak with it).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib.util
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import string
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from local import dynamodb_local, heap
from local import template as sam
from local.apigw import GatewayServer, IamUser, build_gateway
from local.fake_salesforce import DefaultSeed, start_fake_salesforce
from local.ports import port_in_use
from local.provision import LocalResources, provision
from local.salesforce_cli import SalesforceCliMissing, sf_bin

if TYPE_CHECKING:
    from requests.auth import AuthBase

__all__ = ["LOCAL_ADMIN_ARN", "main", "new_local_user"]

LOGGER = logging.getLogger("local.stack")

HOST: Final = "127.0.0.1"
EVERY_INTERFACE: Final = "0.0.0.0"
REGION: Final = sam.PSEUDO_PARAMETERS["AWS::Region"]
LOCAL_ADMIN_ARN: Final = f"arn:aws:iam::{sam.PSEUDO_PARAMETERS['AWS::AccountId']}:user/local-admin"
# The stack's own AWS calls (provisioning, the handlers) go to moto, which takes any key.
_BACKEND_CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
_PORT_FLAGS: Final = {
    "--port": "port",
    "--aws-port": "aws_port",
    "--salesforce-port": "salesforce_port",
    "--dynamodb-port": "dynamodb_port",
}
_KEY_ALPHABET: Final = string.ascii_uppercase + string.digits
_SECRET_ALPHABET: Final = string.ascii_letters + string.digits
READY_LINE: Final = "sfbroker local stack is ready"
# The variable the banner exports with the fake Salesforce's URL.
FAKE_SALESFORCE_VARIABLE: Final = "FAKE"
# The alias of the `--sf-login` command the banner prints (with --salesforce-tls and sf).
SF_LOGIN_ALIAS: Final = "acme"
SF_QUERY: Final = "SELECT Id, Name FROM Organization"
# What `make run` registers beside the seeded orgs: a JIT sandbox and an environment on it.
JIT_SANDBOX: Final = "uat"
ENVIRONMENT_NAME: Final = "UAT"
ENVIRONMENT_REPOSITORY: Final = "acme/app"
_TERMINATING_SIGNALS: Final[frozenset[int]] = frozenset(
    {signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM}
)
# The stack's state lives in memory: the token cannot outlive it by much anyway.
ADMIN_TOKEN_DAYS: Final = 30


class _Stopped(Exception):
    """SIGINT/SIGTERM arrived while starting."""


class StartupFailed(Exception):
    """A part of the stack could not start (a port in use, Java missing, ...)."""


@dataclass(frozen=True)
class RunningStack:
    """Where everything listens, and what was set up."""

    url: str
    user: IamUser
    aws_endpoint: str
    dynamodb_endpoint: str | None
    salesforce_url: str
    resources: LocalResources
    seed: DefaultSeed
    registered: tuple[str, ...]
    admin_token: str | None
    startup_seconds: float
    # --salesforce-tls: the CA the fake's certificate chains to; else None (plain http).
    salesforce_ca_cert: Path | None = None
    # The Salesforce CLI under local/node, if installed (only looked for with TLS).
    sf_executable: Path | None = None


def new_local_user() -> IamUser:
    """A fresh random key pair for the local admin user (printed once, lives in memory)."""
    return IamUser(
        access_key_id="AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
        secret_access_key="".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40)),
        arn=LOCAL_ADMIN_ARN,
        user_id="AIDA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(17)),
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of ``python -m local.stack``."""
    parser = argparse.ArgumentParser(
        prog="python -m local.stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Port 0 means any free port. Everything listens on 127.0.0.1 (or --bind).",
    )
    parser.add_argument("--port", type=_port, default=3000, help="API port (default 3000)")
    parser.add_argument(
        "--db",
        choices=("moto", "dynamodb-local"),
        default="moto",
        help="database backend: moto (default, fast) or DynamoDB Local (Java 17)",
    )
    parser.add_argument(
        "--aws-port", type=_port, default=0, help="moto server port (DynamoDB + KMS)"
    )
    parser.add_argument("--salesforce-port", type=_port, default=0, help="fake Salesforce port")
    parser.add_argument(
        "--salesforce-tls",
        action="store_true",
        help="serve the fake Salesforce over https as localhost, with a throwaway CA "
        "(for the Salesforce CLI, e.g. sfbroker --sf-login)",
    )
    parser.add_argument(
        "--dynamodb-port", type=_port, default=0, help="DynamoDB Local port (--db dynamodb-local)"
    )
    parser.add_argument(
        "--stop-with-parent",
        action="store_true",
        help="also stop when the parent process exits or is told to stop (make run: make "
        "forwards SIGTERM to its recipe, but on SIGINT, SIGHUP or SIGQUIT only waits for it)",
    )
    parser.add_argument(
        "--bind",
        type=_address,
        default=HOST,
        help="address to listen on (default 127.0.0.1); for `sam local` on Linux the docker "
        f"bridge's, 172.17.0.1; {EVERY_INTERFACE} (every interface) needs --public-host",
    )
    parser.add_argument(
        "--public-host",
        help="host in the URLs the stack hands out, resolved alike on this machine and in "
        "containers (default: the --bind address; Docker Desktop: host.docker.internal)",
    )
    parser.add_argument(
        "--heap-report",
        type=Path,
        metavar="FILE",
        help="trace the Python heap (tracemalloc: slower) and write its report, by owner "
        "(moto, the fake Salesforce, sfbroker, ...), to FILE on every SIGUSR1 (make soak)",
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING"),
        default="INFO",
        help="level of the stack's own log on stderr (request lines are INFO)",
    )
    args = parser.parse_args(argv)
    if args.public_host is None:
        if args.bind == EVERY_INTERFACE:
            parser.error(f"--bind {EVERY_INTERFACE} needs --public-host: the URLs' host")
        args.public_host = args.bind
    if args.public_host != HOST and args.salesforce_tls:
        parser.error("--salesforce-tls serves localhost only: not with --bind/--public-host")
    if args.public_host != HOST and args.db != "moto":
        parser.error("containers reach moto only (local/env.json): use --db moto with --bind")
    chosen = [(flag, getattr(args, name)) for flag, name in _PORT_FLAGS.items()]
    chosen = [(flag, port) for flag, port in chosen if port]
    for index, (flag, port) in enumerate(chosen):
        for other_flag, other_port in chosen[index + 1 :]:
            if port == other_port:
                parser.error(f"{flag} and {other_flag} are both {port}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stack until SIGINT/SIGTERM; 0 after a clean stop, 1 if it could not start."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # moto's werkzeug logs every AWS call the handlers make: too much for a terminal.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    if args.heap_report is not None:
        heap.install(args.heap_report)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Only a flag: raising here could interrupt a child's start between its spawn
        # and the registration of its stop, and leave it orphaned.
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if args.stop_with_parent:
        _stop_with_parent(stop)
    if args.bind == EVERY_INTERFACE:
        print(
            f"local stack: WARNING: listening on every interface ({EVERY_INTERFACE}): whoever "
            "reaches this machine can call the stack; prefer --bind 172.17.0.1 (docker bridge)",
            file=sys.stderr,
        )
    with contextlib.ExitStack() as running:
        try:
            stack = _start(args, running, stop)
        except _Stopped:
            LOGGER.info("stopped while starting")
            return 0
        except StartupFailed as failure:
            print(f"local stack: {failure}", file=sys.stderr)
            return 1
        print(banner(stack), flush=True)
        # A bare wait() may never return: the signal can land on a server thread, and
        # only a main thread that wakes up now and then runs the Python handler.
        while not stop.wait(timeout=0.2):
            pass
        LOGGER.info("stopping")
    LOGGER.info("stopped")
    _exit_within(EXIT_GRACE_SECONDS)
    return 0


def _exit_within(seconds: float) -> None:
    """Everything is stopped: whatever still runs at exit (a thread stuck on a socket)
    must not keep the process, and `make run` with it, alive. After `seconds`, print
    where each thread is, and exit."""

    def watchdog() -> None:
        time.sleep(seconds)
        print(
            f"local stack: stopped, but still exiting after {seconds:.0f} s; its threads:",
            file=sys.stderr,
            flush=True,
        )
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os._exit(0)

    threading.Thread(target=watchdog, name="exit-watchdog", daemon=True).start()


# How long the interpreter may take to exit once everything is stopped.
EXIT_GRACE_SECONDS: Final = 5.0


def _stop_with_parent(stop: threading.Event) -> None:
    """Set `stop` once the parent exits or starts handling a terminating signal.

    make, told to stop by SIGINT, SIGHUP or SIGQUIT (sent to make alone, not to the
    terminal's process group as Ctrl-C is), resets that signal to its default for the time
    its handler runs, and the handler waits for the recipe to end. The reset shows in the
    parent's caught-signal mask (/proc/<pid>/status, Linux): the stack takes it as its cue.
    """
    parent = os.getppid()
    watched = _caught_signals(parent) & _TERMINATING_SIGNALS

    def watch() -> None:
        while not stop.wait(timeout=0.2):
            if os.getppid() != parent or not watched <= _caught_signals(parent):
                LOGGER.info("the parent process (%d) is stopping", parent)
                stop.set()

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


def _caught_signals(pid: int) -> frozenset[int]:
    """The signals `pid` has a handler for (empty where /proc does not say)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return frozenset()
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == "SigCgt":
            mask = int(value, 16)
            return frozenset(number for number in range(1, 65) if mask >> (number - 1) & 1)
    return frozenset()


def _start(
    args: argparse.Namespace, running: contextlib.ExitStack, stop: threading.Event
) -> RunningStack:
    started = time.monotonic()

    def check() -> None:
        if stop.is_set():
            raise _Stopped

    template = sam.load_template()
    _prepare_process(template)
    # Checked up front: moto's server thread would hang the start on a port in use.
    for flag, port in _PORT_FLAGS.items():
        _check_port_free(args.bind, getattr(args, port), flag)

    aws_endpoint = _start_moto(args.bind, args.public_host, args.aws_port, running)
    check()
    dynamodb_endpoint = None
    if args.db == "dynamodb-local":
        try:
            server = dynamodb_local.start(port=args.dynamodb_port)
        except (dynamodb_local.DynamoDbLocalUnavailable, OSError) as error:
            raise StartupFailed(f"DynamoDB Local did not start: {error}") from error
        running.callback(server.stop)
        dynamodb_endpoint = server.endpoint_url
        check()

    resources = provision(
        aws_endpoint_url=aws_endpoint,
        dynamodb_endpoint_url=dynamodb_endpoint,
        salesforce_tls=args.salesforce_tls,
    )
    if args.public_host != HOST:
        # The handlers in this process call the fake Salesforce by its public name too.
        hosts = resources.environment["SALESFORCE_HTTP_HOSTS"]
        resources.environment["SALESFORCE_HTTP_HOSTS"] = f"{args.public_host}:*,{hosts}"
    os.environ.update(resources.environment)
    from sfbroker import runtime  # importable only once the layer is on sys.path

    runtime.reset()
    check()

    try:
        salesforce = start_fake_salesforce(
            args.salesforce_port,
            tls=args.salesforce_tls,
            hostname="localhost" if args.salesforce_tls else args.public_host,
            bind=args.bind,
        )
    except OSError as error:
        raise StartupFailed(f"the fake Salesforce did not start: {error}") from error
    running.callback(salesforce.stop)
    sf_executable = None
    if salesforce.ca_cert_path is not None:
        _trust_for_requests(salesforce.ca_cert_path, running)
        with contextlib.suppress(SalesforceCliMissing):
            sf_executable = sf_bin()
    seed = salesforce.seed_default()
    check()

    user = new_local_user()
    try:
        gateway = GatewayServer(build_gateway(template, [user]), host=args.bind, port=args.port)
    except OSError as error:
        raise StartupFailed(f"the API did not start on port {args.port}: {error}") from error
    running.callback(gateway.stop)
    check()

    url = f"http://{args.public_host}:{gateway.port}"
    registered = _register_seeded_orgs(url, user, seed)
    admin_token = _mint_admin_token(url, user) if _has_token_api(template) else None
    return RunningStack(
        url=url,
        user=user,
        aws_endpoint=aws_endpoint,
        dynamodb_endpoint=dynamodb_endpoint,
        salesforce_url=salesforce.base_url,
        resources=resources,
        seed=seed,
        registered=registered,
        admin_token=admin_token,
        startup_seconds=time.monotonic() - started,
        salesforce_ca_cert=salesforce.ca_cert_path,
        sf_executable=sf_executable,
    )


def _prepare_process(template: dict[str, Any]) -> None:
    """Make this process look like a Lambda container of the template's functions."""
    for content_uri in sam.layer_content_uris(template):
        # sam build puts a python layer in /opt/python, which Lambda adds to sys.path.
        path = str((sam.REPO_ROOT / content_uri).resolve())
        if path not in sys.path:
            sys.path.insert(0, path)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB"):
        os.environ.pop(name, None)
    os.environ.update(_BACKEND_CREDENTIALS)


def _trust_for_requests(ca_cert: Path, running: contextlib.ExitStack) -> None:
    """Make requests (the handlers' Salesforce calls) trust `ca_cert`, besides the usual CAs.

    `REQUESTS_CA_BUNDLE` replaces requests' CA bundle (and botocore's, for https
    endpoints only: moto is plain http), so it gets a copy of that bundle plus the CA.
    """
    from requests.utils import DEFAULT_CA_BUNDLE_PATH  # certifi's bundle

    current = os.environ.get("REQUESTS_CA_BUNDLE")
    base = Path(current if current and Path(current).is_file() else DEFAULT_CA_BUNDLE_PATH)
    directory = tempfile.TemporaryDirectory(prefix="sfbroker-local-ca-")
    running.callback(directory.cleanup)
    bundle = Path(directory.name) / "ca-bundle.pem"
    with bundle.open("wb") as out:
        with base.open("rb") as source:
            shutil.copyfileobj(source, out)
        out.write(b"\n" + ca_cert.read_bytes())
    os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)


def _check_port_free(address: str, port: int, flag: str) -> None:
    if port and port_in_use(port, address):
        raise StartupFailed(f"port {port} is in use: choose another with {flag}")


def _start_moto(address: str, public_host: str, port: int, running: contextlib.ExitStack) -> str:
    from moto.server import ThreadedMotoServer

    from local.moto_writes import serialize_dynamodb_writes

    serialize_dynamodb_writes()

    server = ThreadedMotoServer(ip_address=address, port=port, verbose=False)
    server.start()

    def stop_moto() -> None:
        server.stop()
        # ThreadedMotoServer.stop() leaves the listening socket open until exit.
        inner = getattr(server, "_server", None)
        if inner is not None:
            inner.server_close()

    running.callback(stop_moto)
    _, bound_port = server.get_host_and_port()
    return f"http://{public_host}:{bound_port}"


def _register_seeded_orgs(url: str, user: IamUser, seed: DefaultSeed) -> tuple[str, ...]:
    """Register the production org, the Dev Hub, the JIT sandbox `uat` and the environment
    `UAT` of `acme/app` through the real API, signed with SigV4."""
    from sfbroker_client.api import ApiError, BrokerClient, ConnectionFailed

    client = BrokerClient(url, _sigv4(user), timeout=30)
    try:
        production = client.register_org(seed.production_auth_url, alias="prod", is_default=True)
        dev_hub = client.register_org(seed.dev_hub_auth_url, alias="devhub", is_dev_hub=True)
        sandbox = client.register_sandbox(JIT_SANDBOX, seed.production_username)
        client.create_environment(
            {
                "repository": ENVIRONMENT_REPOSITORY,
                "name": ENVIRONMENT_NAME,
                "category": "test",
                "username": sandbox["username"],
                "branch": "release/*",
                "description": "UAT with JIT auth",
            }
        )
    except (ApiError, ConnectionFailed) as error:
        raise StartupFailed(f"registering a seeded org failed: {error}") from error
    return (
        str(production["username"]),
        str(dev_hub["username"]),
        f"{sandbox['username']} (JIT)",
        f"environment {ENVIRONMENT_NAME} of {ENVIRONMENT_REPOSITORY}",
    )


def _has_token_api(template: dict[str, Any]) -> bool:
    """Issue 4's machinery: the API-token service and a bearer-token API in the template."""
    if importlib.util.find_spec("sfbroker.services.api_tokens") is None:
        return False
    return any(api.default_authorizer not in (None, sam.AWS_IAM) for api in sam.apis(template))


def _mint_admin_token(url: str, user: IamUser) -> str:
    """Create the bootstrap admin API token through the real API (``POST /api-tokens``)."""
    import requests

    response = requests.post(
        f"{url}/api-tokens",
        json={"name": "local-admin", "scopes": ["admin"], "expiresInDays": ADMIN_TOKEN_DAYS},
        auth=_sigv4(user),
        timeout=30,
    )
    if response.status_code != 201:
        # The error body never carries a secret (API.md).
        raise StartupFailed(f"minting the admin API token failed: {response.text[:300]}")
    token: str = response.json()["token"]
    return token


def _sigv4(user: IamUser) -> AuthBase:
    from botocore.credentials import Credentials
    from sfbroker_client.auth import IamAuth

    return IamAuth(Credentials(user.access_key_id, user.secret_access_key), REGION)


def banner(stack: RunningStack) -> str:
    """What ``make run`` prints once everything is up (the only place secrets are shown)."""
    database = (
        f"DynamoDB Local at {stack.dynamodb_endpoint}"
        if stack.dynamodb_endpoint
        else f"moto at {stack.aws_endpoint}"
    )
    aliases = ", ".join(stack.resources.aliases) or "none"
    username = stack.seed.production_username
    if stack.admin_token:
        token_api = "bearer tokens accepted (SFBROKER_TOKEN: an admin API token)"
        credentials = "IAM user local-admin (SigV4, --iam) and its admin API token (bearer)"
    else:
        token_api = "arrives with issue 4 (no bearer-token API in template.yaml yet)"
        credentials = "IAM user local-admin, for the IAM (SigV4) API"
    tables = ", ".join(stack.resources.table_names.values())
    ca_cert = stack.salesforce_ca_cert
    path = [str(Path(sys.executable).parent)]
    sf_commands = []
    if ca_cert is not None and stack.sf_executable is not None:
        # The Salesforce CLI under local/node: on PATH, it is the `sf` of the command below.
        path.append(str(stack.sf_executable.parent))
        sf_commands.append(
            f"  sfbroker --iam token {username} --sf-login {SF_LOGIN_ALIAS} && sf data query "
            f'--query "{SF_QUERY}" --target-org {SF_LOGIN_ALIAS}'
        )
    return "\n".join(
        [
            f"{READY_LINE} ({stack.startup_seconds:.1f} s)",
            "",
            f"  API          {stack.url}  (also under the stage path {stack.url}/v1)",
            f"  database     {database}: {tables}",
            f"  KMS          moto at {stack.aws_endpoint}: {aliases}",
            f"  Salesforce   fake at {stack.salesforce_url} (state: "
            f"{stack.salesforce_url}/__fake__/state)",
            *([f"  CA           {ca_cert} (the fake's TLS certificate)"] if ca_cert else []),
            f"  registered   {', '.join(stack.registered)}",
            f"  token API    {token_api}",
            "",
            f"Local credentials: {credentials}. Paste into a shell:",
            "",
            f"export AWS_ACCESS_KEY_ID={stack.user.access_key_id}",
            f"export AWS_SECRET_ACCESS_KEY={stack.user.secret_access_key}",
            f"export AWS_DEFAULT_REGION={REGION}",
            *([f"export SFBROKER_TOKEN={stack.admin_token}"] if stack.admin_token else []),
            f"export SFBROKER_URL={stack.url}",
            # The fake Salesforce's base URL, for its admin API (README: fault injection).
            f"export {FAKE_SALESFORCE_VARIABLE}={stack.salesforce_url}",
            # The Salesforce CLI (Node) trusts the fake's CA on top of its own.
            *([f"export NODE_EXTRA_CA_CERTS={ca_cert}"] if ca_cert else []),
            # The sfbroker client and awscurl are installed in this virtualenv.
            f"export PATH={':'.join(path)}:$PATH",
            "",
            "Then try:",
            "",
            "  sfbroker --iam orgs list",
            f"  sfbroker --iam token {username} --format env",
            f"  awscurl --service execute-api --region {REGION} {stack.url}/orgs/{username}",
            *(
                [
                    f"  sfbroker token {username}",
                    f'  curl -H "Authorization: Bearer $SFBROKER_TOKEN" {stack.url}/orgs',
                ]
                if stack.admin_token
                else []
            ),
            (
                f"  sfbroker --iam sandbox auth {JIT_SANDBOX} --production-username {username} "
                "--format env"
            ),
            (
                f"  sfbroker --iam env get {ENVIRONMENT_NAME} --repo {ENVIRONMENT_REPOSITORY} "
                "--authenticate"
            ),
            *sf_commands,
            # Last: while it is held (60 s) only its holder may authenticate.
            (
                f"  sfbroker --iam env lease acquire {ENVIRONMENT_NAME} --repo "
                f"{ENVIRONMENT_REPOSITORY} --ttl 60"
            ),
            "",
            "Ctrl-C stops everything.",
        ]
    )


def _address(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 address: {text!r}") from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("a port is between 0 and 65535")
    return port


if __name__ == "__main__":
    sys.exit(main())
