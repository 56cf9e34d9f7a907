"""A pure parser and evaluator for the JQL subset the sandbox Jira understands.

Two steps, both free of any simulator state:

- `parse(text) -> Query` turns JQL into a small syntax tree, failing with the messages Jira itself
  uses ("Error in the JQL Query: Expecting operator but got 'x'. ... (line 1, character 9)").
- `compile_query(query, schema, context) -> CompiledQuery` binds the tree to a `Schema` of
  `FieldSpec`s (how to read a field from a record, how to resolve a literal such as a project
  name) and yields a predicate plus an order key for sorting and keyset paging.

Date literals follow Jira: a bare number is epoch milliseconds (absolute); a string such as
"2024-05-01 10:00" has minute precision and is read in the *searching user's* profile time zone,
which is the documented pitfall that silently shifts naive incremental syncs.
"""

from __future__ import annotations

import calendar
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

__all__ = [
    "EMPTY",
    "MAX_ORDER_BY_FIELDS",
    "CompiledQuery",
    "Context",
    "FieldKind",
    "FieldRef",
    "FieldSpec",
    "JQLError",
    "Query",
    "Schema",
    "SortTerm",
    "compile_query",
    "parse",
    "parse_date_literal",
]

MAX_ORDER_BY_FIELDS = 7  # Jira Cloud's enhanced search limit; Data Center has none
_SYNTAX = "Error in the JQL Query: "
_OPERATOR_HINT = (
    "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'."
)
_DATE_HINT = (
    "Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', "
    "or a period format e.g. '-5d', '4w 2d'."
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc",
                       "was", "changed"})
_SPECIAL = frozenset("()=,!<>~\"'&|[]{}#")
_ESCAPES = {"'": "'", '"': '"', "t": "\t", "n": "\n", "r": "\r", "\\": "\\", " ": " "}


class _Empty:
    """Marker a `FieldSpec.resolve` returns for literals meaning EMPTY (e.g. resolution = Unresolved)."""

    def __repr__(self) -> str:
        return "EMPTY"


EMPTY = _Empty()


class JQLError(ValueError):
    """Invalid JQL; `messages` are the strings Jira puts in `errorMessages`."""

    def __init__(self, *messages: str) -> None:
        super().__init__(" ".join(messages))
        self.messages = list(messages)


# --------------------------------------------------------------------------------------------- syntax


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word | string | op | ( | ) | , | [ | ] | eof
    text: str
    pos: int


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field as written in the query: a name, or `cf[id]`."""

    name: str
    cf_id: int | None = None

    @property
    def display(self) -> str:
        return f"cf[{self.cf_id}]" if self.cf_id is not None else self.name


@dataclass(frozen=True, slots=True)
class Operand:
    kind: Literal["value", "empty", "function", "list"]
    text: str = ""
    quoted: bool = False
    args: tuple[str, ...] = ()
    items: tuple[Operand, ...] = ()


@dataclass(frozen=True, slots=True)
class Clause:
    field: FieldRef
    op: str  # '=', '!=', '<', '<=', '>', '>=', '~', '!~', 'in', 'not in', 'is', 'is not'
    operand: Operand


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


Node = Clause | Not | And | Or


@dataclass(frozen=True, slots=True)
class SortTerm:
    field: FieldRef
    descending: bool | None  # None: the field's default direction (ascending here)


@dataclass(frozen=True, slots=True)
class Query:
    where: Node | None
    order_by: tuple[SortTerm, ...]

    @property
    def bounded(self) -> bool:
        """Jira Cloud's enhanced search rejects queries without a search restriction."""
        return self.where is not None


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f" (line {line}, character {col})"


def _tokenize(text: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),[]":
            out.append(_Token(c, c, i))
            i += 1
        elif c in "\"'":
            token, i = _read_string(text, i)
            out.append(token)
        elif text[i:i + 2] in ("!=", "!~", ">=", "<=", "&&", "||"):
            out.append(_Token("op", text[i:i + 2], i))
            i += 2
        elif c in "=<>~!&|":
            out.append(_Token("op", c, i))
            i += 1
        elif c in "{}#":
            raise JQLError(f"{_SYNTAX}The character '{c}' is a reserved JQL character. You must enclose it "
                           f"in a string or use the escape '\\u{ord(c):04x}' instead.{_where(text, i)}")
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            out.append(_Token("word", text[i:j], i))
            i = j
    out.append(_Token("eof", "", n))
    return out


def _read_string(text: str, start: int) -> tuple[_Token, int]:
    quote, i = text[start], start + 1
    chars: list[str] = []
    while i < len(text):
        c = text[i]
        if c == quote:
            return _Token("string", "".join(chars), start), i + 1
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2:i + 6]):
                chars.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise JQLError(f"{_SYNTAX}'\\{nxt}' is an illegal JQL escape sequence.{_where(text, i)}")
            chars.append(_ESCAPES[nxt])
            i += 2
            continue
        chars.append(" " if c in "\r\n" else c)
        i += 1
    if not chars:
        raise JQLError(f"{_SYNTAX}The quoted string has not been completed.{_where(text, start)}")
    content = "".join(chars)
    raise JQLError(f"{_SYNTAX}The quoted string '{content}' has not been completed.{_where(text, start)}")


class _Parser:
    """Recursive descent over the token list; precedence NOT > AND > OR, as in Jira."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # -- helpers
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.lower() in words

    def fail(self, message: str, tok: _Token | None = None) -> JQLError:
        return JQLError(_SYNTAX + message + (_where(self.text, tok.pos) if tok is not None else ""))

    # -- grammar
    def query(self) -> Query:
        where: Node | None = None
        if self.peek().kind != "eof" and not self.is_word("order"):
            where = self.or_expr()
        order: tuple[SortTerm, ...] = ()
        if self.is_word("order"):
            order = self.order_by()
        tok = self.peek()
        if tok.kind != "eof":
            raise self.fail(f"Expecting either 'OR' or 'AND' but got '{tok.text}'.", tok)
        return Query(where, order)

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while self.is_word("or") or (self.peek().kind == "op" and self.peek().text in ("|", "||")):
            self.take()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self) -> Node:
        children = [self.not_expr()]
        while self.is_word("and") or (self.peek().kind == "op" and self.peek().text in ("&", "&&")):
            self.take()
            children.append(self.not_expr())
        return children[0] if len(children) == 1 else And(tuple(children))

    def not_expr(self) -> Node:
        tok = self.peek()
        if self.is_word("not") or (tok.kind == "op" and tok.text == "!"):
            self.take()
            return Not(self.not_expr())
        if tok.kind == "(":
            self.take()
            node = self.or_expr()
            end = self.peek()
            if end.kind == "eof":
                raise self.fail("Expecting ')' before the end of the query.")
            if end.kind != ")":
                raise self.fail(f"Expecting either 'OR' or 'AND' but got '{end.text}'.", end)
            self.take()
            return node
        return self.clause()

    def clause(self) -> Clause:
        ref = self.field_ref()
        op = self.operator()
        return Clause(ref, op, self.operand())

    def field_ref(self) -> FieldRef:
        tok = self.peek()
        if tok.kind == "eof":
            raise self.fail("Expecting a field name at the end of the query.")
        if tok.kind == "string":
            if not tok.text:
                raise JQLError("A field name cannot be empty." + _where(self.text, tok.pos))
            self.take()
            return FieldRef(tok.text)
        if tok.kind == "word" and tok.text.lower() == "cf":
            return self.custom_field_ref()
        if tok.kind == "word" and tok.text.lower() not in _KEYWORDS:
            self.take()
            return FieldRef(tok.text)
        if tok.kind == "[":
            raise self.fail("Expecting a field name but got '['. Did you mean 'cf['?", tok)
        raise self.fail(f"Expecting a field name but got '{tok.text}'. You must surround '{tok.text}' in "
                        "quotation marks to use it as a field name.", tok)

    def custom_field_ref(self) -> FieldRef:
        self.take()
        bracket = self.peek()
        if bracket.kind != "[":
            if bracket.kind == "eof":
                raise self.fail("Expecting '[' before the end of the query.")
            raise self.fail(f"Expecting '[' but got '{bracket.text}'.", bracket)
        self.take()
        num = self.peek()
        if num.kind == "eof":
            raise self.fail("Expecting a custom field id (a positive number) before the end of the query.")
        if num.kind != "word" or not num.text.isdigit():
            raise self.fail(f"Expecting a custom field id (a positive number) but got '{num.text}'.", num)
        self.take()
        close = self.peek()
        if close.kind == "eof":
            raise self.fail("Expecting ']' before the end of the query.")
        if close.kind != "]":
            raise self.fail(f"Expecting ']' but got '{close.text}'.", close)
        self.take()
        return FieldRef(f"cf[{int(num.text)}]", int(num.text))

    def operator(self) -> str:
        tok = self.peek()
        if tok.kind == "eof":
            raise self.fail(f"Expecting operator before the end of the query. {_OPERATOR_HINT}")
        if tok.kind == "op" and tok.text in ("=", "!=", "<", ">", "<=", ">=", "~", "!~"):
            self.take()
            return tok.text
        word = tok.text.lower() if tok.kind == "word" else ""
        if word == "in":
            self.take()
            return "in"
        if word == "not":
            self.take()
            nxt = self.peek()
            if nxt.kind == "eof":
                raise self.fail("Expecting 'IN' before the end of the query.")
            if not self.is_word("in"):
                raise self.fail(f"Expecting 'IN' but got '{nxt.text}'.", nxt)
            self.take()
            return "not in"
        if word == "is":
            self.take()
            if self.is_word("not"):
                self.take()
                return "is not"
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text == "!":
                raise self.fail("Expecting 'NOT' but got '!'.", nxt)
            return "is"
        if word in ("was", "changed"):
            # History search needs a changelog index; the sandbox does not keep one.
            raise JQLError(f"The sandbox Jira does not support the '{word.upper()}' operator "
                           "(history search).")
        raise self.fail(f"Expecting operator but got '{tok.text}'. {_OPERATOR_HINT}", tok)

    def operand(self) -> Operand:
        tok = self.peek()
        if tok.kind == "eof":
            raise self.fail("Expecting either a value, list or function before the end of the query.")
        if tok.kind == "(":
            return self.operand_list()
        if tok.kind == "string" or (tok.kind == "word" and tok.text.lower() not in _KEYWORDS):
            self.take()
            if self.peek().kind == "(":
                return self.function(tok)
            return Operand("value", tok.text, quoted=tok.kind == "string")
        if tok.kind == "word" and tok.text.lower() in ("empty", "null"):
            self.take()
            return Operand("empty")
        raise self.fail(f"Expecting either a value, list or function but got '{tok.text}'. You must surround "
                        f"'{tok.text}' in quotation marks to use it as a value.", tok)

    def operand_list(self) -> Operand:
        self.take()
        items = [self.operand()]
        while True:
            tok = self.peek()
            if tok.kind == "eof":
                raise self.fail("Expecting ')' before the end of the query.")
            if tok.kind == ")":
                self.take()
                return Operand("list", items=tuple(items))
            if tok.kind != ",":
                raise self.fail(f"Expecting ')' but got '{tok.text}'.", tok)
            self.take()
            items.append(self.operand())

    def function(self, name: _Token) -> Operand:
        if not name.text:
            raise JQLError("A function name cannot be empty." + _where(self.text, name.pos))
        self.take()  # '('
        args: list[str] = []
        if self.peek().kind == ")":
            self.take()
            return Operand("function", name.text, args=())
        while True:
            tok = self.peek()
            if tok.kind == "eof":
                raise self.fail("Expecting a function argument at the end of the query." if args
                                else "Expecting ')' before the end of the query.")
            if tok.kind == ")" and args:
                raise JQLError("Function argument must be specified." + _where(self.text, tok.pos))
            if tok.kind not in ("word", "string"):
                raise self.fail(f"Expecting a function argument but got '{tok.text}'. You must surround "
                                f"'{tok.text}' in quotation marks to use it as an argument.", tok)
            args.append(self.take().text)
            sep = self.peek()
            if sep.kind == ")":
                self.take()
                return Operand("function", name.text, args=tuple(args))
            if sep.kind == "eof":
                raise self.fail("Expecting ')' before the end of the query.")
            if sep.kind != ",":
                raise self.fail(f"Expecting ')' or ',' but got '{sep.text}'.", sep)
            self.take()

    def order_by(self) -> tuple[SortTerm, ...]:
        self.take()  # 'order'
        by = self.peek()
        if not self.is_word("by"):
            if by.kind == "eof":
                raise self.fail("Expecting 'by' before the end of the query.")
            raise self.fail(f"Expecting 'by' but got '{by.text}'.", by)
        self.take()
        terms: list[SortTerm] = []
        while True:
            ref = self.field_ref()
            descending: bool | None = None
            tok = self.peek()
            if self.is_word("asc", "desc"):
                descending = self.take().text.lower() == "desc"
                tok = self.peek()
                if tok.kind not in ("eof", ","):
                    raise self.fail(f"Expecting ',' but got '{tok.text}'.", tok)
            elif tok.kind not in ("eof", ","):
                raise self.fail(f"Expecting either 'ASC' or 'DESC' but got '{tok.text}'.", tok)
            terms.append(SortTerm(ref, descending))
            if tok.kind != ",":
                return tuple(terms)
            self.take()


def parse(text: str) -> Query:
    """Parse JQL into a `Query`.

    Raises:
        JQLError: with Jira's wording for syntax errors.
    """
    return _Parser(text).query()


# --------------------------------------------------------------------------------------------- schema

FieldKind = Literal["date", "key", "issueref", "project", "option", "labels", "text", "number", "user"]

_OPS: dict[str, frozenset[str]] = {
    "date": frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"}),
    "number": frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"}),
    "key": frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "not in"}),
    "issueref": frozenset({"=", "!=", "in", "not in"}),
    "project": frozenset({"=", "!=", "in", "not in", "is", "is not"}),
    "option": frozenset({"=", "!=", "in", "not in", "is", "is not"}),
    "user": frozenset({"=", "!=", "in", "not in", "is", "is not"}),
    "labels": frozenset({"=", "!=", "in", "not in", "is", "is not"}),
    "text": frozenset({"~", "!~", "is", "is not"}),
}


@dataclass(frozen=True)
class FieldSpec:
    """How JQL sees one field.

    `get(record)` returns the searchable value, normalised per kind:
    date → epoch ms | None; key → (PROJECT, number); issueref (another issue this one points at, such
    as its parent) → (PROJECT, number) | None; project/option/user → a canonical value | None
    (the form `resolve` gives literals); labels → tuple of canonical values (lower-case strings when
    there is no `resolve`); text → lower-case string | None; number → float | None.
    `resolve(literal)` maps a literal to that form, to `EMPTY`, or to None when the value does not
    exist (Jira then rejects the query). "labels" is any multi-valued field (labels, components).
    `sort` defaults to `get`.
    """

    id: str
    names: tuple[str, ...]
    kind: FieldKind
    get: Callable[[Any], Any]
    resolve: Callable[[str], Any] | None = None
    sort: Callable[[Any], Any] | None = None
    sortable: bool = True
    custom_id: int | None = None
    numeric_sort: bool | None = None  # sort values are numbers (default: date and number kinds)


class Schema:
    """The searchable fields; names match case-insensitively, custom fields also as `cf[id]`."""

    def __init__(self, fields: Iterable[FieldSpec]) -> None:
        self.fields = list(fields)
        self._by_name: dict[str, FieldSpec] = {}
        self._by_cf: dict[int, FieldSpec] = {}
        for spec in self.fields:
            for name in spec.names:
                self._by_name.setdefault(name.lower(), spec)
            if spec.custom_id is not None:
                self._by_cf[spec.custom_id] = spec

    def lookup(self, ref: FieldRef) -> FieldSpec:
        spec = self._by_cf.get(ref.cf_id) if ref.cf_id is not None else self._by_name.get(ref.name.lower())
        if spec is None:
            raise JQLError(f"Field '{ref.display}' does not exist or you do not have permission to view it.")
        return spec


@dataclass(frozen=True)
class Context:
    """Who searches and when: string dates are read in `tz`, relative dates from `now`."""

    tz: tzinfo
    now: datetime
    current_user: str | None = None


# --------------------------------------------------------------------------------------------- dates

_ABS_DATE = re.compile(r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?")
_REL_DATE = re.compile(r"([-+]?)\s*((?:\d+\s*[wdhm]\s*)+)")
_REL_PART = re.compile(r"(\d+)\s*([wdhm])")
_UNIT_MS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000}
_DATE_FUNCTIONS = frozenset({"now", "startofday", "endofday", "startofmonth", "endofmonth",
                             "startofyear", "endofyear"})


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def parse_date_literal(text: str, context: Context, field_name: str) -> tuple[int, bool]:
    """Return (epoch ms, relative?) for a JQL date value.

    A plain integer is absolute epoch milliseconds; "yyyy-MM-dd[ HH:mm]" (or with slashes) is read
    in the searching user's time zone at minute precision; "-5d", "4w 2d" are relative to now.

    Raises:
        JQLError: "Date value '...' for field '...' is invalid. ..."
    """
    value = text.strip()
    if re.fullmatch(r"-?\d+", value):
        return int(value), False
    rel = _REL_DATE.fullmatch(value)
    if rel:
        total = sum(int(n) * _UNIT_MS[u] for n, u in _REL_PART.findall(rel.group(2)))
        sign = -1 if rel.group(1) == "-" else 1
        return _epoch_ms(context.now) + sign * total, True
    match = _ABS_DATE.fullmatch(value)
    if match:
        y, _, mo, d, hh, mm = match.groups()
        try:
            local = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), tzinfo=context.tz)
        except ValueError:
            pass
        else:
            return _epoch_ms(local), False
    raise JQLError(f"Date value '{text}' for field '{field_name}' is invalid. {_DATE_HINT}")


def _shift(moment: datetime, amount: int, unit: str) -> datetime:
    if unit in ("M", "y"):
        months = moment.month - 1 + amount * (12 if unit == "y" else 1)
        year, month = moment.year + months // 12, months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day)
    return moment + timedelta(milliseconds=amount * {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000,
                                                      "m": 60_000}[unit])


def _date_function(name: str, args: tuple[str, ...], context: Context) -> int:
    low = name.lower()
    if low == "now":
        if args:
            raise JQLError(f"Function 'now' expected '0' arguments but received '{len(args)}'.")
        return _epoch_ms(context.now)
    local = context.now.astimezone(context.tz)
    period = low.removeprefix("start").removeprefix("end").removeprefix("of")
    default_unit = {"day": "d", "month": "M", "year": "y"}[period]
    amount, unit = 0, default_unit
    if args:
        inc = re.fullmatch(r"([-+]?\d+)([yMwdhm]?)", args[0].strip())
        if inc is None or len(args) > 1:
            raise JQLError(f"Duration for function '{name}' should have the format (+/-)n(yMwdm), "
                           "e.g -1M for 1 month earlier.")
        amount, unit = int(inc.group(1)), inc.group(2) or default_unit
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period in ("month", "year"):
        start = start.replace(day=1)
    if period == "year":
        start = start.replace(month=1)
    if low.startswith("end"):
        start = _shift(start, 1, default_unit) - timedelta(milliseconds=1)
    return _epoch_ms(_shift(start, amount, unit))


# --------------------------------------------------------------------------------------------- compile

Predicate = Callable[[Any], bool]


class _Rev:
    """Reverses string order inside a sort key (DESC on a text column)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Rev) -> bool:
        return bool(self.v > other.v)

    def __gt__(self, other: _Rev) -> bool:
        return bool(self.v < other.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


def _negate(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_negate(v) for v in value)
    if isinstance(value, int | float):
        return -value
    return _Rev(value)


def _numeric_sort(spec: FieldSpec) -> bool:
    return spec.numeric_sort if spec.numeric_sort is not None else spec.kind in ("date", "number")


def _term_norm(spec: FieldSpec, descending: bool) -> Callable[[Any], Any]:
    """Map a raw ORDER BY value to its comparable form; empty sorts last ascending, first descending.

    Numbers stay flat (infinity stands in for empty) so the common date sorts compare natively;
    other values are tagged tuples so empty never meets a string in a comparison.
    """
    if _numeric_sort(spec):
        if descending:
            return lambda v: -math.inf if v is None else -v
        return lambda v: math.inf if v is None else v
    if spec.kind == "key":  # an issue always has a key
        return (lambda v: _negate(v)) if descending else (lambda v: v)
    if descending:
        return lambda v: (0,) if v is None else (1, _negate(v))
    return lambda v: (1,) if v is None else (0, v)


def _term_key(spec: FieldSpec, descending: bool) -> Callable[[Any], Any]:
    """`_term_norm` fused with the getter: sorting 100k records calls this once per record."""
    get = spec.sort or spec.get
    if _numeric_sort(spec):
        if descending:
            return lambda r: -math.inf if (v := get(r)) is None else -v
        return lambda r: math.inf if (v := get(r)) is None else v
    if spec.kind == "key":
        return (lambda r: _negate(get(r))) if descending else get
    if descending:
        return lambda r: (0,) if (v := get(r)) is None else (1, _negate(v))
    return lambda r: (1,) if (v := get(r)) is None else (0, v)


@dataclass(frozen=True)
class CompiledQuery:
    """A query bound to a schema: `matches(record)`, and an order for sorting and keyset paging."""

    query: Query
    matches: Predicate
    order: tuple[tuple[FieldSpec, bool], ...]
    fields: frozenset[str]
    uses_now: bool = False

    def sort_values(self, record: Any) -> tuple[Any, ...]:
        """The raw ORDER BY values of a record (JSON-friendly; used in page tokens)."""
        return tuple((spec.sort or spec.get)(record) for spec, _ in self.order)

    def key_from_values(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """The comparable key for raw ORDER BY values (equal to `sort_key` of the record they came from)."""
        return tuple(_term_norm(spec, desc)(v) for v, (spec, desc) in zip(values, self.order, strict=True))

    def sort_key(self, record: Any) -> tuple[Any, ...]:
        return self.key_from_values(self.sort_values(record))

    def term_keys(self) -> list[Callable[[Any], Any]]:
        """One key function per ORDER BY term, for stable multi-pass sorting (least significant first)."""
        return [_term_key(spec, desc) for spec, desc in self.order]

    def key_function(self, tiebreak: Callable[[Any], Any] | None = None) -> Callable[[Any], tuple[Any, ...]]:
        """A fast `sort_key` (plus an optional last `tiebreak` component) for sorting many records."""
        terms = self.term_keys()
        if tiebreak is not None:
            terms.append(tiebreak)
        if len(terms) == 1:
            (a,) = terms
            return lambda r: (a(r),)
        if len(terms) == 2:
            a, b = terms
            return lambda r: (a(r), b(r))
        if len(terms) == 3:
            a, b, c = terms
            return lambda r: (a(r), b(r), c(r))
        return lambda r: tuple(t(r) for t in terms)


@dataclass
class _Compiler:
    schema: Schema
    context: Context
    errors: list[str] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)
    uses_now: bool = False

    def node(self, node: Node) -> Predicate:
        if isinstance(node, And):
            return _all_of([self.node(c) for c in node.children])
        if isinstance(node, Or):
            return _any_of([self.node(c) for c in node.children])
        if isinstance(node, Not):
            inner = self.node(node.child)
            return lambda r: not inner(r)
        return self.clause(node)

    def clause(self, clause: Clause) -> Predicate:
        name = clause.field.display
        try:
            spec = self.schema.lookup(clause.field)
        except JQLError as exc:
            self.errors.extend(exc.messages)
            return _never
        self.fields.add(spec.id)
        op = clause.op
        if op not in _OPS[spec.kind]:
            self.errors.append(f"The operator '{_show_op(op)}' is not supported by the '{name}' field.")
            return _never
        try:
            values = self.values(spec, clause.operand, name)
        except JQLError as exc:
            self.errors.extend(exc.messages)
            return _never
        return self.predicate(spec, op, values, clause.operand, name)

    def values(self, spec: FieldSpec, operand: Operand, name: str) -> list[Any]:
        if operand.kind == "empty":
            return [None]
        if operand.kind == "list":
            return [v for item in operand.items for v in self.values(spec, item, name)]
        if operand.kind == "function":
            return [self.function(spec, operand, name)]
        return [self.literal(spec, operand.text, name)]

    def function(self, spec: FieldSpec, operand: Operand, name: str) -> Any:
        low = operand.text.lower()
        if low == "currentuser":
            if spec.kind != "user" or self.context.current_user is None:
                raise JQLError("A value provided by the function 'currentUser' is invalid for the field "
                               f"'{name}'.")
            return self.context.current_user
        if low in _DATE_FUNCTIONS:
            if spec.kind != "date":
                raise JQLError(f"A value provided by the function '{operand.text}' is invalid for the field "
                               f"'{name}'.")
            self.uses_now = True
            return _date_function(operand.text, operand.args, self.context)
        raise JQLError(f"Unable to find JQL function '{operand.text}({', '.join(operand.args)})'.")

    def literal(self, spec: FieldSpec, text: str, name: str) -> Any:
        kind = spec.kind
        if kind == "date":
            ms, relative = parse_date_literal(text, self.context, name)
            self.uses_now |= relative
            return ms
        if kind == "number":
            try:
                return float(text)
            except ValueError:
                raise JQLError(f"The value '{text}' is not a valid number for the field '{name}'.") from None
        if kind == "text" or (kind == "labels" and spec.resolve is None):
            return text.lower()
        resolved = spec.resolve(text) if spec.resolve is not None else text.lower()
        if resolved is EMPTY:
            return None
        if resolved is None:
            if kind in ("key", "issueref"):
                raise JQLError(f"An issue with key '{text}' does not exist for field '{name}'.")
            raise JQLError(f"The value '{text}' does not exist for the field '{name}'.")
        return resolved

    def predicate(self, spec: FieldSpec, op: str, values: list[Any], operand: Operand,
                  name: str) -> Predicate:
        get = spec.get
        if op in ("is", "is not"):
            if operand.kind != "empty":
                self.errors.append(f"The operator '{_show_op(op)}' only supports searching for EMPTY values "
                                   f"for the field '{name}'.")
                return _never
            return _is_empty(get, spec.kind, negate=op == "is not")
        if op in ("in", "not in"):
            return _membership(get, spec.kind, values, negate=op == "not in")
        if operand.kind == "list":
            self.errors.append(f"The operator '{op}' does not support the list operand for the field "
                               f"'{name}'.")
            return _never
        value = values[0]
        if spec.kind == "text":
            return _contains(get, value, negate=op == "!~")
        if value is None:
            if op in ("=", "!="):
                return _is_empty(get, spec.kind, negate=op == "!=")
            self.errors.append(f"The operator '{op}' does not support searching for EMPTY values.")
            return _never
        if spec.kind == "labels":
            if op == "=":
                return lambda r: value in get(r)
            return lambda r: bool(get(r)) and value not in get(r)
        if spec.kind == "key" and op not in ("=", "!="):
            return _key_compare(get, op, value)
        return _compare(get, op, value)

    def order(self, terms: tuple[SortTerm, ...]) -> tuple[tuple[FieldSpec, bool], ...]:
        out: list[tuple[FieldSpec, bool]] = []
        for term in terms:
            try:
                spec = self.schema.lookup(term.field)
            except JQLError as exc:
                self.errors.extend(exc.messages)
                continue
            if not spec.sortable:
                self.errors.append(f"Field '{term.field.display}' does not support sorting.")
                continue
            self.fields.add(spec.id)
            out.append((spec, bool(term.descending)))
        return tuple(out)


def _show_op(op: str) -> str:
    return op.upper() if op[0].isalpha() else op


def _never(_record: Any) -> bool:
    return False


def _always(_record: Any) -> bool:
    return True


def _all_of(preds: list[Predicate]) -> Predicate:
    # Nested two-way closures: a generator over the list costs several times more per record.
    if len(preds) == 1:
        return preds[0]
    a, b = preds[0], _all_of(preds[1:])
    return lambda r: a(r) and b(r)


def _any_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    a, b = preds[0], _any_of(preds[1:])
    return lambda r: a(r) or b(r)


def _is_empty(get: Callable[[Any], Any], kind: str, *, negate: bool) -> Predicate:
    if kind == "labels":
        return (lambda r: bool(get(r))) if negate else (lambda r: not get(r))
    return (lambda r: get(r) is not None) if negate else (lambda r: get(r) is None)


def _membership(get: Callable[[Any], Any], kind: str, values: list[Any], *, negate: bool) -> Predicate:
    wanted = frozenset(v for v in values if v is not None)
    with_empty = None in values
    if kind == "labels":
        if negate:
            # NOT IN never matches issues without labels unless EMPTY is excluded too (Jira semantics).
            return lambda r: bool(get(r)) and wanted.isdisjoint(get(r))
        return lambda r: not wanted.isdisjoint(get(r)) or (with_empty and not get(r))
    if negate:
        return lambda r: (x := get(r)) is not None and x not in wanted
    if with_empty:
        return lambda r: (x := get(r)) is None or x in wanted
    return lambda r: get(r) in wanted


def _contains(get: Callable[[Any], Any], phrase: str, *, negate: bool) -> Predicate:
    words = tuple(re.findall(r"\w+", phrase.lower()))

    def hit(record: Any) -> bool:
        text = get(record)
        if text is None:
            return False
        found = set(re.findall(r"\w+", text))
        return all(w in found for w in words)

    if negate:
        return lambda r: get(r) is not None and not hit(r)
    return hit


def _compare(get: Callable[[Any], Any], op: str, value: Any) -> Predicate:
    # Empty values never satisfy a comparison, including '!=' (Jira semantics).
    if op == "=":
        return lambda r: get(r) == value
    if op == "!=":
        return lambda r: (x := get(r)) is not None and x != value
    if op == ">=":
        return lambda r: (x := get(r)) is not None and x >= value
    if op == ">":
        return lambda r: (x := get(r)) is not None and x > value
    if op == "<=":
        return lambda r: (x := get(r)) is not None and x <= value
    return lambda r: (x := get(r)) is not None and x < value


def _key_compare(get: Callable[[Any], Any], op: str, value: tuple[str, int]) -> Predicate:
    # Relational operators on keys compare issue numbers within the key's project.
    project, number = value
    cmp = _RELATIONAL[op]
    return lambda r: (x := get(r))[0] == project and cmp(x[1], number)


_RELATIONAL: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def compile_query(query: Query, schema: Schema, context: Context) -> CompiledQuery:
    """Bind a parsed query to a schema.

    Raises:
        JQLError: every unknown field, unsupported operator and unknown value at once, as Jira does.
    """
    compiler = _Compiler(schema, context)
    matches = compiler.node(query.where) if query.where is not None else _always
    order = compiler.order(query.order_by)
    if compiler.errors:
        raise JQLError(*compiler.errors)
    return CompiledQuery(query, matches, order, frozenset(compiler.fields), compiler.uses_now)
