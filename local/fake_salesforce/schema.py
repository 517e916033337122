"""The sObject types the fake knows: their fields, field types and where they live."""

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TypeAlias

FieldValue: TypeAlias = str | bool | int | float | date | datetime | None
Row: TypeAlias = dict[str, FieldValue]


class FieldType(StrEnum):
    """SOAP field types, as far as SOQL comparisons and column metadata care."""

    ID = "id"
    STRING = "string"
    BOOLEAN = "boolean"
    INT = "int"
    DATE = "date"
    DATETIME = "datetime"

    @property
    def apex_type(self) -> str:
        """The `apexType` of a column in a `columns=true` answer."""
        return {
            FieldType.ID: "Id",
            FieldType.STRING: "String",
            FieldType.BOOLEAN: "Boolean",
            FieldType.INT: "Integer",
            FieldType.DATE: "Date",
            FieldType.DATETIME: "Datetime",
        }[self]


class Api(StrEnum):
    """The two query surfaces: the data API and the Tooling API."""

    DATA = "data"
    TOOLING = "tooling"


@dataclass(frozen=True)
class Field:
    """One field of an sObject type."""

    name: str
    type: FieldType
    updateable: bool = False

    @property
    def custom(self) -> bool:
        """Custom fields end in `__c`."""
        return self.name.endswith("__c")


@dataclass(frozen=True)
class Entity:
    """One sObject type: its fields, key prefix and the APIs that serve it."""

    name: str
    key_prefix: str
    fields: tuple[Field, ...]
    apis: frozenset[Api] = frozenset({Api.DATA, Api.TOOLING})
    dev_hub_only: bool = False
    deletable: bool = False

    def field(self, name: str) -> Field | None:
        """The field called `name`, case-insensitively (SOQL is), or None."""
        wanted = name.lower()
        return next((f for f in self.fields if f.name.lower() == wanted), None)


def _fields(*specs: tuple[str, FieldType] | tuple[str, FieldType, bool]) -> tuple[Field, ...]:
    return tuple(Field(*spec) for spec in specs)


_ID, _STR, _BOOL, _INT, _DATE, _DATETIME = (
    FieldType.ID,
    FieldType.STRING,
    FieldType.BOOLEAN,
    FieldType.INT,
    FieldType.DATE,
    FieldType.DATETIME,
)

ORGANIZATION = Entity(
    "Organization",
    "00D",
    _fields(
        ("Id", _ID),
        ("Name", _STR),
        ("InstanceName", _STR),
        ("IsSandbox", _BOOL),
        ("OrganizationType", _STR),
        ("TrialExpirationDate", _DATETIME),
        ("NamespacePrefix", _STR),
        ("CreatedDate", _DATETIME),
    ),
)

USER = Entity(
    "User",
    "005",
    _fields(
        ("Id", _ID),
        ("Username", _STR),
        ("Email", _STR, True),
        ("FirstName", _STR, True),
        ("LastName", _STR, True),
        ("Name", _STR),
        ("IsActive", _BOOL, True),
        ("UserType", _STR),
        ("TimeZoneSidKey", _STR, True),
        ("LanguageLocaleKey", _STR, True),
        ("CreatedDate", _DATETIME),
    ),
)

SCRATCH_ORG_INFO = Entity(
    "ScratchOrgInfo",
    "2SR",
    _fields(
        ("Id", _ID),
        ("OrgName", _STR, True),
        ("Edition", _STR),
        ("Status", _STR),
        ("ExpirationDate", _DATE),
        ("CreatedDate", _DATETIME),
        ("LastModifiedDate", _DATETIME),
        ("SignupUsername", _STR),
        ("SignupEmail", _STR, True),
        ("LoginUrl", _STR),
        ("ScratchOrg", _STR),
        ("DurationDays", _INT),
        ("Pooltag__c", _STR, True),
        ("Allocation_status__c", _STR, True),
        ("Password__c", _STR, True),
        ("SfdxAuthUrl__c", _STR, True),
    ),
    apis=frozenset({Api.DATA}),
    dev_hub_only=True,
    deletable=True,
)

ACTIVE_SCRATCH_ORG = Entity(
    "ActiveScratchOrg",
    "2AS",
    _fields(
        ("Id", _ID),
        ("ScratchOrg", _STR),
        ("ScratchOrgInfoId", _ID),
        ("SignupUsername", _STR),
        ("OrgName", _STR),
        ("Edition", _STR),
        ("ExpirationDate", _DATE),
        ("CreatedDate", _DATETIME),
    ),
    apis=frozenset({Api.DATA}),
    dev_hub_only=True,
    deletable=True,
)

SANDBOX_PROCESS = Entity(
    "SandboxProcess",
    "0GR",
    _fields(
        ("Id", _ID),
        ("SandboxName", _STR),
        ("Status", _STR),
        ("SandboxInfoId", _ID),
        ("LicenseType", _STR),
        ("CopyProgress", _INT),
        ("SandboxOrganization", _STR),
        ("SourceId", _ID),
        ("Description", _STR),
        ("CreatedDate", _DATETIME),
        ("StartDate", _DATETIME),
        ("EndDate", _DATETIME),
        ("ActivatedDate", _DATETIME),
        ("Features", _STR),
        ("LastModifiedDate", _DATETIME),
    ),
)

ENTITIES: dict[str, Entity] = {
    e.name.lower(): e
    for e in (ORGANIZATION, USER, SCRATCH_ORG_INFO, ACTIVE_SCRATCH_ORG, SANDBOX_PROCESS)
}


def find_entity(name: str) -> Entity | None:
    """The entity called `name`, case-insensitively, or None."""
    return ENTITIES.get(name.lower())
