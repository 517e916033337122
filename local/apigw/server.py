"""Serve the gateway over HTTP on 127.0.0.1 with werkzeug, the handlers in-process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from local import lambdas
from local.apigw.app import GatewayApp
from local.apigw.sigv4 import IamUser, SigV4Verifier
from local.template import FunctionSpec, api_routes, apis, functions

__all__ = ["GatewayServer", "InProcessFunctions", "build_gateway"]

# Not under "sfbroker": Powertools' Logger owns that name and would print these as JSON.
LOGGER = logging.getLogger("local.gateway")


class InProcessFunctions:
    """The template's functions, called in this process as the Lambda runtime would.

    Each function handles one event at a time, like one warm Lambda container: the
    Powertools resolver keeps the current event on a module-level object.
    """

    def __init__(self, specs: Sequence[FunctionSpec]) -> None:
        self._specs = {spec.logical_id: spec for spec in specs}
        self._locks = {logical_id: threading.Lock() for logical_id in self._specs}

    def load_all(self) -> None:
        """Import every handler now, so a broken one fails at start, not at a request."""
        for spec in self._specs.values():
            lambdas.load_handler(spec.code_uri, spec.handler)

    def __call__(self, function_logical_id: str, event: dict[str, Any]) -> Any:
        """Invoke a function with ``event``; what it returns (or raises) comes back."""
        spec = self._specs[function_logical_id]
        with self._locks[function_logical_id]:
            return lambdas.invoke(spec.code_uri, spec.handler, event, function_logical_id)


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
