"""AIP407 pandas-series-elementwise-lambda."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.patterns import ARITHMETIC_OPERATORS, is_argument_arithmetic, replace_argument
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import DATAFRAME, SERIES, call_name, names_in, positional_args

# Calls inside the lambda that have a NumPy ufunc / Series equivalent.
_VECTORIZABLE_CALLS = frozenset(
    [
        "abs",
        "round",
        "sqrt",
        "exp",
        "log",
        "log1p",
        "log2",
        "log10",
        "expm1",
        "sin",
        "cos",
        "tan",
        "tanh",
        "arctan",
        "floor",
        "ceil",
        "clip",
        "maximum",
        "minimum",
        "power",
        "square",
        "sign",
    ]
)
# Receivers whose `.apply` passes groups or windows, not elements.
_NOT_ELEMENTWISE = frozenset(
    ["groupby", "rolling", "expanding", "ewm", "resample", "window", "str", "dt", "cat"]
)
# Parents under which a replacement expression needs no parentheses.
_NO_PARENS_PARENTS = (
    cst.Assign,
    cst.AnnAssign,
    cst.AugAssign,
    cst.Return,
    cst.Arg,
    cst.Expr,
    cst.Index,
    cst.Element,
    cst.DictElement,
)


class SeriesElementwiseLambda(Rule):
    """
    ## What it does
    Finds `Series.apply(lambda x: ...)` and `Series.map(lambda x: ...)` whose
    lambda is arithmetic, a comparison or a conditional of its argument, numbers
    and names from outside.

    ## Why is this bad
    `apply`/`map` with a lambda calls Python once per element. The same
    arithmetic on the whole Series runs in compiled code: the fixture pair
    (`s.apply(lambda x: x * 1.8 + 32)`, 200,000 elements) measured 19x faster
    as `s * 1.8 + 32` on a CPU (AMD EPYC,
    `aiperf-lint verify fixtures/AIP407_series_elementwise_lambda --device cpu`).

    Not reported: string methods (`lambda s: s.lower()`), dict lookups
    (`map(mapping)` is already fast), calls to functions without a vectorized
    equivalent, and `DataFrame.apply(lambda col: ...)`, which passes whole
    columns (already vectorized); `groupby`/`rolling`/`resample` objects pass
    groups and windows, not elements.

    ## Example
    ```python
    df["f"] = df["c"].apply(lambda x: x * 1.8 + 32)
    df["big"] = df["v"].map(lambda v: 1 if v > t else 0)
    ```

    ## Use instead
    ```python
    df["f"] = df["c"] * 1.8 + 32
    df["big"] = (df["v"] > t).astype(int)
    ```

    ## Fix safety
    Safe for pure arithmetic (`+ - * / // % **`, unary minus) of the argument,
    numbers and outside names, with no other `apply`/`map` arguments, on a
    numeric Series. Edge cases differ: Python raises `ZeroDivisionError`
    where NumPy gives `inf`/`NaN`, Python integers do not overflow where
    `int64` wraps, and an `object` Series keeps its dtype. Powers are fixed only
    with a non-negative literal exponent (`int64 ** -1` raises in NumPy).
    Conditionals, comparisons and calls are reported without a fix
    (`np.where`, `.astype(int)`, `.clip()` are the usual rewrites).

    ## References
    - pandas `Series.apply`: https://pandas.pydata.org/docs/reference/api/pandas.Series.apply.html
    - pandas "Enhancing performance": https://pandas.pydata.org/docs/user_guide/enhancingperf.html
    - ruff's PD and PERF rules do not report this.
    """

    code = "AIP407"
    name = "pandas-series-elementwise-lambda"
    message = (
        "`Series.{method}(lambda ...)` calls Python once per element for arithmetic; "
        "write it on the whole Series (e.g. `s * 2 + 1`, `(s > t).astype(int)`, `np.where`)"
    )
    fix_kind = "sometimes"
    triggers = (b".apply(", b".map(")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value in {"apply", "map"}):
            return
        args = positional_args(node)
        if not args or not isinstance(args[0].value, cst.Lambda):
            return
        lam = args[0].value
        params = lam.params
        if (
            len(params.params) != 1
            or isinstance(params.star_arg, cst.Param)
            or params.star_kwarg is not None
            or params.kwonly_params
            or params.posonly_params
        ):
            return
        argument = params.params[0].name.value
        if not self._is_series(func.value) or not _elementwise(lam.body, argument):
            return
        method = func.attr.value
        self.report(node, self.message.format(method=method), self._fix(node, lam.body, argument))

    def _is_series(self, receiver: cst.BaseExpression) -> bool:
        if _chain_has(receiver, _NOT_ELEMENTWISE):
            return False
        kind = self.ctx.kind_of(receiver)
        if kind == SERIES:
            return True
        if kind is not None:
            return False
        # `frame["c"]` on a frame of unknown kind in a pandas module
        if isinstance(receiver, cst.Subscript) and len(receiver.slice) == 1:
            index = receiver.slice[0].slice
            if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
                owner = self.ctx.kind_of(receiver.value)
                return owner == DATAFRAME or (owner is None and self.ctx.uses("pandas"))
        return False

    def _fix(self, call: cst.Call, body: cst.BaseExpression, argument: str) -> Fix | None:
        if len(call.args) != 1 or call.args[0].keyword is not None:
            return None
        outside = frozenset(names_in(body) - {argument})
        if not is_argument_arithmetic(body, argument, outside) or not _safe_powers(body):
            return None
        receiver = call.func.value
        replacement = replace_argument(body, argument, receiver)
        if isinstance(replacement, cst.BinaryOperation) and not isinstance(
            self.ctx.parent(), _NO_PARENS_PARENTS
        ):
            replacement = replacement.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        replacement = replacement.with_changes(
            lpar=list(call.lpar) + list(replacement.lpar),
            rpar=list(replacement.rpar) + list(call.rpar),
        )
        return Fix("safe", {call: replacement}, description="use Series arithmetic")


def _chain_has(expr: cst.BaseExpression, names: frozenset[str]) -> bool:
    while True:
        if isinstance(expr, cst.Call):
            if call_name(expr) in names:
                return True
            expr = expr.func
        elif isinstance(expr, cst.Attribute):
            if expr.attr.value in names:
                return True
            expr = expr.value
        elif isinstance(expr, cst.Subscript):
            expr = expr.value
        else:
            return False


def _elementwise(body: cst.BaseExpression, argument: str) -> bool:
    """Arithmetic/comparison/conditional of the argument with numbers, outside names, ufuncs."""
    checker = _Elementwise(argument)
    if not checker.ok_expr(body, top=True):
        return False
    return checker.uses_argument and checker.numeric


class _Elementwise:
    def __init__(self, argument: str) -> None:
        self.argument = argument
        self.uses_argument = False
        self.numeric = False

    def ok_expr(self, expr: cst.BaseExpression, top: bool = False) -> bool:
        if isinstance(expr, cst.Name):
            self.uses_argument |= expr.value == self.argument
            return True
        if isinstance(expr, (cst.Integer, cst.Float)):
            return True
        if isinstance(expr, cst.BinaryOperation):
            self.numeric |= isinstance(expr.operator, ARITHMETIC_OPERATORS)
            return isinstance(expr.operator, ARITHMETIC_OPERATORS) and (
                self.ok_expr(expr.left) and self.ok_expr(expr.right)
            )
        if isinstance(expr, cst.UnaryOperation):
            return isinstance(expr.operator, (cst.Minus, cst.Plus, cst.Not)) and self.ok_expr(
                expr.expression
            )
        if isinstance(expr, cst.Comparison):
            self.numeric = True
            if any(
                isinstance(c.operator, (cst.In, cst.NotIn, cst.Is, cst.IsNot))
                for c in expr.comparisons
            ):
                return False
            return self.ok_expr(expr.left) and all(
                self.ok_expr(c.comparator) for c in expr.comparisons
            )
        if isinstance(expr, cst.BooleanOperation):
            return self.ok_expr(expr.left) and self.ok_expr(expr.right)
        if isinstance(expr, cst.IfExp):
            self.numeric = True
            return (
                self.ok_expr(expr.test)
                and self._ok_result(expr.body)
                and self._ok_result(expr.orelse)
            )
        if isinstance(expr, cst.Call):
            name = call_name(expr)
            if name not in _VECTORIZABLE_CALLS or any(a.star for a in expr.args):
                return False
            if isinstance(expr.func, cst.Attribute) and names_in(expr.func.value) & {self.argument}:
                return False  # `x.round()` on a Python float: fine, but keep it simple
            self.numeric = True
            return all(self.ok_expr(a.value) for a in expr.args)
        return False

    def _ok_result(self, expr: cst.BaseExpression) -> bool:
        """Branches of a conditional may also be string/bool constants (`np.where` handles them)."""
        if isinstance(expr, cst.SimpleString) or (
            isinstance(expr, cst.Name) and expr.value in {"True", "False", "None"}
        ):
            return True
        return self.ok_expr(expr)


def _safe_powers(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.BinaryOperation):
        if isinstance(expr.operator, cst.Power) and not isinstance(
            expr.right, (cst.Integer, cst.Float)
        ):
            return False
        return _safe_powers(expr.left) and _safe_powers(expr.right)
    if isinstance(expr, cst.UnaryOperation):
        return _safe_powers(expr.expression)
    return True


VALID = [
    # DataFrame.apply without axis passes whole columns: already vectorized
    """
import pandas as pd
df = pd.read_csv("x.csv")
out = df.apply(lambda x: x ** 0.25)
""",
    # string methods, dict lookups, opaque calls
    """
import pandas as pd
df = pd.read_csv("x.csv")
df["name"] = df["name"].apply(lambda s: s.lower())
df["code"] = df["city"].map(lambda c: codes[c])
df["y"] = df["x"].map(lambda v: lookup.get(v, 0))
df["z"] = df["text"].apply(lambda t: len(t.split()))
df["j"] = df["raw"].apply(lambda r: json.loads(r))
""",
    # the vectorized form, and map with a dict
    """
import pandas as pd
df = pd.read_csv("x.csv")
df["f"] = df["c"] * 1.8 + 32
df["g"] = df["grade"].map({"a": 1, "b": 2})
""",
    # groups and windows, not elements
    """
import pandas as pd
df = pd.read_csv("x.csv")
a = df.groupby("k")["v"].apply(lambda g: g * 2)
b = df["v"].rolling(3).apply(lambda w: w.sum() * 2)
""",
    # the builtin map and a non-pandas object's apply
    """
xs = [1, 2, 3]
ys = list(map(lambda x: x * 2, xs))
class Job:
    def apply(self, f):
        return f(1)
Job().apply(lambda x: x + 1)
""",
    # identity / membership tests
    """
import pandas as pd
s = pd.Series([1, 2])
t = s.apply(lambda x: x)
u = s.apply(lambda x: x in allowed)
""",
]

INVALID = [
    Invalid(
        """
import pandas as pd
df = pd.read_csv("weather.csv")
df["f"] = df["c"].apply(lambda x: x * 1.8 + 32)
""",
        fixed="""
import pandas as pd
df = pd.read_csv("weather.csv")
df["f"] = df["c"] * 1.8 + 32
""",
    ),
    Invalid(
        """
import pandas
s = pandas.Series([1.0, 2.0])
scale = 3
total = s.map(lambda v: (v - 1) / scale).sum()
""",
        fixed="""
import pandas
s = pandas.Series([1.0, 2.0])
scale = 3
total = ((s - 1) / scale).sum()
""",
    ),
    # conditional: reported, no fix
    Invalid(
        """
import pandas as pd
def flag(df: pd.DataFrame, t: float) -> pd.Series:
    return df.score.map(lambda v: 1 if v > t else 0)
"""
    ),
    # ufunc call and a negative power: reported, no fix
    Invalid(
        """
import numpy as np
import pandas as pd
df = pd.read_csv("x.csv")
df["l"] = df["x"].apply(lambda x: np.log(x + 1))
df["inv"] = df["n"].apply(lambda n: n ** -1)
""",
        count=2,
    ),
]
