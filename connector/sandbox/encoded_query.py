"""ServiceNow encoded queries (`sysparm_query`): parse, evaluate, and find a seek point for paging.

Grammar, as documented (reference/servicenow-api.md §3.3):

- ``^`` ANDs conditions; ``^OR`` ORs a condition with the one before it (``a=1^ORa=2^b=3`` is
  ``(a=1 OR a=2) AND b=3``); ``^NQ`` starts a new group and the groups are ORed.
- ``ORDERBY<field>`` / ``ORDERBYDESC<field>`` may appear anywhere, in any group; they are collected in
  order and a field repeated in a later group (keyset queries repeat the order in every group) counts once.
- A literal caret inside a value is written ``^^``. ``^EQ`` (an end marker some UIs append) is ignored.

Comparison semantics, kept simple on purpose:

- Values are compared as strings, case-sensitively (the reference says values are case-sensitive).
  ``YYYY-MM-DD HH:MM:SS`` date-times therefore order correctly as strings.
- For fields in `numeric_fields` (integer columns such as ``state`` and ``priority``), two values that both
  look like integers compare as integers, so ``priority<10`` and ``stateIN6,7`` behave; anything else
  falls back to string comparison.
- An empty record value never satisfies ``<``, ``<=``, ``>`` or ``>=`` (SQL NULL semantics), so
  ``resolved_at<X`` does not return unresolved incidents.
- ``javascript:`` values cannot be evaluated here; such conditions are marked unsupported and treated like
  an invalid condition (see `EncodedQuery.without`).

Pure module: no I/O, no knowledge of tables beyond what callers pass in.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

Row = Mapping[str, str]
ValueOf = Callable[[Row, str], str]
Predicate = Callable[[Row], bool]

OPERATORS = ("ISNOTEMPTY", "ISEMPTY", "NOTIN", "IN", "STARTSWITH", "LIKE", "!=", "<=", ">=", "=", "<", ">")
DEFAULT_NUMERIC_FIELDS = frozenset({
    "state", "incident_state", "priority", "impact", "urgency", "severity", "hold_reason",
    "reopen_count", "reassignment_count", "sys_mod_count", "actual_value", "normalized_value",
})
_RANGE_OPS = frozenset({"<", "<=", ">", ">="})
_LOWER_BOUND_OPS = frozenset({"=", ">", ">=", "IN"})
_INT = re.compile(r"-?\d+\Z")
# Field names are lower-case identifiers (optionally dot-walked); operators are upper-case or symbols, so
# a lazy field match followed by the first operator that fits splits "stateIN6,7" as state / IN / 6,7.
_OPERATOR_ALTERNATION = "|".join(re.escape(o) for o in OPERATORS)
_CONDITION = re.compile(
    rf"(?P<field>[A-Za-z_][A-Za-z0-9_.]*?)(?P<op>{_OPERATOR_ALTERNATION})(?P<value>.*)\Z", re.DOTALL
)
_CARET = "\x00"  # stands in for an escaped "^^" while splitting


@dataclass(frozen=True)
class Condition:
    """One ``<field><op><value>`` test. `supported` is False when the sandbox cannot evaluate it."""

    field: str
    op: str
    value: str = ""
    supported: bool = True

    @property
    def values(self) -> tuple[str, ...]:
        """The comma-separated list of an IN / NOTIN condition."""
        return tuple(self.value.split(",")) if self.value else ()


@dataclass(frozen=True)
class Term:
    """Conditions joined by ``^OR``: the term holds when any of them does."""

    alternatives: tuple[Condition, ...]


@dataclass(frozen=True)
class Group:
    """Terms joined by ``^``: the group holds when all of them do (an empty group matches everything)."""

    terms: tuple[Term, ...] = ()


@dataclass(frozen=True)
class OrderBy:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class EncodedQuery:
    """A parsed query: groups ORed together (``^NQ``) and the collected ORDERBY list."""

    groups: tuple[Group, ...] = ()
    order_by: tuple[OrderBy, ...] = ()
    unparsed: tuple[str, ...] = field(default=())  # parts that are not conditions at all

    @property
    def has_conditions(self) -> bool:
        return any(g.terms for g in self.groups)

    def conditions(self) -> Iterable[Condition]:
        for group in self.groups:
            for term in group.terms:
                yield from term.alternatives

    def fields(self) -> set[str]:
        """Every field named in a condition or ORDERBY (dot-walked names as written)."""
        return {c.field for c in self.conditions()} | {o.field for o in self.order_by}

    def without(self, is_valid: Callable[[Condition], bool]) -> tuple[EncodedQuery, bool]:
        """Drop conditions `is_valid` rejects, as an instance does with a misspelled field.

        Returns the trimmed query and whether anything was dropped. A term that loses all its alternatives
        disappears, so a group made only of invalid conditions matches every row: the documented pitfall.
        """
        dropped = bool(self.unparsed)
        groups = []
        for group in self.groups:
            terms = []
            for term in group.terms:
                kept = tuple(c for c in term.alternatives if c.supported and is_valid(c))
                dropped = dropped or len(kept) != len(term.alternatives)
                if kept:
                    terms.append(Term(kept))
            groups.append(Group(tuple(terms)))
        return replace(self, groups=tuple(groups), unparsed=()), dropped

    def and_also(self, conditions: Iterable[Condition]) -> EncodedQuery:
        """AND extra conditions into every group (plain ``&field=value`` URL parameters)."""
        extra = tuple(Term((c,)) for c in conditions)
        if not extra:
            return self
        groups = self.groups or (Group(),)
        return replace(self, groups=tuple(Group(g.terms + extra) for g in groups))

    def matcher(self, numeric_fields: Collection[str] = DEFAULT_NUMERIC_FIELDS,
                value_of: ValueOf | None = None) -> Predicate:
        """Compile the conditions into one predicate over a row (a mapping of field name to string).

        The predicate runs once per scanned row (all remaining rows when a count is wanted), so it is
        generated as a single Python expression rather than nested closures: about three times faster.
        Only generated names and operators appear in the source; every field name and value is passed in
        as a constant, so query text never becomes code.
        """
        if not self.has_conditions:
            return _always
        constants: dict[str, Any] = {}
        groups = []
        for group in self.groups:
            terms = [" or ".join(_source(c, c.field in numeric_fields, value_of, constants)
                                 for c in term.alternatives) for term in group.terms]
            groups.append(" and ".join(f"({t})" for t in terms) or "True")
        source = "lambda row: " + " or ".join(f"({g})" for g in groups)
        predicate: Predicate = eval(source, {"__builtins__": {}, **constants})
        return predicate

    def lower_bound(self, numeric_fields: Collection[str] = DEFAULT_NUMERIC_FIELDS) -> str | None:
        """Smallest value of the first ORDERBY field that any matching row can have, or None if unbounded.

        Each group's bound is the tightest of its single-alternative ``=``, ``>``, ``>=`` and ``IN`` terms
        on that field; the query's bound is the loosest over all groups. Rows whose sort key
        (`sort_key`) is below it cannot match, so a server may bisect a sorted index to it and scan from
        there. None when there is no ascending ORDERBY or some group leaves the field unbounded.
        """
        if not self.order_by or self.order_by[0].descending:
            return None
        name = self.order_by[0].field
        numeric = name in numeric_fields
        bounds = [_group_lower_bound(g, name, numeric) for g in self.groups] or [None]
        if any(b is None for b in bounds):
            return None
        return min((b for b in bounds if b is not None), key=lambda v: sort_key(v, numeric))


def parse(query: str) -> EncodedQuery:
    """Parse an encoded query string. Never raises: unparseable parts are kept in `unparsed`."""
    groups: list[list[list[Condition]]] = [[]]
    order: list[OrderBy] = []
    unparsed: list[str] = []
    for raw in query.replace("^^", _CARET).split("^"):
        part = raw.replace(_CARET, "^")
        if not part or part == "EQ":
            continue
        if part.startswith("NQ"):
            groups.append([])
            part = part[2:]
            if not part:
                continue
        if part.startswith("ORDERBY"):
            _add_order(order, part)
        elif part.startswith("OR") and groups[-1]:
            cond = _parse_condition(part[2:])
            if cond is None:
                unparsed.append(part)
            else:
                groups[-1][-1].append(cond)
        else:
            cond = _parse_condition(part)
            if cond is None:
                unparsed.append(part)
            else:
                groups[-1].append([cond])
    # An ORDERBY-only query leaves empty groups; they match everything, like no query at all.
    built = tuple(Group(tuple(Term(tuple(t)) for t in g)) for g in groups if g)
    return EncodedQuery(groups=built or (Group(),), order_by=tuple(order), unparsed=tuple(unparsed))


def sort_key(value: str, numeric: bool) -> tuple[int, int, str]:
    """Total order consistent with the comparisons above; use it to sort rows for ORDERBY.

    Empty values sort first; in numeric fields integers sort numerically and before non-integers.
    """
    if not value:
        return (0, 0, "")
    if numeric and _INT.match(value):
        return (1, int(value), "")
    return (2, 0, value)


def _add_order(order: list[OrderBy], part: str) -> None:
    descending = part.startswith("ORDERBYDESC")
    name = part[len("ORDERBYDESC"):] if descending else part[len("ORDERBY"):]
    if name and all(o.field != name for o in order):
        order.append(OrderBy(name, descending))


def _parse_condition(part: str) -> Condition | None:
    match = _CONDITION.match(part)
    if match is None:
        return None
    value = match["value"]
    # Operators like ON / BETWEEN / DATEPART carry "@"-separated or javascript: values we do not evaluate.
    supported = not value.startswith("javascript:")
    return Condition(match["field"], match["op"], value, supported)


def _group_lower_bound(group: Group, name: str, numeric: bool) -> str | None:
    best: str | None = None
    for term in group.terms:
        if len(term.alternatives) != 1:
            continue
        cond = term.alternatives[0]
        if cond.field != name or cond.op not in _LOWER_BOUND_OPS or not cond.supported:
            continue
        values = cond.values if cond.op == "IN" else (cond.value,)
        # In numeric fields a non-integer bound compares as a string, which the sort order does not follow.
        if not values or (numeric and not all(_INT.match(v) for v in values)):
            continue
        candidate = min(values, key=lambda v: sort_key(v, numeric))
        if best is None or sort_key(candidate, numeric) > sort_key(best, numeric):
            best = candidate
    return best


def _always(row: Row) -> bool:
    return True


def _source(cond: Condition, numeric: bool, value_of: ValueOf | None, constants: dict[str, Any]) -> str:
    """Python source for one condition; `constants` receives the values it refers to by name."""

    def const(value: object) -> str:
        name = f"c{len(constants)}"
        constants[name] = value
        return name

    if value_of is not None and "." in cond.field:
        get = f"{const(value_of)}(row, {const(cond.field)})"
    else:
        get = f"row.get({const(cond.field)}, '')"
    op = cond.op
    if numeric and op not in ("ISEMPTY", "ISNOTEMPTY", "LIKE", "STARTSWITH"):
        return f"{const(_value_test(cond, numeric))}({get})"
    if op == "ISEMPTY":
        return f"{get} == ''"
    if op == "ISNOTEMPTY":
        return f"{get} != ''"
    if op == "LIKE":
        return f"{const(cond.value)} in {get}"
    if op == "STARTSWITH":
        return f"{get}.startswith({const(cond.value)})"
    if op in ("IN", "NOTIN"):
        return f"{get} {'in' if op == 'IN' else 'not in'} {const(frozenset(cond.values))}"
    if op in ("=", "!="):
        return f"{get} {'==' if op == '=' else '!='} {const(cond.value)}"
    # A chained comparison reads the field once: '' != v > c is (v != '') and (v > c).
    return f"'' != {get} {op} {const(cond.value)}"


def _value_test(cond: Condition, numeric: bool) -> Callable[[str], bool]:
    test = _raw_value_test(cond, numeric)
    if not numeric:
        return test
    # Integer columns hold few distinct values ("1".."8"), so remembering answers beats re-parsing them.
    memo: dict[str, bool] = {}

    def remembered(value: str) -> bool:
        answer = memo.get(value)
        if answer is None:
            if len(memo) > 4096:
                memo.clear()
            answer = memo[value] = test(value)
        return answer

    return remembered


def _raw_value_test(cond: Condition, numeric: bool) -> Callable[[str], bool]:
    op, value = cond.op, cond.value
    if op == "ISEMPTY":
        return lambda v: v == ""
    if op == "ISNOTEMPTY":
        return lambda v: v != ""
    if op == "LIKE":
        return lambda v: value in v
    if op == "STARTSWITH":
        return lambda v: v.startswith(value)
    if op in ("IN", "NOTIN"):
        members = _member_test(cond.values, numeric)
        return members if op == "IN" else (lambda v: not members(v))
    if op in ("=", "!="):
        key = _comparable(value, numeric)

        def equal(v: str) -> bool:
            return _comparable(v, numeric) == key if numeric else v == value

        return equal if op == "=" else (lambda v: not equal(v))
    return _range_test(op, value, numeric)


def _member_test(values: tuple[str, ...], numeric: bool) -> Callable[[str], bool]:
    if not numeric:
        strings = frozenset(values)
        return lambda v: v in strings
    keys = frozenset(_comparable(v, True) for v in values)
    return lambda v: _comparable(v, True) in keys


def _range_test(op: str, value: str, numeric: bool) -> Callable[[str], bool]:
    as_int = numeric and bool(_INT.match(value))
    bound: Any = int(value) if as_int else value
    compare = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

    def test(v: str) -> bool:
        if not v:
            return False
        if as_int and _INT.match(v):
            return bool(compare(int(v), bound))
        return bool(compare(v, value))

    if as_int:
        return test
    return lambda v: v != "" and bool(compare(v, value))


def _comparable(value: str, numeric: bool) -> object:
    if numeric and _INT.match(value):
        return int(value)
    return value
