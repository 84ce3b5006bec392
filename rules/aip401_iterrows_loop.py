"""AIP401 pandas-iterrows-loop."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.patterns import (
    is_row_arithmetic,
    is_simple_reference,
    rewrite_row_fields,
    row_field,
    row_fields_only,
)
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import call_name, dotted_name, names_in, positional_args

# Calls that keep a per-row computation vectorizable (numpy/math ufunc equivalents).
_VECTORIZABLE_CALLEES = frozenset(
    [
        "abs",
        "round",
        "min",
        "max",
        "float",
        "int",
        "bool",
        "sqrt",
        "exp",
        "log",
        "log1p",
        "log2",
        "log10",
        "sin",
        "cos",
        "tan",
        "tanh",
        "floor",
        "ceil",
        "clip",
        "where",
        "maximum",
        "minimum",
        "power",
        "square",
        "append",
        "isnan",
    ]
)


class IterrowsLoop(Rule):
    """
    ## What it does
    Finds `DataFrame.iterrows()` / `itertuples()` loops that compute per-row
    numeric values from the row's own columns.

    ## Why is this bad
    `iterrows()` builds a new `Series` for every row and each `row["a"]` is an
    indexing call: the loop runs at Python speed, row by row. The same
    arithmetic on whole columns runs in compiled code. The verifier measured
    the loop-with-`.loc`-write shape at about 900x slower than the vectorized
    column at 1,000 rows and about 8,600x at 10,000 rows on a 2-core CPU
    (`../shared/notes/speedups-cpu.md`, pair 1); `itertuples()` is faster
    than `iterrows()` but still about 45x slower than vectorized code.

    Loops whose per-row work has no vectorized equivalent (parsing JSON,
    fuzzy string matching, calling a model or an API per row) are not reported.

    ## Example
    ```python
    for i, row in df.iterrows():
        df.loc[i, "total"] = row["price"] * row["qty"]
    ```

    ## Use instead
    ```python
    df["total"] = df["price"] * df["qty"]
    ```

    ## Fix safety
    Safe, and only offered for the shape above: a loop over `df.iterrows()`
    whose body is a single `df.loc[i, "c"] =` / `df.at[i, "c"] =` write of
    arithmetic on the row's own columns. Two differences are possible and
    documented: a new column written cell by cell starts as float (NaN-filled)
    while the vectorized column keeps the integer dtype of integer inputs, and
    with a duplicated index `loc[i, c]` writes every row sharing the label.

    ## References
    - pandas user guide, "Iteration": https://pandas.pydata.org/docs/user_guide/basics.html#iteration
    - ruff PERF/PD rules do not report row loops; pandas-vet has no such rule.
    """

    code = "AIP401"
    name = "pandas-iterrows-loop"
    message = (
        "`{method}()` loop computes per-row values; use vectorized column operations "
        '(e.g. `df["c"] = df["a"] * df["b"]`) instead of a Python row loop'
    )
    fix_kind = "sometimes"
    triggers = (b"iterrows", b"itertuples")

    def visit_For(self, node: cst.For) -> None:
        self._check(node.iter, node.target, node.body, node)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        parent = self.ctx.parent()
        if isinstance(parent, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            self._check(node.iter, node.target, parent.elt, None)
        elif isinstance(parent, cst.DictComp):
            self._check(node.iter, node.target, parent.value, None)

    def _check(self, iterable, target, body, loop: cst.For | None) -> None:
        call = _row_iteration_call(iterable)
        if call is None or not self.ctx.is_maybe_dataframe(call.func.value):
            return
        method = call.func.attr.value
        row = _row_name(target, method)
        if row is None or not _computes_row_values(body, row):
            return
        fix = _vectorize_fix(loop, call, row) if loop is not None else None
        self.report(call, self.message.format(method=method), fix)


def _row_iteration_call(iterable: cst.BaseExpression) -> cst.Call | None:
    if isinstance(iterable, cst.Call) and call_name(iterable) in {"enumerate", "tqdm"}:
        args = positional_args(iterable)
        iterable = args[0].value if args else iterable
    if (
        isinstance(iterable, cst.Call)
        and isinstance(iterable.func, cst.Attribute)
        and iterable.func.attr.value in {"iterrows", "itertuples"}
    ):
        return iterable
    return None


def _row_name(target: cst.BaseExpression, method: str) -> str | None:
    """The name bound to the row: `for i, row in ...iterrows()`, `for row in ...itertuples()`."""
    if isinstance(target, cst.Tuple) and len(target.elements) == 2:
        # enumerate(df.iterrows()) gives (n, (i, row)); plain iterrows gives (i, row)
        second = target.elements[1].value
        if isinstance(second, cst.Tuple) and len(second.elements) == 2:
            second = second.elements[1].value
        if method == "iterrows" and isinstance(second, cst.Name):
            return second.value
        if method == "itertuples" and isinstance(second, cst.Name):
            return second.value
    if isinstance(target, cst.Name) and method == "itertuples":
        return target.value
    return None


def _computes_row_values(body: cst.CSTNode, row: str) -> bool:
    """Arithmetic/comparison on row fields, and no per-row call we cannot vectorize."""
    finder = _RowWork(row)
    body.visit(finder)
    return finder.numeric_on_row and not finder.opaque_call


class _RowWork(cst.CSTVisitor):
    def __init__(self, row: str) -> None:
        self.row = row
        self.numeric_on_row = False
        self.opaque_call = False

    def _touches_row(self, node: cst.CSTNode) -> bool:
        return row_fields_only(node, self.row)[0] > 0

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if self._touches_row(node) and not _is_string_work(node):
            self.numeric_on_row = True

    def visit_Comparison(self, node: cst.Comparison) -> None:
        if self._touches_row(node):
            self.numeric_on_row = True

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if self._touches_row(node.value):
            self.numeric_on_row = True

    def visit_Call(self, node: cst.Call) -> None:
        if not any(self._touches_row(arg.value) for arg in node.args):
            if isinstance(node.func, cst.Attribute) and self._touches_row(node.func.value):
                # row["name"].lower(), row.text.split(): string/object work
                self.opaque_call = True
            return
        name = call_name(node)
        if name not in _VECTORIZABLE_CALLEES:
            self.opaque_call = True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Assert(self, node: cst.Assert) -> bool:
        return False  # checking values (tests), not computing them


def _is_string_work(node: cst.BinaryOperation) -> bool:
    return isinstance(node.left, (cst.SimpleString, cst.FormattedString)) or isinstance(
        node.right, (cst.SimpleString, cst.FormattedString)
    )


def _vectorize_fix(loop: cst.For, call: cst.Call, row: str) -> Fix | None:
    """`for i, row in df.iterrows(): df.loc[i, "c"] = <arith>` -> `df["c"] = <arith>`."""
    if call.func.attr.value != "iterrows" or call.args or loop.orelse or loop.asynchronous:
        return None
    frame = call.func.value
    if not is_simple_reference(frame):
        return None
    if not (isinstance(loop.target, cst.Tuple) and len(loop.target.elements) == 2):
        return None
    index = loop.target.elements[0].value
    if (
        not isinstance(index, cst.Name)
        or not isinstance(loop.iter, cst.Call)
        or loop.iter is not call
    ):
        return None
    body = loop.body
    if not isinstance(body, cst.IndentedBlock) or len(body.body) != 1 or _has_comment(loop):
        return None
    line = body.body[0]
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        return None
    assign = line.body[0]
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1:
        return None
    column = _cell_write_column(assign.targets[0].target, frame, index.value)
    if column is None:
        return None
    outside = frozenset(names_in(assign.value) - {row, index.value})
    if not is_row_arithmetic(assign.value, row, outside):
        return None
    new_value = rewrite_row_fields(assign.value, row, frame)
    target = cst.Subscript(value=frame, slice=[cst.SubscriptElement(cst.Index(column))])
    new_line = line.with_changes(
        body=[assign.with_changes(targets=[cst.AssignTarget(target)], value=new_value)],
        leading_lines=loop.leading_lines,
    )
    return Fix("safe", {loop: new_line}, description="vectorize the row loop")


def _cell_write_column(target, frame, index: str) -> cst.SimpleString | None:
    """`frame.loc[index, "c"]` / `frame.at[index, "c"]` -> the "c" node."""
    if not (isinstance(target, cst.Subscript) and isinstance(target.value, cst.Attribute)):
        return None
    if target.value.attr.value not in {"loc", "at"}:
        return None
    if dotted_name(target.value.value) != dotted_name(frame) or len(target.slice) != 2:
        return None
    first, second = (el.slice for el in target.slice)
    if not (isinstance(first, cst.Index) and isinstance(second, cst.Index)):
        return None
    if not (isinstance(first.value, cst.Name) and first.value.value == index):
        return None
    if isinstance(second.value, cst.SimpleString) and row_field(
        cst.Subscript(cst.Name("_"), [cst.SubscriptElement(cst.Index(second.value))]), "_"
    ):
        return second.value
    return None


def _has_comment(loop: cst.For) -> bool:
    """Comments inside the loop would be lost by replacing it: no fix then."""
    code = cst.Module(body=[loop.with_changes(leading_lines=())]).code
    return "#" in code


VALID = [
    # same method name on a non-pandas object
    """
class Table:
    def iterrows(self):
        return iter([])

t = Table()
for i, row in t.iterrows():
    total = row["a"] * 2
""",
    # no pandas in the module at all
    """
for i, row in sheet.iterrows():
    print(row["a"] + 1)
""",
    # per-row work with no vectorized equivalent (string/API work)
    """
import pandas as pd
df = pd.read_csv("x.csv")
for _, row in df.iterrows():
    requests.post(URL, json={"id": row["id"], "n": row["n"] + 1})
""",
    """
import pandas as pd
df = pd.read_csv("x.csv")
for _, row in df.iterrows():
    if fuzz.ratio(row["a"], row["b"]) > 80:
        matches.append(row["id"])
""",
    # iterating columns, not rows
    """
import pandas as pd
df = pd.DataFrame({"a": [1]})
for col in df.columns:
    df[col] = df[col] * 2
""",
    # row loop that only reads and copies fields (no computation)
    """
import pandas as pd
df = pd.read_csv("x.csv")
for _, row in df.iterrows():
    paths.append(row["path"])
""",
]

INVALID = [
    Invalid(
        """
import pandas as pd
df = pd.read_csv("sales.csv")
for i, row in df.iterrows():
    df.loc[i, "total"] = row["price"] * row["qty"] + TAX
""",
        fixed="""
import pandas as pd
df = pd.read_csv("sales.csv")
df["total"] = df["price"] * df["qty"] + TAX
""",
    ),
    Invalid(
        """
from pandas import DataFrame as DF
frame = DF({"a": [1, 2]})
for idx, r in frame.iterrows():
    frame.at[idx, "b"] = -r.a ** 2
""",
        fixed="""
from pandas import DataFrame as DF
frame = DF({"a": [1, 2]})
frame["b"] = -frame["a"] ** 2
""",
    ),
    # accumulation: reported, no fix
    Invalid(
        """
import pandas as pd
def total(df: pd.DataFrame) -> float:
    s = 0.0
    for _, row in df.iterrows():
        s += row["price"] * row["qty"]
    return s
"""
    ),
    # itertuples in a comprehension, unknown receiver in a pandas module
    Invalid(
        """
import pandas as pd
def f(frame):
    return [r.a * r.b for r in frame.itertuples()]
"""
    ),
]
