"""Quadratic accumulation: `acc = join([acc, piece])` re-bound on every loop iteration.

Shared by AIP107 (torch) and AIP302 (NumPy / pandas) so both agree on what
"growing an array in a loop" means and rewrite it the same way. Every such
join copies everything gathered so far: n iterations copy O(n^2) elements.

Detection (`find_accumulation`): an assignment `acc = <join>` inside a loop
body, where `<join>` is a library concatenation taking `acc` itself as one of
the pieces, and the loop reads `acc` nowhere else. The last condition is what
separates accumulation from loops that *need* the joined value every step:
autoregressive decoding (`ids = torch.cat([ids, next_id], -1)` then
`model(ids)`), DenseNet blocks (`x = torch.cat([x, layer(x)], 1)`), U-Net skip
connections (`x = up(x); x = torch.cat([x, skip], 1)`). The first-iteration
idioms `acc = x if acc is None else join([acc, x])` and
`if acc is None: acc = x / else: acc = join([acc, x])` are accumulation too.

Fix (`collect_then_join_fix`): keep whatever `acc` holds before the loop as
the first piece, append the pieces in the loop, join once after the loop:

    acc_parts = [acc]
    for ...:
        acc_parts.append(piece)
    acc = join(acc_parts, <same other arguments>)

Keeping the initial value as the first piece (instead of dropping an "empty"
initialiser) is what makes the rewrite provably equal for every initialiser:
`torch.cat` promotes dtypes over all inputs and skips legacy 1-D empty
tensors in both forms (`torch.empty(0)` + float16 pieces is float32 either
way; `torch.empty(0)` + 2-D pieces works either way), a loop that runs zero
times leaves the initial value's contents, and NumPy/pandas concatenation is
associative for the joins fixed here. `np.append(acc, x)` (no axis) flattens
both operands; its one-shot form is `np.concatenate(parts, axis=None)`, which
flattens every part the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.semantic import (
    DATAFRAME,
    SERIES,
    Context,
    LoopFrame,
    dotted_name,
    names_in,
    positional_args,
)

# Library functions that join a sequence of pieces into a new object.
_JOINS = {
    "torch": frozenset(
        [
            "cat",
            "concat",
            "concatenate",
            "stack",
            "vstack",
            "hstack",
            "row_stack",
            "column_stack",
            "dstack",
        ]
    ),
    "numpy": frozenset(
        [
            "append",
            "concatenate",
            "concat",
            "stack",
            "vstack",
            "hstack",
            "row_stack",
            "column_stack",
            "dstack",
        ]
    ),
    "pandas": frozenset({"concat"}),
}
# Joins for which one call over all pieces equals the chain of pairwise calls.
# (`stack` adds a dimension per call, so it is reported but never rewritten.)
_ONE_SHOT = {
    "torch": frozenset(["cat", "concat", "concatenate", "vstack", "hstack"]),
    "numpy": frozenset(["append", "concatenate", "concat", "vstack", "hstack"]),
    "pandas": frozenset({"concat"}),
}
# Keyword arguments under which the one-shot join is still equal to the chain.
_FIXABLE_KEYWORDS = {
    "torch": frozenset({"dim", "axis"}),
    "numpy": frozenset({"axis", "dtype", "casting"}),
    "pandas": frozenset({"axis", "ignore_index", "join", "sort", "verify_integrity", "copy"}),
}
# Keyword names under which the joins take their sequence of pieces.
_SEQUENCE_KEYWORDS = frozenset({"tensors", "arrays", "tup", "objs"})
# A loop over at most this many literal items is a handful of joins, not growth.
_SMALL_LOOP = 10


@dataclass(frozen=True)
class Accumulation:
    target: str  # "acc", or "self.acc" for an attribute
    call: cst.Call  # the join call: where findings are reported
    library: str  # "torch", "numpy" or "pandas"
    function: str  # "cat", "append", "concat", "_append", ...
    assign: cst.Assign
    element: cst.BaseExpression  # the `acc` node among the join's pieces
    loop: LoopFrame
    # The plain shape `acc = join([acc, piece], ...)` (no None-first idiom): piece, else None.
    piece: cst.BaseExpression | None
    ancestors: tuple[cst.CSTNode, ...]  # from the module down to the assignment


def find_accumulation(ctx: Context, node: cst.Assign) -> Accumulation | None:
    """The accumulation `node` performs, or None (see the module docstring)."""
    if len(node.targets) != 1:
        return None
    target = dotted_name(node.targets[0].target)
    if target is None or not ctx.loops:
        return None
    call, none_first = _join_call(node.value, target)
    join = _classify_join(ctx, call, target) if call is not None else None
    if join is None:
        return None
    library, function, element = join
    loops = ctx.statement_loops()
    loop = loops[-1] if loops else None
    if loop is None or not _in_loop_body(ctx, loop.node) or _small_loop(ctx, loop):
        return None
    uses = _Uses(target, node, element)
    _visit_loop(loop.node, uses)
    if uses.other or (uses.resets and not uses.none_tests):
        return None
    if target.count(".") and _calls_own_methods(ctx, loop.node, target):
        return None  # `self.m()` may read `self.acc`
    plain = not none_first and not uses.none_tests and not uses.resets
    piece = _plain_piece(call, element) if plain else None
    return Accumulation(
        target, call, library, function, node, element, loop, piece, tuple(ctx.ancestors)
    )


def _in_loop_body(ctx: Context, loop: cst.CSTNode) -> bool:
    """The current node runs per iteration: inside the loop's body, not its `else`."""
    for index, ancestor in enumerate(ctx.ancestors):
        if ancestor is loop:
            following = ctx.ancestors[index + 1 : index + 2]
            return bool(following) and following[0] is loop.body
    return False


def _small_loop(ctx: Context, loop: LoopFrame) -> bool:
    """`for x in (a, b, c)` / `for i in range(3)`: a few joins, nothing quadratic."""
    iterable = loop.iter_expr
    if isinstance(iterable, (cst.List, cst.Tuple, cst.Set)):
        return len(iterable.elements) <= _SMALL_LOOP
    if isinstance(iterable, cst.Call) and ctx.qualified_name(iterable.func) == "builtins.range":
        args = positional_args(iterable)
        if len(args) == 1 and isinstance(args[0].value, cst.Integer):
            return int(args[0].value.value, 0) <= _SMALL_LOOP
    return False


def _join_call(value: cst.BaseExpression, target: str) -> tuple[cst.Call | None, bool]:
    """The join call of `acc = join(...)` or `acc = x if acc is None else join(...)`."""
    if isinstance(value, cst.Call):
        return value, False
    if isinstance(value, cst.IfExp) and _is_none_test(value.test, target):
        for branch, other in ((value.body, value.orelse), (value.orelse, value.body)):
            if isinstance(branch, cst.Call) and target not in _dotted_names(other):
                return branch, True
    return None, False


def _classify_join(
    ctx: Context, call: cst.Call, target: str
) -> tuple[str, str, cst.BaseExpression] | None:
    """(library, function, the node of `acc` among the pieces) for a join of acc."""
    if any(arg.star for arg in call.args):
        return None
    func = call.func
    if isinstance(func, cst.Attribute) and dotted_name(func.value) == target:
        return _method_join(ctx, call, target)
    qname = ctx.qualified_name(func) or ""
    library, _, function = qname.rpartition(".")
    if function not in _JOINS.get(library, ()):
        return None
    if library == "numpy" and function == "append":
        args = positional_args(call)
        if args and dotted_name(args[0].value) == target:
            return library, function, args[0].value
        return None
    pieces = _sequence_argument(call)
    if pieces is None:
        return None
    for element in pieces.elements:
        if not isinstance(element, cst.StarredElement) and dotted_name(element.value) == target:
            return library, function, element.value
    return None


def _method_join(
    ctx: Context, call: cst.Call, target: str
) -> tuple[str, str, cst.BaseExpression] | None:
    """`df = df._append(row)`; `df = df.append(row)` when df is known to be pandas."""
    method = call.func.attr.value
    receiver = call.func.value
    kind = ctx.kind_of(call)
    if method == "_append" and (
        kind in {DATAFRAME, SERIES} or (kind is None and ctx.uses("pandas"))
    ):
        return "pandas", method, receiver
    if method == "append" and kind in {DATAFRAME, SERIES}:
        return "pandas", method, receiver
    return None


def _sequence_argument(call: cst.Call) -> cst.List | cst.Tuple | None:
    for arg in call.args:
        if arg.keyword is None or arg.keyword.value in _SEQUENCE_KEYWORDS:
            value = arg.value
            return value if isinstance(value, (cst.List, cst.Tuple)) else None
    return None


def _plain_piece(call: cst.Call, element: cst.BaseExpression) -> cst.BaseExpression | None:
    """`piece` of `join([acc, piece])` / `np.append(acc, piece)`: acc first, one piece."""
    if isinstance(call.func, cst.Attribute) and call.func.value is element:
        return None  # method form: report only
    pieces = _sequence_argument(call)
    if pieces is None:  # np.append(acc, piece, ...)
        args = positional_args(call)
        return args[1].value if len(args) >= 2 and args[0].value is element else None
    elements = pieces.elements
    if len(elements) != 2 or elements[0].value is not element:
        return None
    if isinstance(elements[1], cst.StarredElement):
        return None
    return elements[1].value


def _is_none_test(test: cst.BaseExpression, target: str) -> bool:
    """`acc is None` / `acc is not None`."""
    return (
        isinstance(test, cst.Comparison)
        and dotted_name(test.left) == target
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].operator, (cst.Is, cst.IsNot))
        and isinstance(test.comparisons[0].comparator, cst.Name)
        and test.comparisons[0].comparator.value == "None"
    )


def _visit_loop(loop: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    loop.body.visit(visitor)
    if isinstance(loop, cst.While):
        loop.test.visit(visitor)


class _Uses(cst.CSTVisitor):
    """Classify every occurrence of the accumulator in the loop."""

    def __init__(self, target: str, assign: cst.Assign, element: cst.BaseExpression) -> None:
        self.target = target
        self.expected = {id(assign.targets[0].target), id(element)}
        self.none_tests = 0
        self.resets = 0
        self.other = 0

    def _is_target(self, node: cst.CSTNode) -> bool:
        return isinstance(node, (cst.Name, cst.Attribute)) and dotted_name(node) == self.target

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._is_target(node):
            if id(node) not in self.expected:
                self.other += 1
            return False
        if isinstance(node, cst.Comparison) and _is_none_test(node, self.target):
            self.none_tests += 1
            return False
        if isinstance(node, cst.Assign) and self._is_reset(node):
            self.resets += 1
            node.value.visit(self)
            return False
        if isinstance(node, cst.Attribute):
            node.value.visit(self)  # `obj.acc` is another object's attribute
            return False
        if isinstance(node, cst.Arg):
            node.value.visit(self)  # skip keyword names: `f(acc=...)`
            return False
        return True

    def _is_reset(self, node: cst.Assign) -> bool:
        """`acc = x` with x not reading acc (the first-iteration branch)."""
        return (
            len(node.targets) == 1
            and self._is_target(node.targets[0].target)
            and id(node.targets[0].target) not in self.expected
            and self.target not in _dotted_names(node.value)
        )


def _dotted_names(node: cst.CSTNode) -> set[str]:
    """Names and attribute chains (`self.acc`) read or written inside node."""
    collector = _DottedCollector()
    node.visit(collector)
    return collector.names


class _DottedCollector(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        dotted = dotted_name(node)
        if dotted is not None:
            self.names.add(dotted)


def _calls_own_methods(ctx: Context, loop: cst.CSTNode, target: str) -> bool:
    root = target.split(".")[0]
    finder = _RootCalls(root)
    _visit_loop(loop, finder)
    return finder.found


class _RootCalls(cst.CSTVisitor):
    """A call `root.m(...)`, or `root` passed along bare: could read the accumulator."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.found = False

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and dotted_name(func.value) == self.root:
            self.found = True
        for arg in node.args:
            if isinstance(arg.value, cst.Name) and arg.value.value == self.root:
                self.found = True


# ---------------------------------------------------------------- the fix


def collect_then_join_fix(ctx: Context, acc: Accumulation) -> Fix | None:
    """Unsafe fix for the plain shape: collect pieces in a list, join once after the loop."""
    if acc.piece is None or "." in acc.target or acc.function not in _ONE_SHOT[acc.library]:
        return None
    loop = acc.loop.node
    if getattr(loop, "orelse", None) is not None or not _hoistable(acc):
        return None
    if not _arguments_fixable(acc):
        return None
    parts = f"{acc.target}_parts"
    if parts in names_in(ctx.module):
        return None
    final_call = _one_shot_call(acc, parts)
    if final_call is None:
        return None
    append = cst.Expr(
        cst.Call(
            func=cst.Attribute(cst.Name(parts), cst.Name("append")),
            args=[cst.Arg(acc.piece)],
        )
    )
    new_loop = loop.deep_replace(acc.assign, append)
    start = _assign_line(cst.Name(parts), cst.List([cst.Element(cst.Name(acc.target))]))
    finish = _assign_line(cst.Name(acc.target), final_call)
    replacement = cst.FlattenSentinel(
        [
            start.with_changes(leading_lines=loop.leading_lines),
            new_loop.with_changes(leading_lines=()),
            finish,
        ]
    )
    return Fix("unsafe", {loop: replacement}, description="collect the pieces in a list, join once")


def _hoistable(acc: Accumulation) -> bool:
    """The loop is a statement of a block, and no `with` sits between it and the join."""
    chain = acc.ancestors
    index = next(i for i, node in enumerate(chain) if node is acc.loop.node)
    parent = chain[index - 1] if index else None
    if not isinstance(parent, (cst.IndentedBlock, cst.Module)):
        return False
    return not any(isinstance(node, cst.With) for node in chain[index:])


def _arguments_fixable(acc: Accumulation) -> bool:
    """Other arguments are loop-invariant and keep the one-shot join equal."""
    allowed = _FIXABLE_KEYWORDS[acc.library]
    # The callee resolved to a library function through the imports: nothing to check.
    for arg in acc.call.args:
        if arg.keyword is not None and arg.keyword.value in _SEQUENCE_KEYWORDS:
            continue
        if arg.keyword is not None and arg.keyword.value not in allowed:
            return False
        if _contains(arg.value, acc.piece) or _contains(arg.value, acc.element):
            continue  # the pieces themselves
        if not acc.loop.is_invariant(arg.value):
            return False
    return not (acc.library == "pandas" and len(positional_args(acc.call)) > 1)


def _contains(node: cst.CSTNode, inner: cst.CSTNode) -> bool:
    found = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, n: cst.CSTNode) -> bool:
            if n is inner:
                found.append(n)
            return not found

    node.visit(_Find())
    return bool(found)


def _one_shot_call(acc: Accumulation, parts: str) -> cst.Call | None:
    call = acc.call
    if acc.library == "numpy" and acc.function == "append":
        return _numpy_append_one_shot(call, parts)
    args = []
    for arg in call.args:
        if isinstance(arg.value, (cst.List, cst.Tuple)) and (
            arg.keyword is None or arg.keyword.value in _SEQUENCE_KEYWORDS
        ):
            args.append(arg.with_changes(value=cst.Name(parts)))
        else:
            args.append(arg)
    return call.with_changes(args=args)


def _numpy_append_one_shot(call: cst.Call, parts: str) -> cst.Call | None:
    """`np.append(acc, x[, axis])` chain -> `np.concatenate(parts, axis=None|axis)`."""
    if not isinstance(call.func, cst.Attribute):
        return None  # `from numpy import append`: no module name to reach concatenate by
    positional = positional_args(call)
    axis = positional[2].value if len(positional) > 2 else None
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "axis":
            axis = arg.value
    axis = axis if axis is not None else cst.Name("None")
    func = call.func.with_changes(attr=cst.Name("concatenate"))
    return cst.Call(
        func=func,
        args=[
            cst.Arg(cst.Name(parts), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
            cst.Arg(
                axis,
                keyword=cst.Name("axis"),
                equal=cst.AssignEqual(
                    whitespace_before=cst.SimpleWhitespace(""),
                    whitespace_after=cst.SimpleWhitespace(""),
                ),
            ),
        ],
    )


def _assign_line(target: cst.BaseExpression, value: cst.BaseExpression) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine(
        body=[cst.Assign(targets=[cst.AssignTarget(target)], value=value)]
    )
