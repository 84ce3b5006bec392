"""AIP301 list-math-instead-of-numpy."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.patterns import is_simple_reference
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import (
    NDARRAY,
    NUMBER,
    SERIES,
    TENSOR,
    call_name,
    names_in,
    positional_args,
    target_names,
)

_ARRAY_KINDS = frozenset({NDARRAY, TENSOR, SERIES})
# Iterating these yields keys, labels, characters, rows or batches: not numbers.
_NON_NUMERIC_KINDS = frozenset(
    [
        "str",
        "dict",
        "set",
        "file",
        "other",
        "DataFrame",
        "DataLoader",
        "Dataset",
        "IterableDataset",
        "Module",
        "Optimizer",
        "range",
        "enumerate",
        "class",
        "tuple",
    ]
)
# Sources whose items are strings/paths whatever the kind layer says.
_STRING_SOURCES = frozenset(
    [
        "split",
        "rsplit",
        "splitlines",
        "readlines",
        "listdir",
        "glob",
        "rglob",
        "iterdir",
        "keys",
        "items",
        "walk",
    ]
)
# Element-wise functions with a NumPy equivalent (reported, never rewritten).
_ELEMENTWISE_CALLS = frozenset(
    {
        f"math.{f}"
        for f in [
            "sqrt",
            "exp",
            "log",
            "log2",
            "log10",
            "log1p",
            "sin",
            "cos",
            "tan",
            "tanh",
            "fabs",
            "floor",
            "ceil",
        ]
    }
    | {
        f"numpy.{f}"
        for f in [
            "sqrt",
            "exp",
            "log",
            "log2",
            "log10",
            "log1p",
            "sin",
            "cos",
            "tan",
            "tanh",
            "abs",
            "floor",
            "ceil",
        ]
    }
    | {"builtins.abs"}
)
_ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Power)
_SHAPE_ATTRIBUTES = frozenset({"shape", "strides", "size", "ndim", "dims"})
# A literal list of at most this many numbers: converting it costs more than it saves.
_TINY_LITERAL = 16


class ListMathInsteadOfNumpy(Rule):
    """
    ## What it does
    Finds list comprehensions, generator expressions and single-statement
    loops that do numeric element-wise arithmetic one Python number at a time
    (`[x ** 2 for x in xs]`, `[a * b for a, b in zip(xs, ys)]`, a loop summing
    squares over an ndarray) in modules that use NumPy or torch.

    ## Why is this bad
    Each element goes through the interpreter: a boxed number per item and a
    bytecode dispatch per operator. NumPy does the same arithmetic in compiled
    code over contiguous memory. **The gain depends on where the data starts
    and where it has to end up** (`../shared/notes/speedups-cpu.md`, pair 3,
    n = 1,000,000, 2-core CPU):

    - data already an ndarray: `arr ** 2` is about 83x faster (floats) and 49x
      (ints) than the comprehension;
    - data starts as a Python list: the list-to-array conversion is paid too,
      leaving about 2.9x (floats) / 1.7x (ints);
    - a list must come out again (`.tolist()`): about 1.6x for floats and
      0.91x for ints, i.e. slower.

    So the rule is worth most where the source is already an array, which is
    also the only case it rewrites. Not reported: strings, paths, dict rows
    (`row["a"] * 2`), keys of dicts, `range(...)` index arithmetic, shapes
    (`[d // 2 for d in x.shape]`) and tuples, tiny literal lists,
    non-arithmetic work (`str(x)`, method calls), filtered comprehensions,
    and modules that import neither NumPy nor torch. Over data of unknown
    type, operators that strings, lists, paths, sets or datetimes also have
    (`a + b`, `x - off`, `-x`, `s * 3`) are not taken as evidence of numbers;
    a number literal (`x * 0.5`, `x - 1`), `**` or `a * b` of two zipped
    values is.

    ## Example
    ```python
    squares = [x ** 2 for x in arr]
    ```

    ## Use instead
    ```python
    squares = arr ** 2
    ```

    ## Fix safety
    Unsafe, offered only for a list comprehension over one source known to be
    an ndarray (a name or attribute, not a call), whose element is arithmetic
    of the loop variable, numeric literals and names known to be numbers, and
    whose result is assigned, returned or passed as an argument. The result
    becomes an ndarray instead of a list: `+` then adds element-wise instead of
    concatenating, `.append` and `json.dumps` fail, `==` compares element-wise,
    and a 2-D source gives a 2-D array instead of a list of rows. Float results
    can differ in the last bit (Python's `pow` vs NumPy's `x*x`).

    ## References
    - NumPy "What is NumPy? Why is NumPy fast?":
      https://numpy.org/doc/stable/user/whatisnumpy.html
    - ruff PERF401 (`manual-list-comprehension`) suggests a comprehension
      instead of a loop; it does not suggest vectorizing.
    """

    code = "AIP301"
    name = "list-math-instead-of-numpy"
    message = (
        "element-wise arithmetic in a Python loop over {what}; use a NumPy array expression "
        "(e.g. `arr ** 2`; the gain depends on the data already being an array)"
    )
    fix_kind = "unsafe"
    triggers = (b"numpy", b"torch")

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._check_comprehension(node, fixable=True)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._check_comprehension(node, fixable=False)

    def visit_For(self, node: cst.For) -> None:
        if node.orelse is not None or not self._module_uses_arrays():
            return
        element = _single_statement_element(node)
        if element is None:
            return
        sources = self._sources(node.iter, node.target)
        # statement loops: only when an operand is known to be an array
        if sources and any(kind in _ARRAY_KINDS for kind in sources.values()):
            targets = target_names(node.target)
            shape = _elementwise(self.ctx, element, targets)
            if shape.reportable and shape.loose:
                self.report(node.iter, self.message.format(what=_describe(sources)))

    def _module_uses_arrays(self) -> bool:
        return self.ctx.uses("numpy") or self.ctx.uses("torch")

    def _check_comprehension(self, node: cst.ListComp | cst.GeneratorExp, fixable: bool) -> None:
        comp = node.for_in
        if comp.inner_for_in is not None or comp.ifs or comp.asynchronous:
            return
        if not self._module_uses_arrays():
            return
        sources = self._sources(comp.iter, comp.target)
        if not sources:
            return
        targets = target_names(comp.target)
        shape = _elementwise(self.ctx, node.elt, targets)
        if not shape.reportable:
            return
        strong = any(kind in _ARRAY_KINDS for kind in sources.values())
        if not (shape.strict or (strong and shape.loose)):
            return
        fix = None
        if fixable and shape.fixable:
            fix = self._vectorize_fix(node, comp, sources)
        self.report(comp.iter, self.message.format(what=_describe(sources)), fix)

    def _sources(
        self, iterable: cst.BaseExpression, target: cst.BaseExpression
    ) -> dict[cst.BaseExpression, str | None] | None:
        """Each iterated source with its kind; None when one is not numeric data."""
        if (
            isinstance(iterable, cst.Call)
            and self.ctx.qualified_name(iterable.func) == "builtins.zip"
        ):
            sources = [a.value for a in positional_args(iterable)]
            if len(sources) != len(iterable.args) or not isinstance(target, cst.Tuple):
                return None
            if len(target.elements) != len(sources):
                return None
        elif isinstance(target, cst.Name):
            sources = [iterable]
        else:
            return None
        kinds = {}
        for source in sources:
            if not self._numeric_source(source):
                return None
            kinds[source] = self.ctx.kind_of(source)
        return kinds

    def _numeric_source(self, source: cst.BaseExpression) -> bool:
        if _shape_like(source) or self._mentions_range(source):
            return False
        if isinstance(source, (cst.List, cst.Tuple, cst.Set)):
            return len(source.elements) > _TINY_LITERAL and all(
                isinstance(e.value, (cst.Integer, cst.Float)) for e in source.elements
            )
        if self.ctx.kind_of(source) in _NON_NUMERIC_KINDS:
            return False
        value = source
        if isinstance(source, cst.Name):
            binding = self.ctx.binding(source.value)
            if binding is not None and binding.value is not None:
                value = binding.value
                if isinstance(value, (cst.List, cst.Tuple, cst.Set)):
                    return self._numeric_source(value)
        return not (isinstance(value, cst.Call) and call_name(value) in _STRING_SOURCES)

    def _mentions_range(self, source: cst.BaseExpression) -> bool:
        """`reversed(range(n))`, `list(range(n)) * 10`: index arithmetic."""
        return "range" in names_in(source) and (
            self.ctx.qualified_name(cst.Name("range")) == "builtins.range"
        )

    def _vectorize_fix(self, node: cst.ListComp, comp: cst.CompFor, sources: dict) -> Fix | None:
        """`[x ** 2 for x in arr]` -> `arr ** 2` (arr known to be an ndarray)."""
        if len(sources) != 1 or not isinstance(comp.target, cst.Name):
            return None
        source = comp.iter
        if sources[source] != NDARRAY or not is_simple_reference(source):
            return None
        if not isinstance(self.ctx.parent(), (cst.Assign, cst.AnnAssign, cst.Return, cst.Arg)):
            return None  # `[...] + other`, `[...][0]`: list semantics matter right here
        if names_in(node.elt) & names_in(source):
            return None
        vectorized = node.elt.visit(_Substitute(comp.target.value, source))
        return Fix("unsafe", {node: vectorized}, description="vectorize with NumPy")


class _Shape:
    """What an element expression is made of."""

    def __init__(self) -> None:
        self.ok = True
        self.uses_target = False
        self.operators = 0
        # Evidence the items are numbers: `strict` holds for any iterable (no
        # operator that strings, lists, paths, sets or datetimes also support);
        # `loose` is enough when the source is known to be an array.
        self.strict = False
        self.loose = False
        self.fixable = True  # only targets, numeric literals and known numbers

    @property
    def reportable(self) -> bool:
        return self.ok and self.uses_target and self.operators > 0


def _elementwise(ctx, expr: cst.BaseExpression, targets: set[str]) -> _Shape:
    shape = _Shape()
    _walk(ctx, expr, targets, shape)
    return shape


def _walk(ctx, expr: cst.BaseExpression, targets: set[str], shape: _Shape) -> None:
    if isinstance(expr, cst.Name):
        if expr.value in targets:
            shape.uses_target = True
        elif ctx.kind_of(expr) != NUMBER:
            shape.fixable = False
            if ctx.kind_of(expr) not in {None, *_ARRAY_KINDS}:
                shape.ok = False
    elif isinstance(expr, (cst.Integer, cst.Float)):
        pass
    elif isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, _ARITHMETIC):
        shape.operators += 1
        shape.strict |= _strictly_numeric(expr, targets)
        shape.loose |= not isinstance(expr.operator, cst.Add) or bool(_literals(expr))
        _walk(ctx, expr.left, targets, shape)
        _walk(ctx, expr.right, targets, shape)
    elif isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        shape.operators += 1
        shape.loose |= isinstance(expr.operator, cst.Minus)
        _walk(ctx, expr.expression, targets, shape)
    elif isinstance(expr, cst.Call) and ctx.qualified_name(expr.func) in _ELEMENTWISE_CALLS:
        shape.operators += 1
        shape.strict = shape.loose = True
        shape.fixable = False
        if len(expr.args) != 1 or expr.args[0].keyword or expr.args[0].star:
            shape.ok = False
            return
        _walk(ctx, expr.args[0].value, targets, shape)
    else:
        shape.ok = False


def _literals(expr: cst.BinaryOperation) -> list[cst.BaseExpression]:
    """Number literals among the operands (`2`, `0.5`, `-1`)."""
    out = []
    for side in (expr.left, expr.right):
        if isinstance(side, cst.UnaryOperation):
            side = side.expression
        if isinstance(side, (cst.Integer, cst.Float)):
            out.append(side)
    return out


def _strictly_numeric(expr: cst.BinaryOperation, targets: set[str]) -> bool:
    """An operation only numbers support with these operands.

    Strings and lists have `+` and `*` (repetition), paths `/`, sets and
    datetimes `-`: those count only with a number literal (a float one for
    `*`); `**` always counts, and so does `*` between two loop values
    (`a * b` over `zip(xs, ys)`).
    """
    op = expr.operator
    literals = _literals(expr)
    if isinstance(op, cst.Power):
        return True
    if isinstance(op, cst.Multiply):
        both_targets = all(
            isinstance(side, cst.Name) and side.value in targets for side in (expr.left, expr.right)
        )
        return both_targets or any(isinstance(lit, cst.Float) for lit in literals)
    return bool(literals)


def _shape_like(source: cst.BaseExpression) -> bool:
    """`x.shape`, `t.size()`, `a.strides`: a few dimensions, not data."""
    if isinstance(source, cst.Call) and call_name(source) == "size":
        source = source.func
    if isinstance(source, cst.Attribute):
        return source.attr.value in _SHAPE_ATTRIBUTES
    return False


def _single_statement_element(loop: cst.For) -> cst.BaseExpression | None:
    """`total += <expr>` or `out.append(<expr>)` as the loop's only statement."""
    body = loop.body
    if not isinstance(body, cst.IndentedBlock) or len(body.body) != 1:
        return None
    line = body.body[0]
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        return None
    stmt = line.body[0]
    if isinstance(stmt, cst.AugAssign) and isinstance(
        stmt.operator, (cst.AddAssign, cst.MultiplyAssign)
    ):
        if isinstance(stmt.target, cst.Name):
            return stmt.value
    if isinstance(stmt, cst.Expr) and isinstance(stmt.value, cst.Call):
        call = stmt.value
        if call_name(call) == "append" and len(call.args) == 1 and not call.args[0].keyword:
            return call.args[0].value
    return None


def _describe(sources: dict) -> str:
    kinds = {kind for kind in sources.values() if kind in _ARRAY_KINDS}
    if kinds == {NDARRAY}:
        return "an ndarray"
    if kinds == {TENSOR}:
        return "a tensor"
    if kinds == {SERIES}:
        return "a Series"
    return "numbers"


class _Substitute(cst.CSTTransformer):
    def __init__(self, name: str, replacement: cst.BaseExpression) -> None:
        self.name = name
        self.replacement = replacement

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        return self.replacement if original.value == self.name else updated


VALID = [
    # strings, paths, dict rows
    """
import numpy as np
names = ["a", "b"]
tagged = [n + "_x" for n in names]
""",
    """
import numpy as np
from pathlib import Path
root = Path("data")
files = [root / f for f in fnames]
""",
    """
import numpy as np
totals = [row["price"] * row["qty"] for row in rows]
""",
    # iterating a dict gives keys; string splits give strings
    """
import numpy as np
counts = {"a": 1}
doubled = [k * 2 for k in counts]
""",
    """
import numpy as np
words = text.split()
padded = [w * 3 for w in words]
""",
    # tiny literal list
    """
import numpy as np
scales = [s * 0.5 for s in [1, 2, 4]]
""",
    # index arithmetic over range
    """
import numpy as np
offsets = [i * stride - 1 for i in range(n)]
""",
    # non-arithmetic work
    """
import numpy as np
labels = [str(x) for x in arr]
""",
    """
import numpy as np
arr = np.arange(10)
lengths = [x.bit_length() + 1 for x in arr]
""",
    # no numpy / torch in the module
    """
squares = [x ** 2 for x in xs]
""",
    # already vectorized
    """
import numpy as np
arr = np.arange(10)
squares = arr ** 2
""",
    # filtered comprehension, nested loops: not reported
    """
import numpy as np
arr = np.arange(10)
pos = [x * 2 for x in arr if x > 0]
pairs = [a * b for a in arr for b in arr]
""",
    # a loop whose body does more than one element-wise statement
    """
import numpy as np
arr = np.ones(3)
total = 0.0
for x in arr:
    total += x ** 2
    log(total)
""",
    # a loop over a plain list (no array evidence) is left to the comprehension case
    """
import numpy as np
total = 0
for x in values:
    total += x * x
""",
    # shapes and index arithmetic
    """
import numpy as np
def half(x):
    shift = [dim // 2 for dim in x.shape]
    new = [abs(a * b) for a, b in zip(x.shape, reps)]
    inp = [-(2 ** p - 1) for p in reversed(range(8))]
    return shift, new, inp
""",
    # operators that strings, sets and datetimes also have
    """
import numpy as np
def shift(stamps, off, values):
    moved = [x - off for x in stamps]
    negated = [-v for v in values]
    joined = [a + b for a, b in zip(left, right)]
    return moved, negated, joined
""",
    # string arrays: `+` is concatenation there
    """
import numpy as np
arr1 = np.array(["a", "b"])
arr2 = np.array(["c", "d"])
both = [a + b for a, b in zip(arr1, arr2)]
""",
    # iterating a DataFrame yields column labels
    """
import numpy as np
import pandas as pd
df = pd.DataFrame({"a": [1]})
cols = [c * 2 for c in df]
""",
]

INVALID = [
    Invalid(
        """
import numpy as np
arr = np.random.rand(1000)
squares = [x ** 2 for x in arr]
""",
        fixed="""
import numpy as np
arr = np.random.rand(1000)
squares = arr ** 2
""",
        unsafe=True,
    ),
    # a parameter annotated as ndarray, passed as an argument, known-number name
    Invalid(
        """
import numpy as np

def scale(values: np.ndarray, factor: float):
    return np.mean([2.0 * v + factor for v in values])
""",
        fixed="""
import numpy as np

def scale(values: np.ndarray, factor: float):
    return np.mean(2.0 * values + factor)
""",
        unsafe=True,
    ),
    # zip of unknown sequences: reported, no fix
    Invalid(
        """
import numpy as np
def dot(xs, ys):
    return sum([a * b for a, b in zip(xs, ys)])
"""
    ),
    # list source (unknown kind) with numeric evidence: reported, no fix
    Invalid(
        """
import torch
def normalise(pixels):
    return [(p - 127.5) / 127.5 for p in pixels]
"""
    ),
    # generator over an ndarray, math calls: reported, no fix
    Invalid(
        """
import math
import numpy as np
arr = np.linspace(0, 1, 100)
total = sum(math.exp(-x) for x in arr)
"""
    ),
    # a loop summing squares over an ndarray
    Invalid(
        """
import numpy as np
arr = np.load("x.npy")
total = 0.0
for x in arr:
    total += x ** 2
"""
    ),
    # tensor and Series sources
    Invalid(
        """
import torch
t = torch.randn(100)
out = [v * 3.0 for v in t]
"""
    ),
    Invalid(
        """
import pandas as pd
import numpy as np
df = pd.read_csv("x.csv")
cents = [p * 100 for p in df["price"]]
"""
    ),
    # list semantics used right there (`+` concatenates): reported, no fix
    Invalid(
        """
import numpy as np
arr = np.ones(4)
both = [x * 2 for x in arr] + [0.0]
"""
    ),
]
