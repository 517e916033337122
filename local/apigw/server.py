"""Serve the gateway over HTTP on 127.0.0.1 with werkzeug, the handlers in-process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from local import lambdas
from local.apigw.app import GatewayApp
from local.apigw.sigv4 import IamUser, SigV4Verifier
from local.template import FunctionSpec, api_routes, apis, functions

__all__ = ["GatewayServer", "InProcessFunctions", "build_gateway"]

# Not under "sfbroker": Powertools' Logger owns that name and would print these as JSON.
LOGGER = logging.getLogger("local.gateway")


# Lambda runs a function's concurrent requests in as many execution environments; the
# stack starts them on demand too, up to this many per function.
MAX_ENVIRONMENTS = 10


class _ExecutionEnvironments:
    """A function's warm environments. Each handles one event at a time (the Powertools
    resolver keeps the current event on its module-level app); when all are busy a new
    one is started (a cold start), up to `limit`, and then callers wait."""

    def __init__(self, spec: FunctionSpec, limit: int) -> None:
        self._spec = spec
        self._limit = limit
        self._idle: list[lambdas.Handler] = []
        self._started = 0
        self._changed = threading.Condition()

    @contextmanager
    def acquire(self) -> Iterator[lambdas.Handler]:
        with self._changed:
            while not self._idle and self._started >= self._limit:
                self._changed.wait()
            handler = self._idle.pop() if self._idle else None
            number = self._started
            if handler is None:
                self._started += 1
        if handler is None:
            try:
                handler = lambdas.load_handler(self._spec.code_uri, self._spec.handler, number)
            except BaseException:
                with self._changed:
                    self._started -= 1
                    self._changed.notify()
                raise
        try:
            yield handler
        finally:
            with self._changed:
                self._idle.append(handler)
                self._changed.notify()


class InProcessFunctions:
    """The template's functions, called in this process as the Lambda runtime would."""

    def __init__(self, specs: Sequence[FunctionSpec], limit: int = MAX_ENVIRONMENTS) -> None:
        self._environments = {
            spec.logical_id: _ExecutionEnvironments(spec, limit) for spec in specs
        }

    def load_all(self) -> None:
        """Start one environment of every function now, so a broken one fails at start."""
        for environments in self._environments.values():
            with environments.acquire():
                pass

    def __call__(self, function_logical_id: str, event: dict[str, Any]) -> Any:
        """Invoke a function with ``event``; what it returns (or raises) comes back."""
        with self._environments[function_logical_id].acquire() as handler:
            return lambdas.run(handler, event, function_logical_id)


def build_gateway(
    template: Mapping[str, Any],
    users: Sequence[IamUser],
    parameters: Mapping[str, str] | None = None,
) -> GatewayApp:
    """The gateway for every API, route and function of ``template``, handlers loaded."""
    invoke = InProcessFunctions(functions(template))
    invoke.load_all()
    return GatewayApp(
        apis(template, parameters), api_routes(template), invoke, SigV4Verifier(users)
    )


class _RequestLog(WSGIRequestHandler):
    """One line per request: method, path without the query string, status. Never a
    header or a body (they carry signatures, tokens and auth URLs)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        LOGGER.info("%s %s %s", self.command, path, code)

    def log(self, type: str, message: str, *args: Any) -> None:
        if type != "info":
            LOGGER.warning(message, *args)


class GatewayServer:
    """A threaded werkzeug server running ``app`` in a background thread until ``stop()``."""

    def __init__(self, app: GatewayApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_RequestLog
        )
        self.port: int = self._server.socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"gateway-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
