"""Response shapes of Salesforce's wire protocol: JSON bodies, REST and OAuth errors."""

import json
from datetime import date, datetime

from werkzeug.wrappers import Response

from local.fake_salesforce.schema import FieldValue, Row

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
NO_STORE = "no-cache,must-revalidate,max-age=0,no-store,private"


class RestError(Exception):
    """A REST API error: `[{"message": …, "errorCode": …}]` with an HTTP status."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


class OAuthError(Exception):
    """An OAuth endpoint error: `{"error": …, "error_description": …}`, HTTP 400."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def json_response(body: object, status: int = 200) -> Response:
    """A JSON response with Salesforce's content type."""
    return Response(json.dumps(body), status=status, content_type=JSON_CONTENT_TYPE)


def rest_error_response(error: RestError) -> Response:
    """The REST error body Salesforce sends: a one-element list."""
    return json_response([{"message": error.message, "errorCode": error.error_code}], error.status)


def oauth_error_response(error: OAuthError) -> Response:
    """The OAuth error body Salesforce sends."""
    response = json_response(
        {"error": error.error, "error_description": error.description}, error.status
    )
    response.headers["Cache-Control"] = NO_STORE
    return response


def session_invalid() -> RestError:
    """The 401 for a missing, unknown, revoked or expired access token."""
    return RestError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def not_found() -> RestError:
    """The 404 for an unknown resource or record."""
    return RestError(404, "NOT_FOUND", "The requested resource does not exist")


def wire_value(value: FieldValue) -> str | bool | int | float | None:
    """A field value as Salesforce serialises it (datetimes as `…T…+0000`)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if isinstance(value, date):
        return value.isoformat()
    return value


def record_body(
    entity_name: str, record_id: FieldValue, fields: Row, url_base: str
) -> dict[str, object]:
    """A record with its `attributes` (type and URL), as in query and retrieve answers."""
    url = f"{url_base}/sobjects/{entity_name}/{record_id}"
    body: dict[str, object] = {"attributes": {"type": entity_name, "url": url}}
    body.update({name: wire_value(value) for name, value in fields.items()})
    return body
