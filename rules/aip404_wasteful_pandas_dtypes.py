"""AIP404 pandas-wasteful-dtypes (opt-in)."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import DATAFRAME, SERIES, has_star_kwargs, keyword_arg, positional_args

# Readers and the arguments that show the columns' types or selection were chosen.
_READERS = {
    "pandas.read_csv": frozenset({"dtype", "usecols", "converters", "dtype_backend"}),
    "pandas.read_table": frozenset({"dtype", "usecols", "converters", "dtype_backend"}),
    "pandas.read_parquet": frozenset({"columns", "dtype_backend"}),
}
# Arguments that make the read small or lazy: nothing wasteful to report.
_PARTIAL_READS = frozenset({"nrows", "chunksize", "iterator"})
_AGGREGATIONS = frozenset(
    [
        "sum",
        "mean",
        "std",
        "var",
        "min",
        "max",
        "median",
        "agg",
        "aggregate",
        "describe",
        "cumsum",
        "cumprod",
        "prod",
        "quantile",
        "corr",
        "cov",
        "sem",
        "skew",
    ]
)
# `+` is left out: string columns concatenate with it.
_ARITHMETIC = (cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Power)
_WIDE_STRINGS = {"float64": "float64", "float": "float64", "object": "object", "O": "object"}
_WIDE_NAMES = {
    "builtins.float": "float64",
    "builtins.object": "object",
    "numpy.float64": "float64",
    "numpy.double": "float64",
    "numpy.object_": "object",
}


class WastefulPandasDtypes(Rule):
    """
    ## What it does
    Finds pandas data loaded or converted to the widest types and then used
    numerically: `pd.read_csv` / `read_table` without `dtype=` or `usecols=`
    (`read_parquet` without `columns=`) whose frame is later aggregated
    (summed, averaged, grouped, described) or used in column arithmetic, and `.astype("float64")` / `.astype(float)` /
    `.astype(object)` whose result is aggregated.

    Off by default (select it with `--select AIP404`): whether float32 is
    precise enough is a judgement about the data.

    ## Why is this bad
    Without `dtype=`, every float column becomes float64, every integer column
    int64 and every string column Python `object` (a pointer plus a full Python
    string per cell); without `usecols=`, columns the analysis never touches
    are parsed and kept too. float32 / int32 halve numeric columns, a
    low-cardinality string column as `category` stores one small integer code
    per row, and aggregations over narrower, contiguous columns move less
    memory. `astype(object)` turns vectorized columns into boxed Python
    objects, so aggregations fall back to Python-speed loops.

    Not reported: reads with `dtype=`, `usecols=`, `converters=` or
    `dtype_backend=`, partial or lazy reads (`nrows=`, `chunksize=`,
    `iterator=True`), frames never aggregated nor used in arithmetic, `**kwargs` that may
    carry a dtype, `astype` of NumPy arrays or tensors, and `astype` of an
    index or of column labels.

    ## Example
    ```python
    df = pd.read_csv("sales.csv")
    totals = df.groupby("store")["price"].sum()
    ```

    ## Use instead
    ```python
    df = pd.read_csv(
        "sales.csv",
        usecols=["store", "price"],
        dtype={"store": "category", "price": "float32"},
    )
    totals = df.groupby("store", observed=True)["price"].sum()
    ```

    ## Fix safety
    No fix: the right types depend on the data's range and the precision the
    analysis needs (float32 keeps about 7 significant digits; sums of many
    float32 values lose more than float64 ones).

    ## References
    - pandas user guide, "Scaling to large datasets" (load less data, use
      efficient datatypes): https://pandas.pydata.org/docs/user_guide/scale.html
    - pandas user guide, "Categorical data":
      https://pandas.pydata.org/docs/user_guide/categorical.html
    """

    code = "AIP404"
    name = "pandas-wasteful-dtypes"
    message = (
        "`{reader}` without `{hint}` loads every column as float64/int64/object before "
        "numeric work; pass `usecols=` and `dtype=` (float32, int32, category)"
    )
    astype_message = (
        "`astype({arg})` widens to {dtype} before aggregating; "
        "use float32/int32 (or category for labels) instead"
    )
    default_enabled = False
    triggers = (b"read_csv", b"read_table", b"read_parquet", b"astype")

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1 or not isinstance(node.value, cst.Call):
            return
        call = node.value
        target = node.targets[0].target
        reader = self.ctx.qualified_name(call.func)
        if reader in _READERS and isinstance(target, cst.Name):
            if self._reads_everything(call, reader) and self._aggregated_later(node, target.value):
                hint = "columns=" if reader.endswith("parquet") else "dtype=/usecols="
                short = "pd." + reader.rsplit(".", 1)[1]
                self.report(call, self.message.format(reader=short, hint=hint))
            return
        widened = self._wide_astype(call)
        if widened is None:
            return
        root = _root_name(target)
        if root is not None and self._aggregated_later(node, root):
            self.report(call, self._astype_text(call, widened))

    def visit_Call(self, node: cst.Call) -> None:
        """`s.astype(float).sum()`: an aggregation straight over a widened value."""
        if not (isinstance(node.func, cst.Attribute) and node.func.attr.value in _AGGREGATIONS):
            return
        for inner in _receiver_chain(node.func.value):
            if isinstance(inner, cst.Call):
                widened = self._wide_astype(inner)
                if widened is not None:
                    self.report(inner, self._astype_text(inner, widened))
                    return

    # ------------------------------------------------------------ helpers

    def _reads_everything(self, call: cst.Call, reader: str) -> bool:
        if has_star_kwargs(call) or len(positional_args(call)) > 1:
            return False  # `**opts` may carry dtype; positional options are unusual
        chosen = _READERS[reader] | _PARTIAL_READS
        return not any(keyword_arg(call, name) is not None for name in chosen)

    def _wide_astype(self, call: cst.Call) -> str | None:
        """ "float64" / "object" for `x.astype(<wide>)` on a (maybe) pandas object."""
        func = call.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "astype"):
            return None
        args = positional_args(call)
        if len(args) != 1:
            return None
        receiver = func.value
        if isinstance(receiver, cst.Attribute) and receiver.attr.value in {"index", "columns"}:
            return None  # labels, not column data
        if self._numpy_rooted(receiver):
            return None  # `np.isfinite(x).astype(float)`: an ndarray
        kind = self.ctx.kind_of(receiver)
        if kind not in {DATAFRAME, SERIES} and not (kind is None and self.ctx.uses("pandas")):
            return None
        dtype = args[0].value
        if isinstance(dtype, cst.SimpleString):
            return _WIDE_STRINGS.get(dtype.evaluated_value)
        return _WIDE_NAMES.get(self.ctx.qualified_name(dtype) or "")

    def _numpy_rooted(self, expr: cst.BaseExpression) -> bool:
        for inner in _receiver_chain(expr):
            if isinstance(inner, cst.Call):
                qname = self.ctx.qualified_name(inner.func) or ""
                if qname.startswith("numpy."):
                    return True
        return False

    def _astype_text(self, call: cst.Call, widened: str) -> str:
        arg = cst.Module(body=[]).code_for_node(positional_args(call)[0].value)
        return self.astype_message.format(arg=arg, dtype=widened)

    def _aggregated_later(self, assign: cst.Assign, root: str) -> bool:
        frame = self.ctx.current_function()
        scope = frame.node.body if frame is not None else self.ctx.module
        finder = _LaterAggregation(assign, root)
        scope.visit(finder)
        return finder.found


def _receiver_chain(expr: cst.BaseExpression):
    """`df.groupby("k")["x"].astype(float)` -> each call/attribute/subscript down to `df`."""
    while True:
        yield expr
        if isinstance(expr, cst.Call):
            expr = expr.func
        elif isinstance(expr, (cst.Attribute, cst.Subscript)):
            expr = expr.value
        else:
            return


def _root_name(expr: cst.BaseExpression) -> str | None:
    *_, last = _receiver_chain(expr)
    return last.value if isinstance(last, cst.Name) else None


class _LaterAggregation(cst.CSTVisitor):
    """Numeric use of `root` after the assignment, in the same scope: an
    aggregation call rooted at it, or arithmetic on its columns."""

    def __init__(self, assign: cst.Assign, root: str) -> None:
        self.assign = assign
        self.root = root
        self.started = False
        self.found = False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.found:
            return False
        if node is self.assign:
            self.started = True
            return False
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return False
        if self.started and (self._aggregation(node) or self._arithmetic(node)):
            self.found = True
        return True

    def _aggregation(self, node: cst.CSTNode) -> bool:
        return (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in _AGGREGATIONS
            and _root_name(node.func.value) == self.root
        )

    def _arithmetic(self, node: cst.CSTNode) -> bool:
        """`df["price"] * df["qty"]`: column arithmetic on the frame."""
        return (
            isinstance(node, cst.BinaryOperation)
            and isinstance(node.operator, _ARITHMETIC)
            and any(
                isinstance(side, (cst.Subscript, cst.Attribute)) and _root_name(side) == self.root
                for side in (node.left, node.right)
            )
        )


VALID = [
    # dtype / usecols chosen
    """
import pandas as pd
df = pd.read_csv("sales.csv", dtype={"store": "category", "price": "float32"})
print(df.groupby("store")["price"].sum())
""",
    """
import pandas as pd
df = pd.read_csv("sales.csv", usecols=["store", "price"])
print(df["price"].mean())
""",
    """
import pandas as pd
df = pd.read_parquet("sales.parquet", columns=["price"])
total = df["price"].sum()
""",
    # partial / lazy reads
    """
import pandas as pd
head = pd.read_csv("sales.csv", nrows=5)
print(head.mean())
""",
    """
import pandas as pd
for chunk in pd.read_csv("big.csv", chunksize=100_000):
    total += chunk["x"].sum()
""",
    # never aggregated
    """
import pandas as pd
df = pd.read_csv("names.csv")
for name in df["name"].str.upper():
    print(name)
""",
    # string columns joined with `+` are not numeric work
    """
import pandas as pd
people = pd.read_csv("people.csv")
people["full"] = people["first"] + " " + people["last"]
""",
    # options passed through **kwargs
    """
import pandas as pd
def load(path, **opts):
    df = pd.read_csv(path, **opts)
    return df.mean()
""",
    # astype to a narrow type, or of a NumPy array
    """
import pandas as pd
df = pd.read_csv("x.csv", dtype={"a": "int32"})
df["a"] = df["a"].astype("float32")
print(df["a"].sum())
""",
    """
import numpy as np
arr = np.arange(10)
total = arr.astype(np.float64).sum()
""",
    """
import numpy as np
import pandas as pd
def count_finite(x):
    return np.isfinite(x).astype(float).sum()
""",
    # index labels, not column data
    """
import pandas as pd
df = pd.read_csv("x.csv", usecols=["a"])
df.index = df.index.astype("object")
print(df.sum())
""",
    # widened but not aggregated
    """
import pandas as pd
df = pd.read_csv("x.csv", usecols=["id"])
df["id"] = df["id"].astype(object)
df.to_json("out.json")
""",
    # not pandas
    """
def read_csv(path):
    return []
rows = read_csv("x.csv")
print(rows.sum())
""",
]

INVALID = [
    Invalid(
        """
import pandas as pd
df = pd.read_csv("sales.csv")
totals = df.groupby("store")["price"].sum()
"""
    ),
    # from-import, inside a function, aggregation via describe()
    Invalid(
        """
from pandas import read_csv

def summary(path):
    frame = read_csv(path, sep=";")
    return frame.describe()
"""
    ),
    Invalid(
        """
import pandas as pd
data = pd.read_parquet("events.parquet")
print(data["latency_ms"].mean())
"""
    ),
    # column arithmetic counts as numeric use
    Invalid(
        """
import io
import pandas as pd
def revenue(text):
    df = pd.read_csv(io.StringIO(text))
    return df["price"] * df["qty"]
"""
    ),
    # astype widening, chained into an aggregation
    Invalid(
        """
import pandas as pd
df = pd.read_csv("x.csv", dtype={"qty": "int32"})
total = df["qty"].astype("float64").sum()
"""
    ),
    # astype assigned back to a column, then aggregated
    Invalid(
        """
import numpy as np
import pandas as pd
def totals(df: pd.DataFrame):
    df["price"] = df["price"].astype(np.float64)
    return df.groupby("store")["price"].agg(["sum", "mean"])
"""
    ),
    Invalid(
        """
import pandas as pd
df = pd.read_csv("x.csv", usecols=["code", "n"])
df["code"] = df["code"].astype(object)
counts = df.groupby("code")["n"].sum()
"""
    ),
]
