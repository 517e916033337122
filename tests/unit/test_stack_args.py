"""`python -m local.stack --bind/--public-host`: where containers reach the stack."""

from __future__ import annotations

import pytest

from local.stack import EVERY_INTERFACE, parse_args


def test_the_stack_binds_where_containers_reach_it() -> None:
    args = parse_args(["--bind", "172.17.0.1"])
    assert (args.bind, args.public_host) == ("172.17.0.1", "172.17.0.1")
    args = parse_args(["--public-host", "host.docker.internal"])
    assert (args.bind, args.public_host) == ("127.0.0.1", "host.docker.internal")
    for refused in (
        ["--bind", EVERY_INTERFACE],  # every interface: which host do the URLs carry?
        ["--bind", "localhost"],  # an address, not a name
        ["--bind", "172.17.0.1", "--salesforce-tls"],  # the certificate names localhost
        ["--bind", "172.17.0.1", "--db", "dynamodb-local"],  # env.json points at moto
    ):
        with pytest.raises(SystemExit):
            parse_args(refused)
    args = parse_args(["--bind", EVERY_INTERFACE, "--public-host", "172.17.0.1"])
    assert (args.bind, args.public_host) == (EVERY_INTERFACE, "172.17.0.1")
