"""AIP403 pandas-cell-write-in-loop."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import (
    DATAFRAME,
    SERIES,
    LoopFrame,
    call_name,
    names_in,
    positional_args,
)

_INDEXERS = frozenset({"loc", "at", "iloc", "iat"})
# A loop over at most this many literal labels is a handful of writes, not a row loop.
_SMALL_LITERAL = 10


class CellWriteInLoop(Rule):
    """
    ## What it does
    Finds `.loc[i, c] =`, `.at[i, c] =`, `.iloc[i, j] =` and `.iat[i, j] =`
    cell writes whose row indexer is the variable of an enclosing Python loop
    (`for i in range(len(df))`, `for i in df.index`, `for i, row in df.iterrows()`).

    ## Why is this bad
    Every cell write is a full pandas indexing call (label lookup, dtype
    checks, possibly a copy of the column): writing a column one cell at a
    time costs thousands of times more than assigning the whole column at once
    (about 8,600x at 10,000 rows for the iterrows + `.loc` loop on a 2-core CPU,
    `../shared/notes/speedups-cpu.md`, pair 1). `.at`/`.iat` are faster than
    `.loc`/`.iloc` for scalars, but the loop is the problem, not the accessor.

    Not reported: writes outside loops, reads, vectorized writes inside a loop
    (a slice or boolean-mask row indexer, e.g. `df.loc[df[c] < 0, c] = 0` in a
    loop over columns), and loops over a handful of literal labels.

    ## Example
    ```python
    for i in range(len(df)):
        df.loc[i, "ratio"] = df.loc[i, "a"] / df.loc[i, "b"]
    ```

    ## Use instead
    ```python
    df["ratio"] = df["a"] / df["b"]
    ```
    or, when the values really come from a per-row Python computation, collect
    them in a list and assign the column once: `df["ratio"] = values`.

    ## Fix safety
    No fix: the right rewrite depends on what the loop computes.

    ## References
    - pandas "Indexing and selecting data": https://pandas.pydata.org/docs/user_guide/indexing.html
    - Note: pandas-vet / ruff PD008-PD009 advise `.loc` over `.at`; that is not
      a speed-up, and this rule does not repeat it.
    """

    code = "AIP403"
    name = "pandas-cell-write-in-loop"
    message = (
        "`.{indexer}[...]` cell write inside a loop over rows; assign the whole column "
        "at once (vectorized expression, or collect values in a list and assign once)"
    )
    triggers = (b".loc[", b".at[", b".iloc[", b".iat[")

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._check(target.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._check(node.target)

    def _check(self, target: cst.BaseExpression) -> None:
        if not (isinstance(target, cst.Subscript) and isinstance(target.value, cst.Attribute)):
            return
        indexer = target.value.attr.value
        if indexer not in _INDEXERS or not self._is_pandas(target.value.value):
            return
        row_index = target.slice[0].slice
        if not isinstance(row_index, cst.Index) or not _scalar_indexer(row_index.value):
            return
        used = names_in(row_index.value)
        for loop in self.ctx.statement_loops():
            # A for loop's own variables (not names merely assigned in it: those
            # are often per-column masks) or a while loop's counters.
            driving = loop.variant_names() if loop.iter_expr is None else loop.targets
            if driving & used and _iterates_many(loop):
                self.report(target, self.message.format(indexer=indexer))
                return

    def _is_pandas(self, receiver: cst.BaseExpression) -> bool:
        kind = self.ctx.kind_of(receiver)
        return kind in {DATAFRAME, SERIES} or (kind is None and self.ctx.uses("pandas"))


def _scalar_indexer(expr: cst.BaseExpression) -> bool:
    """`i`, `row.Index`, `idx[k]`, `i + 1` — not a mask, slice, list or call."""
    if isinstance(expr, (cst.Name, cst.Integer)):
        return True
    if isinstance(expr, cst.Attribute):
        # itertuples' `row.Index` / iterrows' `row.name` are labels;
        # `group.index` is a whole Index (a vectorized write).
        return expr.attr.value in {"Index", "name"}
    if isinstance(expr, cst.BinaryOperation):
        return _scalar_indexer(expr.left) and _scalar_indexer(expr.right)
    if isinstance(expr, cst.Subscript):
        return isinstance(expr.value, (cst.Name, cst.Attribute)) and all(
            isinstance(el.slice, cst.Index) for el in expr.slice
        )
    return False


def _iterates_many(loop: LoopFrame) -> bool:
    """False for `for x in [a, b, c]` or `for i in range(3)`: a few writes."""
    iterable = loop.iter_expr
    if iterable is None:
        return True  # while loop
    if isinstance(iterable, (cst.List, cst.Tuple, cst.Set)):
        return len(iterable.elements) > _SMALL_LITERAL
    if isinstance(iterable, cst.Call) and call_name(iterable) == "range":
        args = positional_args(iterable)
        if len(args) == 1 and isinstance(args[0].value, cst.Integer):
            return int(args[0].value.value, 0) > _SMALL_LITERAL
    return True


VALID = [
    # reads of .loc in a loop are not writes
    """
import pandas as pd
df = pd.read_csv("x.csv")
total = 0
for i in df.index:
    total += df.loc[i, "a"]
""",
    # vectorized writes inside a loop over columns (mask / slice indexers)
    """
import pandas as pd
df = pd.read_csv("x.csv")
for col in df.columns:
    df.loc[df[col] < 0, col] = 0
    df.loc[:, col] = df[col].fillna(0)
""",
    # a handful of literal labels
    """
import pandas as pd
df = pd.read_csv("x.csv")
for i in range(3):
    df.loc[i, "flag"] = True
""",
    # not pandas: a local object with a .loc attribute
    """
class Grid:
    def __init__(self):
        self.loc = {}

g = Grid()
for i in range(100):
    g.loc[i, 0] = i
""",
    # write outside any loop
    """
import pandas as pd
df = pd.read_csv("x.csv")
df.loc[0, "a"] = 1
""",
]

INVALID = [
    Invalid(
        """
import pandas as pd
df = pd.read_csv("x.csv")
for i in range(len(df)):
    df.loc[i, "ratio"] = df.loc[i, "a"] / df.loc[i, "b"]
"""
    ),
    Invalid(
        """
import pandas as pd

def label(df: pd.DataFrame) -> None:
    for idx in df.index:
        df.at[idx, "label"] = compute(idx)
"""
    ),
    Invalid(
        """
import pandas as pd
frame = pd.DataFrame({"a": range(1000)})
j = 0
while j < len(frame):
    frame.iat[j, 0] += 1
    j += 1
"""
    ),
    Invalid(
        """
import pandas as pd
df = pd.read_csv("x.csv")
for row in df.itertuples():
    df.iloc[row.Index, 2] = row.a * 2
"""
    ),
]
