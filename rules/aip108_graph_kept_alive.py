"""AIP108 autograd-graph-kept-alive."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import LoopFrame, call_name, dotted_name, names_in, positional_args


class GraphKeptAlive(Rule):
    """
    ## What it does
    Finds a loss or model output that still requires grad being accumulated across
    the iterations of a training loop (a loop that calls `backward()`):
    `total_loss += loss`, `total = total + loss`, `losses.append(loss)`.

    ## Why is this bad
    The running total is itself part of the autograd graph: `total_loss + loss`
    records an add node that points back to this step's graph, which points to
    the previous step's, and so on. Nothing of any step can be freed until the
    total is dropped, usually at the end of the epoch. `backward()` frees the
    saved activations of the graph it ran through, but the graph nodes stay, and
    tensors saved by operations that never ran backward (a metric computed with
    grad on) stay too: host memory grows with every step. Accumulating the
    detached value keeps nothing. Measured by the fixture pair (2,000 steps of a
    9-layer MLP, batch 32, on a 2-core AMD EPYC CPU;
    `OMP_NUM_THREADS=1 aiperf-lint verify fixtures/AIP108_loss_total_keeps_graph`):
    peak memory growth of the epoch 48.8 MiB with `total_loss += loss`, 0.3 MiB
    with `loss.detach()`; it grows linearly with the number of steps.

    `loss.detach()` stays on the device, so it adds no host-device sync; do not
    switch to `loss.item()`/`float(loss)` on every step (AIP103).

    Not reported: the detached value (`loss.detach()`, `loss.item()`), values
    computed under `torch.no_grad()`, accumulation done under `no_grad`, and
    lists or totals that are reset in the loop or that the loop itself calls
    `backward()` on (`losses.append(loss)` ... `torch.stack(losses).sum().backward()`,
    gradient accumulation over several steps).

    ## Example
    ```python
    total_loss = 0.0
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss
    ```

    ## Use instead
    ```python
    total_loss = 0.0
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach()  # on the device; read it once after the loop
    ```

    ## Fix safety
    Unsafe: the fix wraps the accumulated value in `.detach()`. Code that later
    differentiates through the running total (a custom accumulation scheme the
    rule did not recognize) would no longer get gradients from it.

    ## References
    - PyTorch FAQ, "My model reports cuda runtime error(2): out of memory"
      (accumulating history across the training loop):
      https://pytorch.org/docs/stable/notes/faq.html
    - No ruff rule covers this.
    """

    code = "AIP108"
    name = "autograd-graph-kept-alive"
    message = (
        "`{value}` still holds its autograd graph: accumulating it into `{total}` keeps every "
        "iteration's graph in memory; accumulate `{value}.detach()` on the device instead"
    )
    fix_kind = "unsafe"
    triggers = (b"backward",)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.operator, (cst.AddAssign, cst.SubtractAssign)):
            self._check(node, node.target, node.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        # `total = total + loss`
        value = node.value
        if len(node.targets) != 1 or not isinstance(value, cst.BinaryOperation):
            return
        if not isinstance(value.operator, cst.Add):
            return
        total = dotted_name(node.targets[0].target)
        for mine, other in ((value.left, value.right), (value.right, value.left)):
            if total is not None and dotted_name(mine) == total:
                self._check(node, node.targets[0].target, other)
                return

    def visit_Call(self, node: cst.Call) -> None:
        args = positional_args(node)
        if call_name(node) == "append" and isinstance(node.func, cst.Attribute) and len(args) == 1:
            if len(node.args) == 1:
                self._check(node, node.func.value, args[0].value)

    def _check(self, node: cst.CSTNode, total_expr: cst.BaseExpression, value) -> None:
        total = _root_name(total_expr)
        if total is None or not self.ctx.carries_grad(value):
            return
        loop = self._backward_loop()
        if loop is None or not _bound_per_iteration(value, loop, self.ctx):
            return
        if _reset_or_differentiated(loop.node, total):
            return
        leaves = _grad_leaves(value, self.ctx)
        fix = None
        if leaves:
            replacements = {leaf: _detached(leaf) for leaf in leaves}
            fix = Fix("unsafe", replacements, description="accumulate the detached value")
        shown = cst.Module(body=[]).code_for_node(leaves[0] if len(leaves) == 1 else value)
        self.report(node, self.message.format(value=shown, total=total), fix)

    def _backward_loop(self) -> LoopFrame | None:
        for frame in reversed(self.ctx.statement_loops()):
            if frame.facts().calls_backward:
                return frame
        return None


def _root_name(expr: cst.BaseExpression) -> str | None:
    """`total`, `self.losses`, `history["loss"]` -> "history"."""
    while isinstance(expr, cst.Subscript):
        expr = expr.value
    return dotted_name(expr)


def _grad_leaves(expr: cst.BaseExpression, ctx) -> list[cst.BaseExpression]:
    """The smallest sub-expressions carrying the graph: `loss` in `loss * x.size(0)`."""
    if isinstance(expr, cst.BinaryOperation):
        return [
            leaf
            for side in (expr.left, expr.right)
            if ctx.carries_grad(side)
            for leaf in _grad_leaves(side, ctx)
        ]
    if isinstance(expr, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
        return [expr]
    return []  # unary minus, parentheses...: reported without a fix


def _detached(expr: cst.BaseExpression) -> cst.Call:
    return cst.Call(cst.Attribute(expr.with_changes(lpar=[], rpar=[]), cst.Name("detach")))


def _bound_per_iteration(value: cst.BaseExpression, loop: LoopFrame, ctx) -> bool:
    """The graph is new each iteration: its names are (re)bound in the loop, or it is computed inline."""
    names = {leaf.value for leaf in _grad_leaves(value, ctx) if isinstance(leaf, cst.Name)}
    inline = any(not isinstance(leaf, cst.Name) for leaf in _grad_leaves(value, ctx))
    return inline or bool(names & loop.variant_names())


def _reset_or_differentiated(loop: cst.CSTNode, total: str) -> bool:
    finder = _TotalUse(total)
    loop.body.visit(finder)
    return finder.reset or finder.differentiated


class _TotalUse(cst.CSTVisitor):
    """Is the total re-created each iteration, or the input of a backward pass in the loop?"""

    def __init__(self, total: str) -> None:
        self.total = total
        self.reset = False
        self.differentiated = False

    def _mentions_total(self, node: cst.CSTNode) -> bool:
        if "." not in self.total:
            return self.total in names_in(node)
        finder = _DottedFinder(self.total)
        node.visit(finder)
        return finder.found

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if dotted_name(target.target) == self.total and not self._mentions_total(node.value):
                self.reset = True

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if dotted_name(node.target) == self.total and node.value is not None:
            self.reset = self.reset or not self._mentions_total(node.value)

    def visit_Del(self, node: cst.Del) -> None:
        # `del losses[:]`
        if isinstance(node.target, cst.Subscript):
            self.reset = self.reset or dotted_name(node.target.value) == self.total

    def visit_Call(self, node: cst.Call) -> None:
        name = call_name(node)
        if name == "clear" and isinstance(node.func, cst.Attribute):
            self.reset = self.reset or dotted_name(node.func.value) == self.total
        if name in {"backward", "grad"} and self._mentions_total(node):
            self.differentiated = True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False


class _DottedFinder(cst.CSTVisitor):
    def __init__(self, dotted: str) -> None:
        self.dotted = dotted
        self.found = False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        if dotted_name(node) == self.dotted:
            self.found = True
        return not self.found


VALID = [
    # the detached value, or a Python number, is accumulated
    """
import torch
def train(model, loader, optimizer, criterion):
    total_loss = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
    return total_loss
""",
    """
import torch
def train(model, loader, optimizer, criterion):
    total_loss = torch.zeros(())
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach()
        losses.append(loss.detach().cpu())
""",
    # computed under no_grad (validation inside the training loop)
    """
import torch
for x, y in train_loader:
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        val_loss = criterion(model(x_val), y_val)
    val_total += val_loss
""",
    # accumulation done under no_grad records no graph
    """
import torch
for x, y in train_loader:
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        running += loss
""",
    # the multi-loss pattern: the list is rebuilt and differentiated every iteration
    """
import torch
import torch.nn.functional as F
for x, y in loader:
    losses = []
    for head in heads:
        losses.append(F.cross_entropy(head(x), y))
    torch.stack(losses).mean().backward()
    optimizer.step()
""",
    """
import torch
for x, y in loader:
    out = model(x)
    losses.append(criterion(out, y))
    losses.append(aux_criterion(out, y))
    sum(losses).backward()
    losses.clear()
""",
    """
import torch
for episode in range(100):
    for t in range(200):
        log_probs.append(policy_model(state))
    policy_loss = torch.cat(log_probs).sum()
    policy_loss.backward()
    del log_probs[:]
""",
    # gradient accumulation: the running total is what backward() runs on
    """
import torch
total = 0
for step, (x, y) in enumerate(loader):
    loss = criterion(model(x), y) / accum
    total = total + loss
    if (step + 1) % accum == 0:
        total.backward()
        optimizer.step()
        total = 0
""",
    # no backward in the loop: not a training loop (AIP104's business)
    """
import torch
for x, y in val_loader:
    loss = criterion(model(x), y)
    total += loss
""",
    # comparisons and argmax carry no graph
    """
import torch
for x, y in loader:
    out = model(x)
    loss = criterion(out, y)
    loss.backward()
    correct += (out.argmax(1) == y).sum()
    preds.append(out.argmax(dim=1))
""",
    # a plain list of numbers in a file without torch
    """
for x, y in loader:
    loss = criterion(model(x), y)
    loss.backward()
    total_loss += loss
""",
    # a loss bound once before the loop is not a new graph per iteration
    """
import torch
loss = criterion(model(x), y)
for step in range(3):
    loss.backward(retain_graph=True)
    history.append(loss)
""",
]

INVALID = [
    Invalid(
        """
import torch
import torch.nn as nn

model = nn.Linear(10, 1)
criterion = nn.MSELoss()
total_loss = 0.0
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    total_loss += loss
""",
        fixed="""
import torch
import torch.nn as nn

model = nn.Linear(10, 1)
criterion = nn.MSELoss()
total_loss = 0.0
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    total_loss += loss.detach()
""",
        unsafe=True,
    ),
    # F.*_loss, a list, inside a method; scaled loss
    Invalid(
        """
import torch.nn.functional as F

class Trainer:
    def fit(self, loader):
        for epoch in range(3):
            for x, y in loader:
                loss = F.nll_loss(self.model(x), y)
                loss = loss / self.accum
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                self.losses.append(loss)
""",
        fixed="""
import torch.nn.functional as F

class Trainer:
    def fit(self, loader):
        for epoch in range(3):
            for x, y in loader:
                loss = F.nll_loss(self.model(x), y)
                loss = loss / self.accum
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                self.losses.append(loss.detach())
""",
        unsafe=True,
    ),
    # `total = total + loss * n`, aliased import, nested function
    Invalid(
        """
from torch.nn import CrossEntropyLoss as CE

def main():
    crit = CE()
    def run_epoch(net, batches):
        epoch_loss = 0
        for xb, yb in batches:
            loss = crit(net(xb), yb)
            loss.backward()
            epoch_loss = epoch_loss + loss * xb.size(0)
        return epoch_loss
""",
        fixed="""
from torch.nn import CrossEntropyLoss as CE

def main():
    crit = CE()
    def run_epoch(net, batches):
        epoch_loss = 0
        for xb, yb in batches:
            loss = crit(net(xb), yb)
            loss.backward()
            epoch_loss = epoch_loss + loss.detach() * xb.size(0)
        return epoch_loss
""",
        unsafe=True,
    ),
    # HF-style outputs.loss, a model output kept in a list, a metric with grad
    Invalid(
        """
import torch
for batch in train_dataloader:
    outputs = model(**batch)
    loss = outputs.loss
    accelerator.backward(loss)
    optimizer.step()
    history["loss"].append(loss)
    all_logits.append(outputs.logits)
    confidence += outputs.logits.softmax(-1).max(-1).values.mean()
""",
        fixed="""
import torch
for batch in train_dataloader:
    outputs = model(**batch)
    loss = outputs.loss
    accelerator.backward(loss)
    optimizer.step()
    history["loss"].append(loss.detach())
    all_logits.append(outputs.logits.detach())
    confidence += outputs.logits.softmax(-1).max(-1).values.mean().detach()
""",
        unsafe=True,
        count=3,
    ),
    # while loop, the total reset only per epoch (outside the backward loop)
    Invalid(
        """
import torch
for epoch in range(10):
    running = 0.0
    it = iter(loader)
    step = 0
    while step < steps:
        x, y = next(it)
        loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        running += loss
        step += 1
"""
    ),
]
