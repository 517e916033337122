"""A small SOQL interpreter: enough of the grammar for what sfbroker and the sf CLI send.

Supported: `SELECT f, … | COUNT() FROM Entity [WHERE …] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]`, with `= != <> < <= > >= LIKE IN NOT IN`,
`AND`/`OR`/`NOT` and parentheses (mixing AND and OR needs parentheses, as in SOQL),
string/number/boolean/null/date/datetime literals and TODAY, YESTERDAY, TOMORROW,
LAST_N_DAYS:n, NEXT_N_DAYS:n. Literals are type-checked against the field like
Salesforce does (a quoted date is an error), strings compare case-insensitively, ids
compare by their 15-character form. Anything else is a `MALFORMED_QUERY`.
"""

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias

from local.fake_salesforce.ids import id15
from local.fake_salesforce.schema import Entity, Field, FieldType, FieldValue, Row


class SoqlError(Exception):
    """A query Salesforce would reject; `error_code` is the REST `errorCode`."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def located_message(text: str, position: int, detail: str) -> str:
    """Salesforce's error layout: the query, a caret under the culprit, row and column."""
    row = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"\n{text}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{detail}"


# --- tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # string, datetime, date, number, ident, op, punct, end
    text: str
    position: int
    value: str = ""


_TOKEN_PATTERN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)

_STRING_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_STRING_ESCAPES |= {"b": "\b", "f": "\f", "%": "%", "_": "_"}


def _read_string(text: str, start: int) -> tuple[str, str, int]:
    """Read the literal opening at `start`; return its value, LIKE regex and end offset."""
    value: list[str] = []
    pattern: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "'":
            return "".join(value), "".join(pattern), index + 1
        if char == "\\":
            escaped = text[index + 1 : index + 2]
            if escaped not in _STRING_ESCAPES:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    located_message(text, index, "Invalid string literal: illegal escape"),
                )
            value.append(_STRING_ESCAPES[escaped])
            pattern.append(re.escape(_STRING_ESCAPES[escaped]))
            index += 2
            continue
        value.append(char)
        pattern.append({"%": ".*", "_": "."}.get(char, re.escape(char)))
        index += 1
    raise SoqlError("MALFORMED_QUERY", located_message(text, start, "unterminated string"))


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(text):
        if text[index] == "'":
            value, like_pattern, end = _read_string(text, index)
            tokens.append(_Token("string", text[index:end], index, value + "\0" + like_pattern))
            index = end
            continue
        match = _TOKEN_PATTERN.match(text, index)
        if match is None or match.lastgroup is None:
            detail = f"unexpected token: '{text[index]}'"
            raise SoqlError("MALFORMED_QUERY", located_message(text, index, detail))
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup, match.group(), index))
        index = match.end()
    tokens.append(_Token("end", "<EOF>", len(text)))
    return tokens


# --- syntax tree ----------------------------------------------------------------------


@dataclass(frozen=True)
class StringLiteral:
    """A quoted string; `like` is its LIKE pattern (with `%`/`_` wildcards) as a regex."""

    value: str
    like: str


@dataclass(frozen=True)
class NumberLiteral:
    """An unquoted number."""

    value: float


@dataclass(frozen=True)
class BooleanLiteral:
    """`true` or `false`."""

    value: bool


@dataclass(frozen=True)
class NullLiteral:
    """`null`."""


@dataclass(frozen=True)
class DateLiteral:
    """An unquoted `YYYY-MM-DD`."""

    value: date


@dataclass(frozen=True)
class DateTimeLiteral:
    """An unquoted ISO-8601 datetime with a zone."""

    value: datetime


@dataclass(frozen=True)
class RelativeDate:
    """A date literal keyword such as TODAY or LAST_N_DAYS:7, resolved at run time."""

    keyword: str
    days: int = 0

    def day_range(self, today: date) -> tuple[date, date]:
        """The half-open range of days the keyword stands for."""
        one = timedelta(days=1)
        n = timedelta(days=self.days)
        return {
            "TODAY": (today, today + one),
            "YESTERDAY": (today - one, today),
            "TOMORROW": (today + one, today + 2 * one),
            "LAST_N_DAYS": (today - n, today + one),
            "NEXT_N_DAYS": (today + one, today + one + n),
        }[self.keyword]


Literal: TypeAlias = (
    StringLiteral
    | NumberLiteral
    | BooleanLiteral
    | NullLiteral
    | DateLiteral
    | DateTimeLiteral
    | RelativeDate
)

_RELATIVE_DATES = {"TODAY", "YESTERDAY", "TOMORROW"}
_RELATIVE_DATES_WITH_N = {"LAST_N_DAYS", "NEXT_N_DAYS"}


@dataclass(frozen=True)
class FieldRef:
    """A field name as written in the query, with its offset for error messages."""

    name: str
    position: int


@dataclass(frozen=True)
class Comparison:
    """`field <op> literal`; op is one of = != < <= > >= LIKE."""

    field: FieldRef
    operator: str
    value: Literal


@dataclass(frozen=True)
class Membership:
    """`field [NOT] IN (literal, …)`."""

    field: FieldRef
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Junction:
    """Conditions joined by one of AND / OR."""

    operator: str
    operands: tuple["Condition", ...]


@dataclass(frozen=True)
class Negation:
    """`NOT condition`."""

    operand: "Condition"


Condition: TypeAlias = Comparison | Membership | Junction | Negation


@dataclass(frozen=True)
class OrderItem:
    """One `ORDER BY` term."""

    field: FieldRef
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Query:
    """A parsed SELECT statement."""

    text: str
    fields: tuple[FieldRef, ...]
    count_only: bool
    entity: FieldRef
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


# --- parser ---------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def fail(self, token: _Token | None = None) -> SoqlError:
        token = token or self.current
        detail = f"unexpected token: '{token.text}'"
        return SoqlError("MALFORMED_QUERY", located_message(self.text, token.position, detail))

    def at_keyword(self, *keywords: str) -> bool:
        return self.current.kind == "ident" and self.current.text.upper() in keywords

    def keyword(self, *keywords: str) -> str:
        if not self.at_keyword(*keywords):
            raise self.fail()
        return self.advance().text.upper()

    def punct(self, char: str) -> None:
        if self.current.kind != "punct" or self.current.text != char:
            raise self.fail()
        self.advance()

    def field_ref(self) -> FieldRef:
        token = self.current
        if token.kind != "ident" or token.text.upper() in _RESERVED:
            raise self.fail()
        self.advance()
        return FieldRef(token.text, token.position)

    def query(self) -> Query:
        self.keyword("SELECT")
        fields: list[FieldRef] = []
        count_only = False
        if self.at_keyword("COUNT") and self.tokens[self.index + 1].text == "(":
            self.advance()
            self.punct("(")
            self.punct(")")
            count_only = True
        else:
            fields.append(self.field_ref())
            while self.current.text == ",":
                self.advance()
                fields.append(self.field_ref())
        self.keyword("FROM")
        entity = self.field_ref()
        where = None
        if self.at_keyword("WHERE"):
            self.advance()
            where = self.condition()
        order_by: list[OrderItem] = []
        if self.at_keyword("ORDER"):
            self.advance()
            self.keyword("BY")
            order_by.append(self.order_item())
            while self.current.text == ",":
                self.advance()
                order_by.append(self.order_item())
        limit = self.clause_number("LIMIT")
        offset = self.clause_number("OFFSET")
        if self.current.kind != "end":
            raise self.fail()
        return Query(
            self.text, tuple(fields), count_only, entity, where, tuple(order_by), limit, offset
        )

    def clause_number(self, keyword: str) -> int | None:
        if not self.at_keyword(keyword):
            return None
        self.advance()
        token = self.advance()
        if token.kind != "number" or not token.text.isdigit():
            raise self.fail(token)
        return int(token.text)

    def order_item(self) -> OrderItem:
        field = self.field_ref()
        descending = False
        if self.at_keyword("ASC", "DESC"):
            descending = self.advance().text.upper() == "DESC"
        nulls_last = descending
        if self.at_keyword("NULLS"):
            self.advance()
            nulls_last = self.keyword("FIRST", "LAST") == "LAST"
        return OrderItem(field, descending, nulls_last)

    def condition(self) -> Condition:
        operands = [self.unary()]
        junction = None
        while self.at_keyword("AND", "OR"):
            token = self.current
            word = self.advance().text.upper()
            if junction not in (None, word):
                raise self.fail(token)  # SOQL wants parentheses when AND and OR mix
            junction = word
            operands.append(self.unary())
        if junction is None:
            return operands[0]
        return Junction(junction, tuple(operands))

    def unary(self) -> Condition:
        if self.at_keyword("NOT"):
            self.advance()
            return Negation(self.unary())
        if self.current.text == "(":
            self.advance()
            inner = self.condition()
            self.punct(")")
            return inner
        return self.predicate()

    def predicate(self) -> Condition:
        field = self.field_ref()
        token = self.current
        if token.kind == "op":
            self.advance()
            op = "!=" if token.text == "<>" else token.text
            return Comparison(field, op, self.literal())
        if self.at_keyword("LIKE"):
            self.advance()
            return Comparison(field, "LIKE", self.literal())
        negated = False
        if self.at_keyword("NOT"):
            self.advance()
            negated = True
        self.keyword("IN")
        self.punct("(")
        values = [self.literal()]
        while self.current.text == ",":
            self.advance()
            values.append(self.literal())
        self.punct(")")
        return Membership(field, tuple(values), negated)

    def literal(self) -> Literal:
        token = self.advance()
        word = token.text.upper()
        match token.kind:
            case "string":
                value, like = token.value.split("\0", 1)
                return StringLiteral(value, like)
            case "number":
                return NumberLiteral(float(token.text))
            case "date":
                return DateLiteral(self.parse_date(token))
            case "datetime":
                return DateTimeLiteral(self.parse_datetime(token))
            case "ident" if word in {"TRUE", "FALSE"}:
                return BooleanLiteral(word == "TRUE")
            case "ident" if word == "NULL":
                return NullLiteral()
            case "ident" if word in _RELATIVE_DATES:
                return RelativeDate(word)
            case "ident" if word in _RELATIVE_DATES_WITH_N:
                self.punct(":")
                days = self.advance()
                if days.kind != "number" or not days.text.isdigit():
                    raise self.fail(days)
                return RelativeDate(word, int(days.text))
        raise self.fail(token)

    def parse_date(self, token: _Token) -> date:
        try:
            return date.fromisoformat(token.text)
        except ValueError:
            raise self.fail(token) from None

    def parse_datetime(self, token: _Token) -> datetime:
        try:
            return datetime.fromisoformat(token.text).astimezone(UTC)
        except ValueError:
            raise self.fail(token) from None


_RESERVED = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT",
    "OFFSET", "NULL", "TRUE", "FALSE", "ASC", "DESC", "NULLS",
}  # fmt: skip


def parse(text: str) -> Query:
    """Parse a SOQL SELECT; raise `SoqlError("MALFORMED_QUERY", …)` when it is not one."""
    if not text.strip():
        raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
    return _Parser(text).query()


# --- evaluation -----------------------------------------------------------------------

_Predicate: TypeAlias = Callable[[Row], bool]

_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

_LITERAL_TYPES: dict[FieldType, tuple[type, ...]] = {
    FieldType.ID: (StringLiteral,),
    FieldType.STRING: (StringLiteral,),
    FieldType.BOOLEAN: (BooleanLiteral,),
    FieldType.INT: (NumberLiteral,),
    FieldType.DATE: (DateLiteral, RelativeDate),
    FieldType.DATETIME: (DateTimeLiteral, RelativeDate),
}

_TYPE_NAMES = {FieldType.DATETIME: "dateTime", FieldType.INT: "double"}


class _Evaluator:
    def __init__(self, query: Query, entity: Entity, now: datetime) -> None:
        self.query = query
        self.entity = entity
        self.today = now.astimezone(UTC).date()

    def error(self, code: str, position: int, detail: str) -> SoqlError:
        return SoqlError(code, located_message(self.query.text, position, detail))

    def resolve(self, ref: FieldRef) -> Field:
        field = self.entity.field(ref.name)
        if field is None:
            detail = (
                f"No such column '{ref.name}' on entity '{self.entity.name}'. If you are "
                "attempting to use a custom field, be sure to append the '__c' after the "
                "custom field name. Please reference your WSDL or the describe call for the "
                "appropriate names."
            )
            raise self.error("INVALID_FIELD", ref.position, detail)
        return field

    def check_literal(self, ref: FieldRef, field: Field, literal: Literal, op: str) -> None:
        if isinstance(literal, NullLiteral):
            if op not in {"=", "!=", "IN"}:
                raise self.error("MALFORMED_QUERY", ref.position, "invalid use of null")
            return
        if not isinstance(literal, _LITERAL_TYPES[field.type]):
            quoted = field.type in {FieldType.ID, FieldType.STRING}
            detail = (
                f"value of filter criterion for field '{field.name}' must be of type "
                f"{_TYPE_NAMES.get(field.type, field.type.value)} and should "
                f"{'' if quoted else 'not '}be enclosed in quotes"
            )
            raise self.error("INVALID_FIELD", ref.position, detail)
        if op == "LIKE" and field.type is not FieldType.STRING:
            detail = f"invalid operator on {field.type.value} field: LIKE"
            raise self.error("INVALID_QUERY_FILTER_OPERATOR", ref.position, detail)
        if op not in {"=", "!=", "IN"} and field.type is FieldType.BOOLEAN:
            detail = f"invalid operator on boolean field: {op}"
            raise self.error("INVALID_QUERY_FILTER_OPERATOR", ref.position, detail)
        if (
            field.type is FieldType.ID
            and isinstance(literal, StringLiteral)
            and len(literal.value) not in {15, 18}
        ):
            detail = f"invalid ID field: {literal.value}"
            raise self.error("INVALID_QUERY_FILTER_OPERATOR", ref.position, detail)

    def compile(self, condition: Condition) -> _Predicate:
        match condition:
            case Junction("AND", operands):
                parts = [self.compile(o) for o in operands]
                return lambda row: all(p(row) for p in parts)
            case Junction(_, operands):
                parts = [self.compile(o) for o in operands]
                return lambda row: any(p(row) for p in parts)
            case Negation(operand):
                inner = self.compile(operand)
                return lambda row: not inner(row)
            case Membership(ref, values, negated):
                field = self.resolve(ref)
                for value in values:
                    self.check_literal(ref, field, value, "IN")
                return lambda row: (
                    negated != any(self.matches(field, row[field.name], "=", v) for v in values)
                )
            case Comparison(ref, op, value):
                field = self.resolve(ref)
                self.check_literal(ref, field, value, op)
                return lambda row: self.matches(field, row[field.name], op, value)
        raise AssertionError(condition)  # pragma: no cover

    def matches(self, field: Field, stored: FieldValue, op: str, literal: Literal) -> bool:
        if isinstance(literal, NullLiteral):
            return (stored is None) == (op == "=")
        if stored is None:
            return op == "!="
        if isinstance(literal, RelativeDate):
            return self.in_range(field, stored, op, literal)
        if isinstance(literal, StringLiteral):
            if op == "LIKE":
                flags = re.IGNORECASE | re.DOTALL
                return re.fullmatch(literal.like, str(stored), flags) is not None
            if field.type is FieldType.ID:
                return _ORDERING[op](id15(str(stored)), id15(literal.value))
            return _ORDERING[op](str(stored).casefold(), literal.value.casefold())
        return _ORDERING[op](stored, literal.value)

    def in_range(self, field: Field, stored: FieldValue, op: str, literal: RelativeDate) -> bool:
        first, after = literal.day_range(self.today)
        start: date | datetime = first
        end: date | datetime = after
        if field.type is FieldType.DATETIME:
            start = datetime.combine(first, time(), UTC)
            end = datetime.combine(after, time(), UTC)
        inside = start <= stored < end  # type: ignore[operator]
        return {
            "=": inside,
            "!=": not inside,
            "<": stored < start,  # type: ignore[operator]
            "<=": stored < end,  # type: ignore[operator]
            ">": stored >= end,  # type: ignore[operator]
            ">=": stored >= start,  # type: ignore[operator]
        }[op]

    def sort(self, rows: list[Row]) -> list[Row]:
        for item in reversed(self.query.order_by):
            field = self.resolve(item.field)
            nulls = [r for r in rows if r[field.name] is None]
            values = [r for r in rows if r[field.name] is not None]
            values.sort(key=_sort_key(field), reverse=item.descending)
            rows = values + nulls if item.nulls_last else nulls + values
        return rows


def _sort_key(field: Field) -> Callable[[Row], Any]:
    def key(row: Row) -> Any:
        value = row[field.name]
        if isinstance(value, str) and field.type is FieldType.STRING:
            return value.casefold()
        return value

    return key


def execute(query: Query, entity: Entity, rows: Sequence[Row], now: datetime) -> list[Row]:
    """Filter, sort and page `rows` (full records of `entity`) as `query` says.

    Returns the full rows; `selected_fields` says which fields to answer with. Raises
    `SoqlError` (`INVALID_FIELD`, …) for fields or literals Salesforce would reject.
    """
    evaluator = _Evaluator(query, entity, now)
    for ref in query.fields:
        evaluator.resolve(ref)
    kept = list(rows)
    if query.where is not None:
        predicate = evaluator.compile(query.where)
        kept = [row for row in kept if predicate(row)]
    kept = evaluator.sort(kept)
    if query.offset:
        kept = kept[query.offset :]
    if query.limit is not None:
        kept = kept[: query.limit]
    return kept


def selected_fields(query: Query, entity: Entity) -> list[Field]:
    """The entity fields the query selects, in order (raises `INVALID_FIELD` on unknowns)."""
    evaluator = _Evaluator(query, entity, datetime.now(UTC))
    return [evaluator.resolve(ref) for ref in query.fields]
