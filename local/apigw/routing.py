"""Match request paths against the routes of the template's APIs, as API Gateway does."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from local.template import ApiSpec, RouteSpec

__all__ = ["ANY_METHOD", "Route", "RouteMatch", "RouteTable"]

ANY_METHOD: Final = "ANY"
_PARAMETER: Final = re.compile(r"\{([^}/]+?)(\+?)\}")


@dataclass(frozen=True)
class Route:
    """A route of the template bound to its API."""

    spec: RouteSpec
    api: ApiSpec
    pattern: re.Pattern[str]
    # More literal segments = more specific (`/orgs/me` before `/orgs/{username}`).
    specificity: tuple[int, int]

    def allows(self, method: str) -> bool:
        """Whether the route answers this HTTP method."""
        return self.spec.method in (method.upper(), ANY_METHOD)

    @property
    def is_open(self) -> bool:
        """No authorization: ``Auth: Authorizer: NONE``, or an API without a default."""
        return self.spec.auth_none or self.api.default_authorizer is None


@dataclass(frozen=True)
class RouteMatch:
    """A route whose path template matched a request path.

    ``path`` is the request path without the stage prefix, still percent-encoded;
    ``path_parameters`` are decoded.
    """

    route: Route
    path: str
    path_parameters: dict[str, str]


class RouteTable:
    """Every route of every API; a path matches with or without its API's stage prefix."""

    def __init__(self, apis: Sequence[ApiSpec], routes: Sequence[RouteSpec]) -> None:
        by_id = {api.logical_id: api for api in apis}
        unknown = sorted({r.api_logical_id for r in routes} - set(by_id))
        if unknown:
            raise ValueError(f"routes refer to APIs not in the template: {', '.join(unknown)}")
        self.routes = sorted(
            (_route(spec, by_id[spec.api_logical_id]) for spec in routes),
            key=lambda route: route.specificity,
            reverse=True,
        )

    def match(self, raw_path: str) -> list[RouteMatch]:
        """Routes whose template matches ``raw_path`` (as sent), most specific first."""
        matches = []
        for route in self.routes:
            path = _without_stage(raw_path, route.api.stage_name)
            found = route.pattern.fullmatch(path)
            if found is not None:
                parameters = {name: unquote(value) for name, value in found.groupdict().items()}
                matches.append(RouteMatch(route, path, parameters))
        return matches


def _route(spec: RouteSpec, api: ApiSpec) -> Route:
    pattern = []
    position = 0
    for parameter in _PARAMETER.finditer(spec.path):
        pattern.append(re.escape(spec.path[position : parameter.start()]))
        name, greedy = parameter.group(1), parameter.group(2)
        # {name} is one segment; {name+} spans the rest of the path.
        pattern.append(f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)")
        position = parameter.end()
    pattern.append(re.escape(spec.path[position:]))
    segments = [segment for segment in spec.path.split("/") if segment]
    literal = sum(1 for segment in segments if not _PARAMETER.search(segment))
    greedy = any(segment.endswith("+}") for segment in segments)
    return Route(spec, api, re.compile("".join(pattern)), (0 if greedy else 1, literal))


def _without_stage(raw_path: str, stage: str) -> str:
    prefix = f"/{stage}"
    if stage and (raw_path == prefix or raw_path.startswith(prefix + "/")):
        return raw_path[len(prefix) :] or "/"
    return raw_path
