"""AIP406 pandas-cell-read-in-loop."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import (
    DATAFRAME,
    SERIES,
    LoopFrame,
    call_name,
    dotted_name,
    positional_args,
)

_CELL_INDEXERS = frozenset({"loc", "at", "iloc", "iat"})
_ROW_INDEXERS = frozenset({"loc", "iloc"})
_SMALL_RANGE = 10


class CellReadInLoop(Rule):
    """
    ## What it does
    Finds scalar cell reads (`df.loc[i, "c"]`, `df.iloc[i, j]`, `df.at[i, "c"]`,
    `df.iat[i, j]`, `df["c"][i]`, `df.iloc[i]["c"]`) whose row is the variable
    of a loop over the frame's rows (`for i in range(len(df))`,
    `for i in df.index`).

    ## Why is this bad
    Each read is a full pandas indexing call (label lookup, type checks,
    boxing the value): reading a few columns cell by cell costs far more than
    the work done with the values. The fixture pair (three reads per row,
    20,000 rows) measured the loop over columns pulled out once with
    `.to_numpy()` at 123x faster on a CPU (AMD EPYC,
    `aiperf-lint verify fixtures/AIP406_cell_read_in_loop --device cpu`); a
    vectorized expression is faster still.

    Not reported: reads outside loops, loops over a handful of literal labels
    or a small literal `range`, row indexers that select many rows
    (`df.iloc[fold_idx]` in a loop over folds), and subscripts of objects that
    are not pandas (`data["x"][i]` on a dict of lists).

    ## Example
    ```python
    for i in range(len(df)):
        total += df.loc[i, "price"] * df.loc[i, "qty"]
    ```

    ## Use instead
    ```python
    total = (df["price"] * df["qty"]).sum()
    ```
    or, when the loop must stay, pull the columns out once:
    `price, qty = df["price"].to_numpy(), df["qty"].to_numpy()`.

    ## Fix safety
    No fix: the right rewrite depends on what the loop computes.

    ## References
    - pandas "Indexing and selecting data": https://pandas.pydata.org/docs/user_guide/indexing.html
    - AIP403 reports cell writes in the same loops; ruff's PD008/PD009 are about
      `.at`/`.iat` style, not speed.
    """

    code = "AIP406"
    name = "pandas-cell-read-in-loop"
    message = (
        "`{read}` reads one cell per iteration of a loop over rows; vectorize, or pull the "
        "columns out once with `.to_numpy()` before the loop"
    )
    triggers = (b".loc[", b".at[", b".iloc[", b".iat[", b"][")

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._reported: set[int] = set()

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if self._in_store_target():
            return
        found = self._cell_read(node)
        if found is None:
            return
        frame, index, read = found
        loop = self._row_loop(index, frame)
        if loop is not None and id(loop.node) not in self._reported:
            self._reported.add(id(loop.node))
            self.report(node, self.message.format(read=read))

    def _in_store_target(self) -> bool:
        parent = self.ctx.parent()
        return isinstance(parent, (cst.AssignTarget, cst.AugAssign, cst.Del))

    def _cell_read(self, node: cst.Subscript):
        """(frame, row indexer, description) for a scalar cell read, else None."""
        value = node.value
        # df.loc[i, "c"] / df.iloc[i, j] / df.at[i, "c"] / df.iat[i, j]
        if isinstance(value, cst.Attribute) and value.attr.value in _CELL_INDEXERS:
            if len(node.slice) != 2 or not self._is_pandas(value.value):
                return None
            row, col = (_index_value(el) for el in node.slice)
            if row is None or not _scalar(col):
                return None
            return value.value, row, f".{value.attr.value}[{_text(row)}, ...]"
        if len(node.slice) != 1:
            return None
        index = _index_value(node.slice[0])
        if index is None:
            return None
        # df.iloc[i]["c"] / df.loc[i]["c"]: a whole row built to read one cell
        if isinstance(value, cst.Subscript) and isinstance(value.value, cst.Attribute):
            accessor = value.value
            if accessor.attr.value in _ROW_INDEXERS and len(value.slice) == 1:
                row = _index_value(value.slice[0])
                if row is not None and _literal_column(index) and self._is_pandas(accessor.value):
                    return accessor.value, row, f".{accessor.attr.value}[{_text(row)}][...]"
            return None
        # df["c"][i]: a column, then a cell
        if isinstance(value, cst.Subscript) and len(value.slice) == 1:
            column = _index_value(value.slice[0])
            if column is not None and _literal_column(column) and self._is_frame(value.value):
                return value.value, index, f'{dotted_name(value.value)}["..."][{_text(index)}]'
        return None

    def _is_pandas(self, expr) -> bool:
        kind = self.ctx.kind_of(expr)
        return kind in {DATAFRAME, SERIES} or (kind is None and self.ctx.uses("pandas"))

    def _is_frame(self, expr) -> bool:
        """A DataFrame for `df["c"][i]`: known by kind, never a guess (dicts of lists look the same)."""
        return self.ctx.kind_of(expr) == DATAFRAME

    def _row_loop(self, index: cst.BaseExpression, frame) -> LoopFrame | None:
        if not _scalar_row(index):
            return None
        used = {n.value for n in _names(index)}
        for loop in reversed(self.ctx.loops):
            if used & loop.targets and self._iterates_rows(loop):
                return loop
        return None

    def _iterates_rows(self, loop: LoopFrame) -> bool:
        """`range(len(df))`, `range(df.shape[0])`, `df.index`, `tqdm(...)` of those."""
        iterable = loop.iter_expr
        while isinstance(iterable, cst.Call) and call_name(iterable) in {
            "tqdm",
            "list",
            "enumerate",
        }:
            args = positional_args(iterable)
            if not args:
                return False
            iterable = args[0].value
        if isinstance(iterable, cst.Attribute) and iterable.attr.value == "index":
            return self._is_pandas(iterable.value)
        if not (isinstance(iterable, cst.Call) and call_name(iterable) == "range"):
            return False
        args = positional_args(iterable)
        if not args or len(args) > 3:
            return False
        stop = args[0].value if len(args) == 1 else args[1].value
        if isinstance(stop, cst.Integer):
            return int(stop.value, 0) > _SMALL_RANGE
        return self._frame_length(stop)

    def _frame_length(self, expr) -> bool:
        """`len(df)`, `len(df.index)`, `df.shape[0]`, a name bound to one of those."""
        if isinstance(expr, cst.Name):
            binding = self.ctx.binding(expr.value)
            expr = binding.value if binding is not None and binding.value is not None else expr
        if isinstance(expr, cst.Call) and call_name(expr) == "len":
            args = positional_args(expr)
            if len(args) != 1:
                return False
            inner = args[0].value
            if isinstance(inner, cst.Attribute) and inner.attr.value == "index":
                inner = inner.value
            return self._is_pandas(inner)
        if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Attribute):
            return expr.value.attr.value == "shape" and self._is_pandas(expr.value.value)
        return False


def _index_value(element: cst.SubscriptElement) -> cst.BaseExpression | None:
    return element.slice.value if isinstance(element.slice, cst.Index) else None


def _scalar(expr) -> bool:
    """A column label or position: a string, number or name; not a list or slice."""
    return isinstance(expr, (cst.SimpleString, cst.Integer, cst.Name, cst.Attribute))


def _literal_column(expr) -> bool:
    return isinstance(expr, (cst.SimpleString, cst.Integer))


def _scalar_row(expr) -> bool:
    """`i`, `i + 1`, `i - 1`: one row, never a list, slice, mask or fold of indices."""
    if isinstance(expr, cst.Name):
        return True
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Add, cst.Subtract)):
        return (_scalar_row(expr.left) and isinstance(expr.right, cst.Integer)) or (
            isinstance(expr.left, cst.Integer) and _scalar_row(expr.right)
        )
    return False


def _names(expr) -> list[cst.Name]:
    if isinstance(expr, cst.Name):
        return [expr]
    if isinstance(expr, cst.BinaryOperation):
        return _names(expr.left) + _names(expr.right)
    return []


def _text(expr) -> str:
    return cst.Module([]).code_for_node(expr)


VALID = [
    # one read outside any loop
    """
import pandas as pd
df = pd.read_csv("x.csv")
first = df.loc[0, "price"]
""",
    # a fold of rows, not one row
    """
import pandas as pd
df = pd.read_csv("x.csv")
for fold, (train_idx, valid_idx) in enumerate(kf.split(df)):
    train = df.iloc[train_idx]
    valid = df.iloc[valid_idx]
""",
    # a plain dict of lists is not pandas
    """
data = {"x": [1, 2, 3], "y": [4, 5, 6]}
total = 0
for i in range(len(data["x"])):
    total += data["x"][i] * data["y"][i]
""",
    # a loop over a few labels
    """
import pandas as pd
df = pd.read_csv("x.csv")
for i in range(3):
    print(df.loc[i, "name"])
for label in ["a", "b"]:
    print(df.at[label, "score"])
""",
    # columns pulled out once: reads of NumPy arrays
    """
import pandas as pd
df = pd.read_csv("x.csv")
price = df["price"].to_numpy()
total = 0.0
for i in range(len(df)):
    total += price[i]
""",
    # writes are AIP403's business; a slice of rows is vectorized
    """
import pandas as pd
df = pd.read_csv("x.csv")
for i in range(len(df)):
    df.loc[i, "a"] = 0
for col in df.columns:
    chunk = df.loc[0:10, col]
""",
    # a local class with a .loc attribute in a non-pandas module
    """
class Grid:
    def __init__(self):
        self.loc = {}
g = Grid()
for i in range(100):
    v = g.loc[i, "x"]
""",
]

INVALID = [
    Invalid(
        """
import pandas as pd
df = pd.read_csv("x.csv")
total = 0.0
for i in range(len(df)):
    total += df.loc[i, "price"] * df.loc[i, "qty"]
"""
    ),
    Invalid(
        """
import pandas as pd
def scores(frame: pd.DataFrame):
    out = []
    for idx in frame.index:
        out.append(frame.at[idx, "score"] > 0.5)
    return out
"""
    ),
    Invalid(
        """
from pandas import read_csv
table = read_csv("x.csv")
n = table.shape[0]
for r in range(n):
    print(table.iloc[r, 2], table.iat[r, 3])
"""
    ),
    # column then cell on a known DataFrame, and a whole row built per read
    Invalid(
        """
import pandas as pd
from tqdm import tqdm
df = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
for i in tqdm(range(len(df))):
    x = df["a"][i] + df.iloc[i]["b"]
"""
    ),
    # comprehension over positions
    Invalid(
        """
import pandas as pd
df = pd.read_csv("x.csv")
labels = [df.iloc[i, 0] for i in range(len(df))]
"""
    ),
]
