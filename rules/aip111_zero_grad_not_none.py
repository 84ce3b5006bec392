"""AIP111 zero-grad-set-to-none-false."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import MODULE, OPTIMIZER, call_name, keyword_arg, positional_args


class ZeroGradNotNone(Rule):
    """
    ## What it does
    Finds `optimizer.zero_grad(set_to_none=False)` and `model.zero_grad(set_to_none=False)`
    (also `zero_grad(False)`).

    ## Why is this bad
    With `set_to_none=False` every parameter's gradient tensor is kept and filled
    with zeros on every step, so a full set of gradients (as large as the model)
    stays allocated through the next forward pass, next to the activations, and
    `backward()` then adds into the zeros. With the default (`set_to_none=True`
    since PyTorch 2.0) the gradients are dropped and only exist from the
    backward pass to the optimizer step: a lower peak memory. Measured by the
    fixture pair (3 SGD steps of an MLP with 8 MiB of weight gradients, batch
    1,024, on a 2-core AMD EPYC CPU;
    `OMP_NUM_THREADS=1 aiperf-lint verify fixtures/AIP111_zero_grad_keeps_zeros`):
    peak memory growth 28.0 MiB with `set_to_none=False`, 19.9 MiB without.

    The time saved (no zero-fill kernels) is small and depends on the allocator:
    on the CPU, fresh gradient tensors must be allocated every step, and across
    model shapes the default measured 0.81x-1.16x the speed of
    `set_to_none=False` (0.95x in the fixture pair); no speed-up is claimed.

    ## Example
    ```python
    for x, y in loader:
        optimizer.zero_grad(set_to_none=False)
        criterion(model(x), y).backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    for x, y in loader:
        optimizer.zero_grad()  # set_to_none=True
        criterion(model(x), y).backward()
        optimizer.step()
    ```

    ## Fix safety
    Unsafe: the fix removes the argument. After `zero_grad()` a parameter's
    `.grad` is `None` until the next `backward()`, not a zero tensor. Code that
    writes into gradients itself (`p.grad += g`, `p.grad.add_(noise)`,
    `p.grad.copy_(...)` for gradient noise, manual all-reduce or gradient
    surgery) needs the zeros and raises on `None`; code that reads `.grad` of a
    parameter that got no gradient this step sees `None` instead of zeros; and
    optimizers skip parameters whose `.grad` is `None`, where with zeros they
    would still apply momentum and weight decay to them. Keep
    `set_to_none=False` there.

    ## References
    - PyTorch docs, `Optimizer.zero_grad`:
      https://pytorch.org/docs/stable/generated/torch.optim.Optimizer.zero_grad.html
    - PyTorch performance tuning guide, "Use parameter.grad = None instead of
      model.zero_grad() or optimizer.zero_grad()":
      https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
    - No ruff rule covers this.
    """

    code = "AIP111"
    name = "zero-grad-set-to-none-false"
    message = (
        "`zero_grad(set_to_none=False)` keeps every gradient allocated and fills it with zeros "
        "each step; call `zero_grad()` (gradients set to None) unless code adds into `.grad`"
    )
    fix_kind = "unsafe"
    triggers = (b"zero_grad",)

    def visit_Call(self, node: cst.Call) -> None:
        if call_name(node) != "zero_grad" or not isinstance(node.func, cst.Attribute):
            return
        if _false_argument(node) is None or not self._is_torch_receiver(node.func.value):
            return
        cleared = node.with_changes(args=(), whitespace_before_args=cst.SimpleWhitespace(""))
        fix = Fix("unsafe", {node: cleared}, description="set_to_none=True")
        self.report(node, fix=fix)

    def _is_torch_receiver(self, receiver: cst.BaseExpression) -> bool:
        kind = self.ctx.kind_of(receiver)
        if kind is not None:
            return kind in {OPTIMIZER, MODULE}
        return self.ctx.uses("torch")


def _false_argument(call: cst.Call) -> cst.Arg | None:
    """The literal False passed as set_to_none (positionally or by keyword), when it is the only argument."""
    if len(call.args) != 1:
        return None
    arg = keyword_arg(call, "set_to_none") or next(iter(positional_args(call)), None)
    if arg is not None and isinstance(arg.value, cst.Name) and arg.value.value == "False":
        return arg
    return None


VALID = [
    # the default and the explicit True
    """
import torch
optimizer.zero_grad()
optimizer.zero_grad(set_to_none=True)
model.zero_grad(True)
""",
    # a flag: the author chose per run
    """
import torch
optimizer.zero_grad(set_to_none=args.set_to_none)
""",
    # a local class with the same method
    """
import torch
class Accumulator:
    def zero_grad(self, set_to_none=True):
        self.total = 0
acc = Accumulator()
acc.zero_grad(set_to_none=False)
""",
    # not torch at all
    """
trainer.zero_grad(set_to_none=False)
""",
]

INVALID = [
    Invalid(
        """
import torch
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad(set_to_none=False)
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
""",
        fixed="""
import torch
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
""",
        unsafe=True,
    ),
    Invalid(
        """
import torch.nn as nn

class Net(nn.Module):
    def train_step(self, x):
        def inner():
            self.zero_grad(False)
            self(x).sum().backward()
        inner()
""",
        fixed="""
import torch.nn as nn

class Net(nn.Module):
    def train_step(self, x):
        def inner():
            self.zero_grad()
            self(x).sum().backward()
        inner()
""",
        unsafe=True,
    ),
    Invalid(
        """
from torch.optim import AdamW as Opt
opt = Opt(params)
opt.zero_grad(
    set_to_none=False,
)
""",
        fixed="""
from torch.optim import AdamW as Opt
opt = Opt(params)
opt.zero_grad()
""",
        unsafe=True,
    ),
]
