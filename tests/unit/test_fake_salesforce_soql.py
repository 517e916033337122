"""The fake Salesforce's SOQL interpreter, without HTTP."""

from datetime import UTC, date, datetime, timedelta

import pytest

from local.fake_salesforce import soql
from local.fake_salesforce.ids import id_checksum
from local.fake_salesforce.schema import SCRATCH_ORG_INFO, Row

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def row(record_id: str, **fields: object) -> Row:
    base: Row = {f.name: None for f in SCRATCH_ORG_INFO.fields}
    base.update({"Id": record_id, "Status": "Active"}, **fields)
    return base


ROWS = [
    row("2SR8d0000000001AAA", Pooltag__c="ci", CreatedDate=NOW - timedelta(days=2),
        ExpirationDate=date(2026, 11, 24), Allocation_status__c="Available"),
    row("2SR8d0000000002AAA", Pooltag__c="CI", CreatedDate=NOW,
        ExpirationDate=date(2026, 12, 2), Allocation_status__c="Assigned"),
    row("2SR8d0000000003AAA", Pooltag__c="o'neil\\x", CreatedDate=NOW - timedelta(days=1),
        ExpirationDate=date(2026, 11, 25)),
]  # fmt: skip


def ids_of(query: str) -> list[str]:
    parsed = soql.parse(query)
    return [str(r["Id"])[14] for r in soql.execute(parsed, SCRATCH_ORG_INFO, ROWS, NOW)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Pooltag__c = 'ci'", ["1", "2"]),  # strings compare case-insensitively
        (r"Pooltag__c = 'o\'neil\\x'", ["3"]),
        ("Pooltag__c LIKE 'c%'", ["1", "2"]),
        ("Pooltag__c IN ('ci', 'nope')", ["1", "2"]),
        ("Pooltag__c NOT IN ('ci')", ["3"]),
        ("Allocation_status__c = null", ["3"]),
        ("Allocation_status__c != 'Assigned'", ["1", "3"]),  # != keeps nulls, as in SOQL
        ("NOT Allocation_status__c = 'Assigned'", ["1", "3"]),
        ("(Pooltag__c = 'ci' AND Allocation_status__c = 'Assigned') OR ExpirationDate = TODAY",
         ["2", "3"]),
        ("ExpirationDate < TODAY", ["1"]),
        ("ExpirationDate < 2026-11-25", ["1"]),
        ("CreatedDate >= 2026-11-25T00:00:00Z", ["2"]),
        ("CreatedDate = LAST_N_DAYS:1", ["2", "3"]),
        ("Id = '2SR8d0000000002'", ["2"]),  # 15-character ids match 18-character ones
        ("Id IN ('2SR8d0000000003AAA')", ["3"]),
    ],
)  # fmt: skip
def test_where(where: str, expected: list[str]):
    assert ids_of(f"SELECT Id FROM ScratchOrgInfo WHERE {where} ORDER BY Id") == expected  # noqa: S608


def test_order_limit_offset_and_nulls():
    query = "SELECT Id FROM ScratchOrgInfo ORDER BY Allocation_status__c DESC NULLS FIRST"
    assert ids_of(query) == ["3", "1", "2"]  # Available > Assigned
    assert ids_of("SELECT Id FROM ScratchOrgInfo ORDER BY CreatedDate DESC LIMIT 2") == ["2", "3"]
    assert ids_of("select id from scratchorginfo order by createddate limit 1 offset 1") == ["3"]


def test_count_and_selected_fields():
    parsed = soql.parse("SELECT COUNT() FROM ScratchOrgInfo WHERE Pooltag__c = 'ci'")
    assert parsed.count_only
    assert len(soql.execute(parsed, SCRATCH_ORG_INFO, ROWS, NOW)) == 2
    fields = soql.selected_fields(soql.parse("SELECT pooltag__c, ID FROM X"), SCRATCH_ORG_INFO)
    assert [f.name for f in fields] == ["Pooltag__c", "Id"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "MALFORMED_QUERY"),
        ("SELECT FROM ScratchOrgInfo", "MALFORMED_QUERY"),
        ("SELECT Id FROM ScratchOrgInfo WHERE Pooltag__c = 'x' AND Id = 'y' OR Id = 'z'",
         "MALFORMED_QUERY"),
        ("SELECT Id FROM ScratchOrgInfo WHERE Pooltag__c = 'unterminated", "MALFORMED_QUERY"),
        (r"SELECT Id FROM ScratchOrgInfo WHERE Pooltag__c = 'bad \q escape'", "MALFORMED_QUERY"),
        ("SELECT Id FROM ScratchOrgInfo LIMIT x", "MALFORMED_QUERY"),
        ("SELECT Id FROM ScratchOrgInfo WHERE ExpirationDate < '2026-01-01'", "INVALID_FIELD"),
        ("SELECT Id FROM ScratchOrgInfo WHERE Pooltag__c = 3", "INVALID_FIELD"),
        ("SELECT Nope FROM ScratchOrgInfo", "INVALID_FIELD"),
        ("SELECT Id FROM ScratchOrgInfo ORDER BY Nope", "INVALID_FIELD"),
        ("SELECT Id FROM ScratchOrgInfo WHERE Id = 'short'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)  # fmt: skip
def test_rejected_queries(query: str, code: str):
    with pytest.raises(soql.SoqlError) as caught:
        soql.execute(soql.parse(query), SCRATCH_ORG_INFO, ROWS, NOW)
    assert caught.value.error_code == code


def test_error_message_points_at_the_culprit():
    with pytest.raises(soql.SoqlError) as caught:
        soql.parse("SELECT Id FROM ScratchOrgInfo WHERE WHERE")
    assert caught.value.message.splitlines()[1:4] == [
        "SELECT Id FROM ScratchOrgInfo WHERE WHERE",
        " " * 36 + "^",
        "ERROR at Row:1:Column:37",
    ]


def test_id_checksum_matches_salesforce():
    assert id_checksum("001A0000006Vm9r") == "IAC"
