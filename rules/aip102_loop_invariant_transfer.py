"""AIP102 loop-invariant-transfer."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.patterns import device_move, is_model_like, is_simple_reference
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import LoopFrame, dotted_name, names_in, target_names

# Control flow between the loop and the move that makes it conditional or per-call.
_CONDITIONAL = (
    cst.If,
    cst.IfExp,
    cst.ExceptHandler,
    cst.Lambda,
    cst.BooleanOperation,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
)


class LoopInvariantTransfer(Rule):
    """
    ## What it does
    Finds a loop-invariant model or tensor moved to the device on every iteration.

    Finds a model, weight or tensor that does not change inside a loop but is
    moved with `.cuda()` / `.to(device)` on every iteration, e.g. `model.to(device)`
    or `class_weights.to(device)` inside the batch loop.

    ## Why is this bad
    A tensor moved inside the loop is copied host-to-device again on every
    iteration, although the copy is the same each time. `model.to(device)` on a
    model already there copies nothing but still walks every parameter and buffer
    in Python on every step. One move before the loop does the same work once.

    Moving the loop's own batch (`for x, y in loader: x = x.to(device, non_blocking=True)`)
    is the correct idiom and is never reported: the batch changes every iteration.

    ## Example
    ```python
    for x, y in loader:
        model.to(device)
        loss = F.cross_entropy(model(x.to(device)), y.to(device), weight=w.to(device))
    ```

    ## Use instead
    ```python
    model.to(device)
    w = w.to(device)
    for x, y in loader:
        loss = F.cross_entropy(model(x.to(device)), y.to(device), weight=w)
    ```

    ## Fix safety
    Unsafe, and only offered when the move is a statement of its own directly in
    the loop body (`model.to(device)` or `w = w.to(device)`) and the moved name is
    not rebound, mutated in place or moved under a condition in the loop: the
    statement is hoisted before the loop. It is unsafe because the move now runs
    even when the loop body never does, and before any code above it in the
    body that might have depended on the object still being on the host.
    Moves inside an expression are reported without a fix.

    ## References
    - PyTorch performance tuning guide: https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
    - No ruff rule covers this.
    """

    code = "AIP102"
    name = "loop-invariant-transfer"
    message = (
        "`{name}` does not change inside the loop but is moved to the device on every "
        "iteration; move it once before the loop"
    )
    fix_kind = "sometimes"
    triggers = (b".cuda(", b".to(")

    def visit_Call(self, node: cst.Call) -> None:
        loops = self.ctx.statement_loops()
        if not loops:
            return
        move = device_move(self.ctx, node)
        if move is None or move.to_cpu or not is_simple_reference(move.receiver):
            return
        loop = loops[-1]
        name = dotted_name(move.receiver)
        statement = self.ctx.current_statement()
        if self._conditional_inside(loop) or not self._invariant(move, name, loop, statement):
            return
        if not (is_model_like(self.ctx, move.receiver) or self._tensor_or_unknown(move.receiver)):
            return
        fix = _hoist_fix(loop, statement, node, name)
        self.report(node, self.message.format(name=name), fix)

    def _tensor_or_unknown(self, expr: cst.BaseExpression) -> bool:
        return self.ctx.kind_of(expr) in {None, "Tensor"} and self.ctx.uses("torch")

    def _conditional_inside(self, loop: LoopFrame) -> bool:
        """Is the move under an `if`/`except`/comprehension inside the loop body?"""
        ancestors = self.ctx.ancestors
        try:
            start = max(i for i, a in enumerate(ancestors) if a is loop.node)
        except ValueError:
            return True
        return any(isinstance(a, _CONDITIONAL) for a in ancestors[start + 1 :])

    def _invariant(self, move, name: str, loop: LoopFrame, statement) -> bool:
        if names_in(move.device or cst.Name("_")) & loop.variant_names():
            return False
        if any(name == target or name.startswith(target + ".") for target in loop.targets):
            return False
        changes = _Changes(name, statement)
        loop.node.body.visit(changes)
        if isinstance(loop.node, cst.While):
            loop.node.test.visit(changes)
        return not changes.found


class _Changes(cst.CSTVisitor):
    """Does the loop rebind or mutate `name` (other than by `name = name.to(...)`)?"""

    def __init__(self, name: str, move_statement) -> None:
        self.name = name
        self.move_statement = move_statement
        self.found = False

    def _hits(self, target: cst.BaseExpression) -> bool:
        bound = target_names(target)
        if any(b == self.name or self.name.startswith(b + ".") for b in bound):
            return True
        # `w[0] = ...`, `w.data = ...`: mutates the object
        base = target
        while isinstance(base, (cst.Subscript, cst.Attribute)):
            base = base.value
            if dotted_name(base) == self.name:
                return True
        return False

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        return node is not self.move_statement

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(self._hits(t.target) for t in node.targets):
            self.found = True

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if self._hits(node.target):
            self.found = True

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if self._hits(node.target):
            self.found = True

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        if self._hits(node.target):
            self.found = True

    def visit_For(self, node: cst.For) -> None:
        if self._hits(node.target):
            self.found = True

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None and self._hits(node.asname.name):
            self.found = True

    def visit_Call(self, node: cst.Call) -> None:
        # in-place methods (`w.add_(...)`, `w.copy_(...)`) and `del`-like mutators
        func = node.func
        if isinstance(func, cst.Attribute) and dotted_name(func.value) == self.name:
            method = func.attr.value
            if method.endswith("_") and not method.startswith("_"):
                self.found = True
            if method in {"load_state_dict", "append", "extend", "update", "apply"}:
                self.found = True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False


def _hoist_fix(loop: LoopFrame, statement, call: cst.Call, name: str) -> Fix | None:
    node = loop.node
    if not isinstance(node, (cst.For, cst.While)) or not isinstance(node.body, cst.IndentedBlock):
        return None
    body = list(node.body.body)
    if len(body) < 2 or not any(s is statement for s in body):
        return None
    if not _is_plain_move_statement(statement, call, name):
        return None
    remaining = [s for s in body if s is not statement]
    first = remaining[0]
    if body[0] is statement:
        # the hoisted line's comments/blank lines leave with it
        remaining[0] = first.with_changes(leading_lines=())
    new_loop = node.with_changes(body=node.body.with_changes(body=remaining), leading_lines=())
    hoisted = statement.with_changes(leading_lines=[*node.leading_lines, *statement.leading_lines])
    return Fix(
        "unsafe",
        {node: cst.FlattenSentinel([hoisted, new_loop])},
        description="hoist the move before the loop",
    )


def _is_plain_move_statement(statement, call: cst.Call, name: str) -> bool:
    """`model.to(device)` or `w = w.to(device)` as the whole statement."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if isinstance(small, cst.Expr):
        return small.value is call
    if isinstance(small, cst.Assign) and small.value is call and len(small.targets) == 1:
        return dotted_name(small.targets[0].target) == name
    return False


VALID = [
    # the loop's own batch, moved each iteration: correct
    """
import torch
for x, y in loader:
    x = x.to(device, non_blocking=True)
    y = y.cuda(non_blocking=True)
    loss = model(x, y)
""",
    """
import torch
for batch in loader:
    batch = {k: v.to(device) for k, v in batch.items()}
""",
    # a cast, not a move
    """
import torch
for x in loader:
    w16 = weights.to(torch.float16)
""",
    # the tensor is rebuilt or mutated each iteration
    """
import torch
for step in range(10):
    w = torch.randn(3)
    w_gpu = w.to(device)
""",
    """
import torch
buf = torch.zeros(3)
for step in range(10):
    buf.add_(1)
    total = buf.to(device)
""",
    # each model of a list moved once
    """
import torch
for model in models:
    model.to(device)
""",
    # a different device per iteration
    """
import torch
for dev in devices:
    model.to(dev)
""",
    # moved only on some iterations
    """
import torch
for epoch in range(10):
    if epoch == 5:
        model.to(device)
""",
    # not in a loop
    """
import torch
model.to(device)
for x in loader:
    out = model(x.to(device))
""",
    # a local class's `.to`
    """
class Unit:
    def to(self, other):
        return other
u = Unit()
for i in range(3):
    u.to("m")
""",
]

INVALID = [
    Invalid(
        """
import torch
for x, y in loader:
    model.to(device)
    out = model(x.to(device))
""",
        fixed="""
import torch
model.to(device)
for x, y in loader:
    out = model(x.to(device))
""",
        unsafe=True,
    ),
    # epoch loop around the batch loop: hoisted out of both, in a method
    Invalid(
        """
import torch as T
class Trainer:
    def fit(self, loader):
        for epoch in range(3):
            for x, y in loader:
                self.model = self.model.cuda()
                self.step(x.cuda(), y.cuda())
""",
        fixed="""
import torch as T
class Trainer:
    def fit(self, loader):
        self.model = self.model.cuda()
        for epoch in range(3):
            for x, y in loader:
                self.step(x.cuda(), y.cuda())
""",
        unsafe=True,
    ),
    # inside an expression: reported, no fix
    Invalid(
        """
from torch.nn import functional as F
import torch
weights = torch.tensor([0.3, 0.7])
def train(model, loader, device):
    for x, y in loader:
        loss = F.cross_entropy(model(x), y, weight=weights.to(device))
        loss.backward()
"""
    ),
]
