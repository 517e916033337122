"""The REST resources under `/services/data`: versions, query, sObjects, sandboxAuth."""

import json
from datetime import date
from typing import Any

from local.fake_salesforce import soql
from local.fake_salesforce.schema import Api, Entity, Field, FieldType, FieldValue, Row, find_entity
from local.fake_salesforce.state import SANDBOX_COMPLETED, FakeSalesforceState, Org, User
from local.fake_salesforce.wire import RestError, not_found, record_body

OLDEST_API_VERSION = 31
NEWEST_API_VERSION = 65
API_VERSIONS = tuple(f"{v}.0" for v in range(OLDEST_API_VERSION, NEWEST_API_VERSION + 1))


def _release_label(major: int) -> str:
    # v62.0 was Winter '25; three releases a year, Winter / Spring / Summer.
    steps = major - 62
    season = ("Winter", "Spring", "Summer")[steps % 3]
    return f"{season} '{25 + steps // 3}"


def versions() -> list[dict[str, str]]:
    """`GET /services/data`: every API version the fake serves."""
    return [
        {"label": _release_label(int(v.split(".")[0])), "url": f"/services/data/v{v}", "version": v}
        for v in API_VERSIONS
    ]


def resources(version: str) -> dict[str, str]:
    """`GET /services/data/vNN.0`: the resource directory."""
    base = f"/services/data/v{version}"
    names = ("tooling", "query", "queryAll", "sobjects", "search", "limits", "recent")
    return {name: f"{base}/{name}" for name in names}


def _available(entity: Entity, org: Org, api: Api) -> bool:
    return api in entity.apis and (org.is_dev_hub or not entity.dev_hub_only)


def _invalid_type(query: soql.Query) -> soql.SoqlError:
    name = query.entity.name
    detail = (
        f"sObject type '{name}' is not supported. If you are attempting to use a custom "
        "object, be sure to append the '__c' after the entity name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )
    message = soql.located_message(query.text, query.entity.position, detail)
    return soql.SoqlError("INVALID_TYPE", message)


def query(
    state: FakeSalesforceState, user: User, api: Api, version: str, text: str, *, columns: bool
) -> dict[str, Any]:
    """`GET …/query?q=` and `…/tooling/query?q=` (with `&columns=true`: column metadata)."""
    org = state.org_of(user)
    try:
        parsed = soql.parse(text)
        entity = find_entity(parsed.entity.name)
        if entity is None or not _available(entity, org, api):
            raise _invalid_type(parsed)
        fields = soql.selected_fields(parsed, entity)
        rows = soql.execute(parsed, entity, state.rows(entity, org), state.now())
    except soql.SoqlError as error:
        raise RestError(400, error.error_code, error.message) from None
    if columns:
        return _column_metadata(entity, fields)
    url_base = f"/services/data/v{version}" + ("/tooling" if api is Api.TOOLING else "")
    records = [
        record_body(entity.name, row["Id"], {f.name: row[f.name] for f in fields}, url_base)
        for row in ([] if parsed.count_only else rows)
    ]
    if api is Api.TOOLING:
        return {
            "size": len(rows),
            "totalSize": len(rows),
            "done": True,
            "queryLocator": None,
            "entityTypeName": entity.name,
            "records": records,
        }
    return {"totalSize": len(rows), "done": True, "records": records}


def _column_metadata(entity: Entity, fields: list[Field]) -> dict[str, Any]:
    return {
        "columnMetadata": [
            {
                "aggregate": False,
                "apexType": f.type.apex_type,
                "booleanType": f.type is FieldType.BOOLEAN,
                "columnName": f.name,
                "custom": f.custom,
                "displayName": f.name,
                "foreignKeyName": None,
                "insertable": f.updateable,
                "joinColumns": [],
                "numberType": f.type is FieldType.INT,
                "textType": f.type in {FieldType.STRING, FieldType.ID},
                "updatable": f.updateable,
            }
            for f in fields
        ],
        "entityName": entity.name,
        "groupBy": False,
        "idSelected": any(f.name == "Id" for f in fields),
        "keyPrefix": None,
    }


def _data_entity(org: Org, name: str) -> Entity:
    entity = find_entity(name)
    if entity is None or not _available(entity, org, Api.DATA):
        raise not_found()
    return entity


def describe(state: FakeSalesforceState, user: User, version: str, name: str) -> dict[str, Any]:
    """`GET …/sobjects/<Type>/describe`: 404 for types this org lacks (how Dev Hubs show)."""
    entity = _data_entity(state.org_of(user), name)
    base = f"/services/data/v{version}/sobjects/{entity.name}"
    return {
        "name": entity.name,
        "label": entity.name,
        "keyPrefix": entity.key_prefix,
        "custom": False,
        "queryable": True,
        "retrieveable": True,
        "updateable": any(f.updateable for f in entity.fields),
        "deletable": entity.deletable,
        "fields": [
            {
                "name": f.name,
                "label": f.name,
                "type": f.type.value,
                "custom": f.custom,
                "nillable": f.name != "Id",
                "updateable": f.updateable,
            }
            for f in entity.fields
        ],
        "urls": {"describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}", "sobject": base},
    }


def _no_such_column(entity: Entity, name: str) -> RestError:
    message = f"No such column '{name}' on sobject of type {entity.name}"
    return RestError(400, "INVALID_FIELD", message)


def get_record(
    state: FakeSalesforceState,
    user: User,
    version: str,
    name: str,
    record_id: str,
    *,
    fields_param: str | None = None,
) -> dict[str, object]:
    """`GET …/sobjects/<Type>/<Id>[?fields=a,b]`."""
    org = state.org_of(user)
    entity = _data_entity(org, name)
    row = state.find_row(entity, org, record_id)
    if row is None:
        raise not_found()
    selected: Row = row
    if fields_param:
        selected = {}
        for wanted in fields_param.split(","):
            field = entity.field(wanted.strip())
            if field is None:
                raise _no_such_column(entity, wanted.strip())
            selected[field.name] = row[field.name]
    return record_body(entity.name, row["Id"], selected, f"/services/data/v{version}")


def update_record(
    state: FakeSalesforceState, user: User, name: str, record_id: str, body: bytes
) -> None:
    """`PATCH …/sobjects/<Type>/<Id>` with a JSON object of field values (then 204)."""
    org = state.org_of(user)
    entity = _data_entity(org, name)
    changes = _parse_changes(entity, body)
    if not state.update_row(entity, org, record_id, changes):
        raise not_found()


def _parse_changes(entity: Entity, body: bytes) -> Row:
    try:
        document = json.loads(body or b"null")
    except ValueError:
        raise RestError(400, "JSON_PARSER_ERROR", "Unexpected character in JSON body") from None
    if not isinstance(document, dict):
        raise RestError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    changes: Row = {}
    for key, value in document.items():
        if key == "attributes":
            continue
        field = entity.field(key)
        if field is None:
            raise _no_such_column(entity, key)
        if not field.updateable:
            message = (
                f"Unable to create/update fields: {field.name}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set."
            )
            raise RestError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", message)
        changes[field.name] = _field_value(field, value)
    return changes


def _field_value(field: Field, value: object) -> FieldValue:
    if value is None:
        return None
    try:
        match field.type:
            case FieldType.BOOLEAN if isinstance(value, bool):
                return value
            case FieldType.INT if isinstance(value, int) and not isinstance(value, bool):
                return value
            case FieldType.DATE if isinstance(value, str):
                return date.fromisoformat(value)
            case FieldType.STRING | FieldType.ID if isinstance(value, str):
                return value
    except ValueError:
        pass
    message = f"Cannot deserialize value {json.dumps(value)} for field {field.name}"
    raise RestError(400, "JSON_PARSER_ERROR", message)


def delete_record(state: FakeSalesforceState, user: User, name: str, record_id: str) -> None:
    """`DELETE …/sobjects/<Type>/<Id>` (then 204); deleting a scratch org's row ends it."""
    org = state.org_of(user)
    entity = _data_entity(org, name)
    if not entity.deletable:
        message = "HTTP Method 'DELETE' not allowed. Allowed are HEAD,GET,PATCH"
        raise RestError(405, "METHOD_NOT_ALLOWED", message)
    if not state.delete_row(entity, org, record_id):
        raise not_found()


def sandbox_auth(state: FakeSalesforceState, user: User, body: bytes) -> dict[str, str]:
    """`POST …/tooling/sandboxAuth` on a production org: an authorization code for a sandbox."""
    try:
        document = json.loads(body or b"null")
    except ValueError:
        raise RestError(400, "JSON_PARSER_ERROR", "Unexpected character in JSON body") from None
    if not isinstance(document, dict):
        raise RestError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    request = {key: document.get(key) for key in ("clientId", "sandboxName", "callbackUrl")}
    missing = [key for key, value in request.items() if not isinstance(value, str) or not value]
    if missing:
        raise RestError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: {missing}")
    name = str(request["sandboxName"])
    with state.lock:
        sandbox = state.find_sandbox(state.org_of(user), name)
        if sandbox is None:
            raise RestError(404, "NOT_FOUND", f"No sandbox named {name} exists in this org")
        if sandbox.status != SANDBOX_COMPLETED:
            message = f"The sandbox {name} is not ready: its status is {sandbox.status}"
            raise RestError(400, "INVALID_STATUS", message)
        sandbox_user = state.find_user(f"{user.username}.{sandbox.name.lower()}")
        if sandbox_user is None or sandbox_user.org_id != sandbox.org_id:
            sandbox_user = state.org_users(state.orgs[sandbox.org_id])[0]
        code = state.issue_authorization_code(
            sandbox_user, str(request["clientId"]), str(request["callbackUrl"])
        )
        return {
            "authUserName": sandbox_user.username,
            "authCode": code,
            "instanceUrl": state.base_url,
            "loginUrl": state.base_url,
        }
