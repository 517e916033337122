"""Run the fake Salesforce on 127.0.0.1 in a background thread (werkzeug's server)."""

import logging
import tempfile
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from local.fake_salesforce.app import FakeSalesforceApp
from local.fake_salesforce.faults import FaultInjector
from local.fake_salesforce.seed import DefaultSeed
from local.fake_salesforce.state import FakeSalesforceState
from local.fake_salesforce.tls import server_ssl_context, write_tls_files
from local.fake_salesforce.traffic import RequestRecord, TrafficLog

logger = logging.getLogger(__name__)


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, logging through `logging` at DEBUG instead of to stderr."""

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.DEBUG if type == "info" else logging.WARNING
        logger.log(level, "%s " + message, self.address_string(), *args)


class FakeSalesforceServer:
    """A running fake Salesforce: one base URL serving every org of `state`.

    Attributes: `base_url`, `port`, `state`, `traffic`, `faults`, `ca_cert_path` (TLS only).
    Use as a context manager, or call `stop()`.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        tls: bool = False,
        hostname: str = "127.0.0.1",
        bind: str = "127.0.0.1",
        state: FakeSalesforceState | None = None,
    ) -> None:
        self.state = state or FakeSalesforceState()
        self.traffic = TrafficLog()
        self.faults = FaultInjector()
        self.ca_cert_path: Path | None = None
        self._stopping = threading.Event()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        ssl_context = None
        if tls:
            self._tempdir = tempfile.TemporaryDirectory(prefix="fake-salesforce-tls-")
            files = write_tls_files(Path(self._tempdir.name))
            ssl_context = server_ssl_context(files)
            self.ca_cert_path = files.ca_cert_path
        app = FakeSalesforceApp(self.state, self.traffic, self.faults, self._stopping)
        try:
            self._server = make_server(
                bind,
                port,
                app,
                threaded=True,
                request_handler=_QuietRequestHandler,
                ssl_context=ssl_context,
            )
        except OSError:
            if self._tempdir is not None:
                self._tempdir.cleanup()
            raise
        self.port: int = self._server.socket.getsockname()[1]
        self.base_url = f"{'https' if tls else 'http'}://{hostname}:{self.port}"
        self.state.base_url = self.base_url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-salesforce-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def counts(self) -> Counter[str]:
        """Requests per endpoint so far (`oauth2/token`, `query`, …; absent keys read 0)."""
        return self.traffic.counts

    @property
    def requests_log(self) -> list[RequestRecord]:
        """Every Salesforce request so far as (method, path, grant_type)."""
        return self.traffic.requests_log

    def reset_counts(self) -> None:
        """Forget counts and the request log."""
        self.traffic.reset()

    def seed_default(self) -> DefaultSeed:
        """Seed the default world (idempotent); see `seed.seed_default`."""
        return self.state.seed_default()

    def stop(self) -> None:
        """Stop serving, wake stalled requests, and delete the TLS files."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._tempdir is not None:
            self._tempdir.cleanup()

    def __enter__(self) -> "FakeSalesforceServer":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_fake_salesforce(
    port: int = 0,
    tls: bool = False,
    *,
    hostname: str = "127.0.0.1",
    bind: str = "127.0.0.1",
    seed: bool = False,
    state: FakeSalesforceState | None = None,
) -> FakeSalesforceServer:
    """Start a fake Salesforce on `bind`:`port` (127.0.0.1; 0 = any free port).

    `tls` serves https with a throwaway CA (`server.ca_cert_path`); `hostname` is the
    name used in `base_url` and auth URLs; `seed` runs `seed_default()` once started.
    """
    server = FakeSalesforceServer(port=port, tls=tls, hostname=hostname, bind=bind, state=state)
    if seed:
        server.seed_default()
    return server
