"""`python -m local.fake_salesforce [--port N] [--tls] [--no-seed] [--seed-file PATH]`.

Prints where it listens (never a token); the seeded auth URLs go to `--seed-file`
(mode 0600) or can be fetched with `POST <base URL>/__fake__/seed`.
"""

import argparse
import json
import os
import signal
import threading
from pathlib import Path
from types import FrameType

from local.fake_salesforce.server import start_fake_salesforce


def main(argv: list[str] | None = None) -> None:
    """Run a fake Salesforce until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m local.fake_salesforce", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tls", action="store_true", help="serve https with a throwaway CA")
    parser.add_argument("--hostname", choices=["127.0.0.1", "localhost"], default="127.0.0.1")
    parser.add_argument("--no-seed", action="store_true", help="start with an empty world")
    parser.add_argument("--seed-file", type=Path, help="write the seeded auth URLs here (0600)")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with start_fake_salesforce(args.port, args.tls, hostname=args.hostname) as fake:
        if not args.no_seed:
            seed = fake.seed_default()
            if args.seed_file:
                fd = os.open(args.seed_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as handle:
                    json.dump(seed.to_json(), handle, indent=2)
        print(f"fake Salesforce listening on {fake.base_url}", flush=True)
        print(f"admin API: {fake.base_url}/__fake__/state", flush=True)
        if fake.ca_cert_path:
            print(f"CA certificate: {fake.ca_cert_path}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
