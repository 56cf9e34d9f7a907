"""A small, safe expression language for rules in the config (e.g. which answers need a follow-up).

    nps <= 6 or csat <= 2 or ces <= 3
    band == "dissatisfied" and (sentiment == "negative" or "not_fixed" in themes)

The text is parsed by Python's own parser (`ast`) and then walked here, allowing only comparisons
(< <= > >= == != in, not in), and, or, not, parentheses, names of known values, and literal numbers,
text, true/false/null and lists. Nothing is ever passed to `eval`: there are no calls, attributes,
subscripts or arithmetic to abuse. Comparisons are null-safe the way SQL's are: `nps <= 6` is false
for a CSAT answer, whose `nps` is null, instead of an error. Names and obvious type mix-ups are
reported when the config is loaded, not at run time.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ValueType = Literal["number", "text", "list", "bool"]
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
    ast.In: lambda a, b: b is not None and a in b, ast.NotIn: lambda a, b: b is not None and a not in b,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_WORDS = {"true": True, "false": False, "null": None}


class ExpressionError(ValueError):
    """The expression is not valid; the message says where and why."""


@dataclass(frozen=True)
class Expression:
    source: str
    _tree: ast.expr

    def __call__(self, values: Mapping[str, Any]) -> bool:
        return bool(_evaluate(self._tree, values))


def compile_expression(source: str, symbols: Mapping[str, ValueType]) -> Expression:
    """Parse and check `source` against the names it may use (and their types)."""
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"cannot read the expression at column {exc.offset or 0}: {exc.msg}") from None
    _check(tree, symbols)
    return Expression(source, tree)


def _check(node: ast.expr, symbols: Mapping[str, ValueType]) -> ValueType | None:
    """The node's type (None for null or unknown); raises for anything outside the language."""
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, symbols)
        return "bool"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, symbols)
        return "bool"
    if isinstance(node, ast.Compare):
        left = _check(node.left, symbols)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _check(right_node, symbols)
            if type(op) not in _COMPARE:
                raise ExpressionError(f"operator {type(op).__name__} is not allowed")
            if isinstance(op, _ORDERING) and {left, right} == {"number", "text"}:
                raise ExpressionError(f"`{ast.unparse(node)}` compares a number with text")
            if isinstance(op, ast.In | ast.NotIn) and right not in ("list", None):
                raise ExpressionError(f"`{ast.unparse(node)}`: `in` needs a list on its right")
            left = right
        return "bool"
    if isinstance(node, ast.Name):
        if node.id in _WORDS:
            return _type_of(_WORDS[node.id])
        if node.id not in symbols:
            raise ExpressionError(f"unknown name `{node.id}`; known: {', '.join(sorted(symbols))}")
        return symbols[node.id]
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, bool | int | float | str)):
        return _type_of(node.value)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        for element in node.elts:
            if not isinstance(element, ast.Constant):
                raise ExpressionError(f"`{ast.unparse(node)}`: a list holds literal values only")
        return "list"
    raise ExpressionError(f"`{ast.unparse(node)}` is not allowed here: use comparisons, and, or, not, "
                          "names, numbers, \"text\" and [lists]")


def _type_of(value: Any) -> ValueType | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "text"


def _evaluate(node: ast.expr, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_evaluate(v, values) for v in node.values)
        return any(_evaluate(v, values) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return not _evaluate(node.operand, values)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, values)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(right_node, values)
            if isinstance(op, _ORDERING) and (left is None or right is None):
                return False  # null-safe: a value that is not there is not "below 6"
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        return _WORDS[node.id] if node.id in _WORDS else values.get(node.id)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [_evaluate(e, values) for e in node.elts]
    raise ExpressionError(f"cannot evaluate `{ast.unparse(node)}`")  # unreachable after _check
