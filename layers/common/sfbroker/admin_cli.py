"""`python -m sfbroker.admin_cli`: API tokens straight in the table, without any token;
and maintenance: `reencrypt` re-wraps every envelope after a key rotation.

The bootstrap path: an operator with AWS credentials that may write the table mints the
first admin token (and can revoke any token in an emergency). It runs the same service
code as `POST /api-tokens`, and the audit trail records it with the operator's ARN.
`API_TOKEN_MAX_DAYS` and `AUDIT_RETENTION_DAYS` apply as in the deployment (set them
if the stack overrides the defaults).

    python -m sfbroker.admin_cli --table sfbroker-Table-XYZ create-token \\
        --name bootstrap --scopes admin
    python -m sfbroker.admin_cli --table sfbroker-Table-XYZ reencrypt \\
        --key-id arn:aws:kms:...:key/... [--dry-run] [--resume-from CURSOR]
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import timedelta

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sfbroker.auth.principal import SCOPES, token_principal_id
from sfbroker.crypto import DataKeyCache, EnvelopeCipher
from sfbroker.errors import BrokerError, DependencyUnavailable
from sfbroker.runtime import AWS_CONFIG, audit_writer, utc_now
from sfbroker.services.api_tokens import DEFAULT_EXPIRY_DAYS, ApiTokenService, NewApiToken
from sfbroker.services.audit import AuditTrail, RequestFacts
from sfbroker.services.reencrypt import Reencryption, ReencryptProgress
from sfbroker.settings import Settings
from sfbroker.store.api_tokens import ApiTokenStore
from sfbroker.store.audit import AuditStore
from sfbroker.store.sealed import InvalidCursor, SealedValueStore
from sfbroker.store.table import Table


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; prints what a human needs, returns the exit status."""
    args = _parser().parse_args(argv)
    if not args.table:
        print("no table: pass --table or set TABLE_NAME", file=sys.stderr)
        return 2
    table = Table(boto3.client("dynamodb", config=AWS_CONFIG), args.table)
    if args.command == "reencrypt":
        return _reencrypt(table, args)
    tokens = ApiTokenService(ApiTokenStore(table), utc_now, _setting("api_token_max_days"))
    trail, operator, request = _audit_context(table, args)
    try:
        if args.command == "create-token":
            record, token = tokens.create(
                NewApiToken(
                    name=args.name,
                    scopes=tuple(args.scopes.split(",")),
                    org_patterns=tuple(p for p in args.orgs.split(",") if p),
                    expires_in_days=args.expires_in_days,
                ),
                created_by=operator,
            )
            trail.record(
                request,
                actor=operator,
                action="apitoken.create",
                target=token_principal_id(record.token_id),
                outcome="success",
            )
            print(f"id:      {record.token_id}", file=sys.stderr)
            print(f"expires: {record.expires_at.isoformat()}", file=sys.stderr)
            print("token (shown once; only its hash is stored):", file=sys.stderr)
            print(token.get_secret_value())
        elif args.command == "revoke-token":
            tokens.revoke(args.id, revoked_by=operator)
            trail.record(
                request,
                actor=operator,
                action="apitoken.revoke",
                target=token_principal_id(args.id),
                outcome="success",
            )
            print(f"revoked {args.id}", file=sys.stderr)
        else:
            now = utc_now()
            for record in tokens.list():
                scopes = ",".join(record.scopes)
                print(f"{record.token_id}  {record.status(now):8} {record.name}  {scopes}")
    except BrokerError as error:
        details = "; ".join(f"{d['field']}: {d['message']}" for d in error.details or [])
        print(f"{error.code}: {error.message} {details}".rstrip(), file=sys.stderr)
        return 1
    return 0


def _audit_context(table: Table, args: argparse.Namespace) -> tuple[AuditTrail, str, RequestFacts]:
    """The audit trail, the operator (`--operator`, else the caller's AWS ARN) and the
    facts of this command, for its audit event."""
    retention = timedelta(days=_setting("audit_retention_days"))
    trail = AuditTrail(AuditStore(table), utc_now, retention, audit_writer())
    operator = args.operator or _caller_arn()
    request = RequestFacts(
        request_id=f"cli-{uuid.uuid4()}", source_ip=None, route=f"cli {args.command}"
    )
    return trail, operator, request


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sfbroker.admin_cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME"), help="data table")
    parser.add_argument(
        "--operator", help="actor recorded as creator (default: the caller's AWS ARN)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-token", help="mint a token; prints it once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scopes", required=True, help=f"comma-separated, of: {', '.join(sorted(SCOPES))}"
    )
    create.add_argument("--orgs", default="", help="comma-separated org patterns (fnmatch)")
    create.add_argument("--expires-in-days", type=int, default=DEFAULT_EXPIRY_DAYS)
    revoke = commands.add_parser("revoke-token", help="revoke a token at once")
    revoke.add_argument("id")
    commands.add_parser("list-tokens", help="id, state, name and scopes of every token")
    reencrypt = commands.add_parser(
        "reencrypt",
        help="re-wrap every stored envelope under the key's current material",
        description=_REENCRYPT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reencrypt.add_argument(
        "--key-id",
        default=os.environ.get("KMS_KEY_ID"),
        help="the envelope key (the stack's EnvelopeKeyArn output; default: $KMS_KEY_ID)",
    )
    reencrypt.add_argument(
        "--dry-run", action="store_true", help="only count what would be re-wrapped"
    )
    reencrypt.add_argument("--resume-from", metavar="CURSOR", help="a cursor a run printed")
    reencrypt.add_argument(
        "--page-size", type=int, default=100, help="items read per page (default 100)"
    )
    return parser


_REENCRYPT_HELP = """\
Re-wrap every envelope (org credentials, cached access tokens) under the current
material of the KMS key, while the broker keeps serving. Only each record's wrapped
data key changes, through KMS ReEncrypt: no secret and no data key is ever decrypted
here or shown. A record that live traffic changes meanwhile is skipped, never
overwritten; a later run picks it up if it still needs it.

Progress after every page: seen (envelopes found), re-wrapped, current (KMS reports
the data key already under the current material: not written), skipped (changed
meanwhile), failed (a wrapped key KMS refuses for its record), and a cursor.
A real run ends with one audit event (envelopes.reencrypt, the summary as its
reason). Resumable: --resume-from CURSOR continues after that page. Re-running
from any earlier cursor, or from the start, is harmless. Needs dynamodb:Scan,
dynamodb:UpdateItem and (audit) dynamodb:PutItem on the table and, through the
key policy (template parameter ReencryptRoleArn), kms:ReEncryptFrom and
kms:ReEncryptTo. Exit status: 0 complete with nothing failed, 1 otherwise
(2: bad arguments).
"""


def _reencrypt(table: Table, args: argparse.Namespace) -> int:
    if not args.key_id and not args.dry_run:
        print("no key: pass --key-id or set KMS_KEY_ID", file=sys.stderr)
        return 2
    if args.page_size < 1:
        print("--page-size must be at least 1", file=sys.stderr)
        return 2
    audit = None if args.dry_run else _audit_context(table, args)
    cipher = EnvelopeCipher(
        boto3.client("kms", config=AWS_CONFIG), args.key_id or "", DataKeyCache(0, 0)
    )
    run = Reencryption(SealedValueStore(table), cipher, args.page_size)
    try:
        progress = run.run(dry_run=args.dry_run, cursor=args.resume_from, report=_print_progress)
    except InvalidCursor:
        print("--resume-from: not a cursor this command printed", file=sys.stderr)
        return 2
    if progress.interrupted_by:
        print(f"interrupted: {progress.interrupted_by}", file=sys.stderr)
        print(f"resume with: --resume-from {progress.cursor or ''}".rstrip(), file=sys.stderr)
    verb = "would re-wrap" if progress.dry_run else "re-wrapped"
    summary = (
        f"{'complete' if progress.complete else 'incomplete'}: seen {progress.seen}, "
        f"{verb} {progress.rewrapped}, current {progress.current}, "
        f"skipped {progress.skipped}, failed {progress.failed}"
    )
    print(summary)
    succeeded = progress.complete and not progress.failed
    if audit is not None:
        trail, operator, request = audit
        try:
            trail.record(
                request,
                actor=operator,
                action="envelopes.reencrypt",
                target=f"key:{args.key_id}",
                outcome="success" if succeeded else "error",
                reason=summary,
            )
        except DependencyUnavailable as error:
            print(f"audit event not written: {error.message}", file=sys.stderr)
            return 1
    return 0 if succeeded else 1


def _print_progress(progress: ReencryptProgress) -> None:
    verb = "would re-wrap" if progress.dry_run else "re-wrapped"
    print(
        f"seen {progress.seen}  {verb} {progress.rewrapped}  current {progress.current}  "
        f"skipped {progress.skipped}  failed {progress.failed}  "
        f"cursor {progress.cursor or '(end)'}",
        file=sys.stderr,
        flush=True,
    )


def _setting(name: str) -> int:
    """A numeric setting from its environment variable, else the deployed default."""
    field = Settings.model_fields[name]
    return int(os.environ.get(str(field.alias), field.default))


def _caller_arn() -> str:
    try:
        return str(boto3.client("sts", config=AWS_CONFIG).get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError):
        return "cli:unknown-operator"


if __name__ == "__main__":
    sys.exit(main())
