"""Expression shapes shared by several rules (pandas row expressions, arithmetic).

Kept here rather than in a rule module so that AIP401, AIP402, AIP407 and
their successors agree on what "element-wise arithmetic of a row" means.
"""

from __future__ import annotations

import libcst as cst

ARITHMETIC_OPERATORS = (
    cst.Add,
    cst.Subtract,
    cst.Multiply,
    cst.Divide,
    cst.FloorDivide,
    cst.Modulo,
    cst.Power,
)


def row_field(expr: cst.BaseExpression, row: str) -> str | None:
    """`row["a"]` or `row.a` (row being the given name) -> "a"; else None."""
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Name):
        if expr.value.value != row or len(expr.slice) != 1:
            return None
        index = expr.slice[0].slice
        if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
            value = index.value.evaluated_value
            return value if isinstance(value, str) else None
        return None
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
        if expr.value.value == row and not expr.attr.value.startswith("_"):
            return expr.attr.value
    return None


def is_row_arithmetic(
    expr: cst.BaseExpression, row: str, allow_names: frozenset[str] = frozenset()
) -> bool:
    """Pure element-wise arithmetic of the row's fields, numbers and outside names.

    True for `row["a"] * 2 + row.b`, False for anything with calls,
    comparisons, subscripts of other things, attribute methods, or strings.
    At least one row field must be used.
    """
    return _arith(expr, row, allow_names) and _uses_row(expr, row)


def _arith(expr: cst.BaseExpression, row: str, allow_names: frozenset[str]) -> bool:
    if row_field(expr, row) is not None:
        return True
    if isinstance(expr, (cst.Integer, cst.Float)):
        return True
    if isinstance(expr, cst.Name):
        return expr.value in allow_names
    if isinstance(expr, cst.BinaryOperation):
        return isinstance(expr.operator, ARITHMETIC_OPERATORS) and (
            _arith(expr.left, row, allow_names) and _arith(expr.right, row, allow_names)
        )
    if isinstance(expr, cst.UnaryOperation):
        return isinstance(expr.operator, (cst.Minus, cst.Plus)) and _arith(
            expr.expression, row, allow_names
        )
    return False


def _uses_row(expr: cst.BaseExpression, row: str) -> bool:
    if row_field(expr, row) is not None:
        return True
    if isinstance(expr, cst.BinaryOperation):
        return _uses_row(expr.left, row) or _uses_row(expr.right, row)
    if isinstance(expr, cst.UnaryOperation):
        return _uses_row(expr.expression, row)
    return False


def uses_row_value(expr: cst.CSTNode, row: str) -> bool:
    """Does expr read the row at all (any `row[...]`, `row.x` or bare `row`)?"""
    finder = _RowUse(row)
    expr.visit(finder)
    return finder.found


class _RowUse(cst.CSTVisitor):
    def __init__(self, row: str) -> None:
        self.row = row
        self.found = False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.row:
            self.found = True


def has_numeric_work(expr: cst.CSTNode) -> bool:
    """Any arithmetic operator, comparison or augmented assignment inside expr."""
    finder = _NumericWork()
    expr.visit(finder)
    return finder.found


class _NumericWork(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, ARITHMETIC_OPERATORS):
            self.found = True

    def visit_Comparison(self, node: cst.Comparison) -> None:
        self.found = True

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.found = True


class ColumnRewriter(cst.CSTTransformer):
    """`row["a"]` / `row.a` -> `frame["a"]` (frame given as an expression)."""

    def __init__(self, row: str, frame: cst.BaseExpression) -> None:
        self.row = row
        self.frame = frame

    def leave_Subscript(self, original: cst.Subscript, updated: cst.Subscript):
        return self._column(original) or updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute):
        return self._column(original) or updated

    def _column(self, node: cst.BaseExpression):
        name = row_field(node, self.row)
        if name is None:
            return None
        return cst.Subscript(
            value=self.frame,
            slice=[cst.SubscriptElement(cst.Index(cst.SimpleString(_quote(name))))],
        )


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rewrite_row_fields(
    expr: cst.BaseExpression, row: str, frame: cst.BaseExpression
) -> cst.BaseExpression:
    return expr.visit(ColumnRewriter(row, frame))


def is_simple_reference(expr: cst.BaseExpression) -> bool:
    """A Name or attribute chain: safe to evaluate twice (no calls, no subscripts)."""
    while isinstance(expr, cst.Attribute):
        expr = expr.value
    return isinstance(expr, cst.Name)
