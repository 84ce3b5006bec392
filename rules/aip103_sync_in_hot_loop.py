"""AIP103 host-device-sync-in-loop."""

from __future__ import annotations

import re

import libcst as cst

from aiperf_lint import walk
from aiperf_lint.device_tensors import element_read
from aiperf_lint.patterns import (
    device_move,
    is_model_forward,
    is_model_like,
    names_models_by_convention,
)
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import LoopFrame, dotted_name, positional_args

_SYNC_METHODS = frozenset({"item", "cpu", "numpy", "tolist"})
_CONVERSIONS = frozenset({"builtins.float", "builtins.int", "builtins.bool"})
# `loss`, `train_loss`, `loss_g`: in a torch training loop, a tensor.
_LOSS_NAME = re.compile(r"(^|_)loss(es)?(_|$)", re.IGNORECASE)
_HOST_KINDS = frozenset({"ndarray", "DataFrame", "Series", "list", "tuple", "dict", "str"})
_SYNCHRONIZE = frozenset(
    {"torch.cuda.synchronize", "torch.mps.synchronize", "torch.xpu.synchronize"}
)
# Calls that mark code measuring time: a sync there is what makes the timing right.
_TIMERS = frozenset(
    {
        *("time.time", "time.perf_counter", "time.monotonic", "time.process_time"),
        *("time.perf_counter_ns", "time.time_ns", "timeit.default_timer", "torch.cuda.Event"),
    }
)
_TIMING_WORDS = re.compile(r"profil|timer|timing|benchmark|record_function|elapsed", re.I)


class SyncInHotLoop(Rule):
    """
    ## What it does
    Finds host-device syncs (`.item()`, `.cpu()`, `print(t)`, ...) on every step of a hot loop.

    Finds `.item()`, `.cpu()`, `.numpy()`, `.tolist()`, `float(t)`, `int(t)`,
    `bool(t)`, `print(t)` and f-strings of tensors executed on every iteration of a
    training or inference loop (a loop over a DataLoader, or one that calls
    `backward()` / `optimizer.step()`). Also `torch.cuda.synchronize()` and the
    hidden device-to-host copies `.to("cpu")` and `.type(torch.FloatTensor)`
    (any CPU tensor type), outside code that times or profiles itself.

    ## Why is this bad
    CUDA runs asynchronously: Python queues kernels and moves on. Reading a value
    on the host makes the CPU wait until every queued kernel has finished, so the
    next step's kernels cannot be queued while this one runs and the GPU idles
    between steps. `running_loss += loss.item()` on every step is the most common
    case. On the CPU there is no device to wait for: the measured CPU "fix" is
    0.64x-0.96x (`../shared/notes/speedups-cpu.md`, pair 12), so the gain shows
    only on a GPU.

    Not reported: code after the loop, code under a periodic guard
    (`if step % 100 == 0:`), once-per-epoch code around the batch loop, NumPy
    values (`.item()` of an ndarray), element-by-element reads in an inner
    loop (AIP117 reports those), and files with no tensor or GPU evidence.
    `torch.cuda.synchronize()`, `.to("cpu")` and `.type(...)` are not reported
    in loops or functions that read a clock (`time.perf_counter()`,
    `torch.cuda.Event`), under a profiler or timer `with` block, in
    debugging/profiling branches (timing GPU code needs the sync), or in test
    functions.

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    ```

    ## Use instead
    ```python
    running_loss = torch.zeros((), device=device)
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss.detach()
    print(running_loss.item())  # one sync per epoch
    ```

    ## Fix safety
    No fix: where to accumulate and when to read it back (once per epoch, or every
    N steps for logging) is a choice the rule cannot make.

    ## References
    - PyTorch performance tuning guide, "Avoid unnecessary CPU-GPU synchronization":
      https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
    - No ruff rule covers this.
    """

    code = "AIP103"
    name = "host-device-sync-in-loop"
    message = (
        "`{what}` makes the host wait for the GPU on every step of this loop; accumulate on "
        "the device (e.g. `total += loss.detach()`) and sync once, or every N steps"
    )
    triggers = (b".item(", b".cpu(", b".numpy(", b".tolist(", b"float(", b"int(", b"bool(")
    triggers += (b"print(", b'f"', b"f'", b"synchronize(", b".to(", b".type(")
    # uses("torch") and mentions_accelerator() below need these bytes
    trigger_all = ((b"torch",), (b"cuda", b"device", b"mps"))

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._timed: dict[int, bool] = {}

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _SYNC_METHODS:
            if self._host_read(func.value) and self._per_step() and not self._element_read(node):
                self.report(node, self.message.format(what=f".{func.attr.value}()"))
            return
        hidden = self._hidden_copy(node)
        if hidden is not None:
            if self._per_step() and not self._timing_code():
                self.report(node, self.message.format(what=hidden))
            return
        qname = self.ctx.qualified_name(func)
        args = positional_args(node)
        if qname in _CONVERSIONS and len(args) == 1 and len(node.args) == 1:
            if (
                self._tensor_like(args[0].value)
                and self._per_step()
                and not self._element_read(node)
            ):
                self.report(node, self.message.format(what=f"{qname[9:]}(...)"))
        elif qname == "builtins.print" and any(self._tensor_like(a.value) for a in args):
            if self._per_step():
                self.report(node, self.message.format(what="print(tensor)"))

    def visit_FormattedStringExpression(self, node: cst.FormattedStringExpression) -> None:
        if self._tensor_like(node.expression) and self._per_step():
            self.report(node, self.message.format(what="f-string of a tensor"))

    # ------------------------------------------------------------ facts

    def _per_step(self) -> bool:
        """Runs on every step of a training/inference loop, unguarded, in GPU code."""
        if self.ctx.in_periodic_guard() or not self.ctx.uses("torch"):
            return False
        loop = _step_loop(self.ctx.statement_loops())
        return loop is not None and self.ctx.mentions_accelerator()

    def _element_read(self, call: cst.Call) -> bool:
        return element_read(self.ctx, call) is not None  # AIP117's finding

    def _hidden_copy(self, call: cst.Call) -> str | None:
        """`torch.cuda.synchronize()`, `t.to("cpu")`, `t.type(torch.FloatTensor)`: what it is."""
        qname = self.ctx.qualified_name(call.func)
        if qname in _SYNCHRONIZE and not call.args:
            return f"{qname}()"
        what = self._copy_to_host(call)
        if what is None or not self._host_read(call.func.value):
            return None
        return what

    def _copy_to_host(self, call: cst.Call) -> str | None:
        """`x.to("cpu")` / `x.type(torch.FloatTensor)`: a device-to-host copy of a CUDA x."""
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in {"to", "type"}:
            return None
        if func.attr.value == "type":
            args = positional_args(call)
            if len(args) != 1 or len(call.args) != 1:
                return None
            type_name = self.ctx.qualified_name(args[0].value) or ""
            return f".type({type_name})" if _cpu_tensor_type(type_name) else None
        move = device_move(self.ctx, call)
        return '.to("cpu")' if move is not None and move.to_cpu else None

    def _copied_to_host(self, expr: cst.BaseExpression) -> bool:
        """Is a `.to("cpu")` / `.type(torch.FloatTensor)` already in the receiver chain?"""
        while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            if self._copy_to_host(expr) is not None:
                return True
            expr = expr.func.value
        return False

    def _timing_code(self) -> bool:
        """In a loop or def that reads a clock, a profiler/timer `with`, or a profiling branch."""
        if self.ctx.in_debug_branch():
            return True
        if any(f.name.lstrip("_").startswith("test") for f in self.ctx.function_stack):
            return True  # tests sync to check results across streams and devices
        for node in self.ctx.ancestors:
            if isinstance(node, cst.With) and any(
                _TIMING_WORDS.search(cst.Module([]).code_for_node(item.item)) for item in node.items
            ):
                return True
        scopes = [frame.node for frame in self.ctx.statement_loops()]
        function = self.ctx.current_function()
        if function is not None:
            scopes.append(function.node)
        return any(self._reads_clock(scope) for scope in scopes)

    def _reads_clock(self, scope: cst.CSTNode) -> bool:
        key = id(scope)
        if key not in self._timed:
            self._timed[key] = any(
                self.ctx.qualified_name(call.func) in _TIMERS
                or (isinstance(call.func, cst.Attribute) and call.func.attr.value == "elapsed_time")
                for call in walk.find_all(scope, cst.Call)
            )
        return self._timed[key]

    def _host_read(self, receiver: cst.BaseExpression) -> bool:
        """`.item()`/`.cpu()`/... on a tensor (or unknown value in torch code), first in a chain."""
        if _already_on_host(receiver) or self._copied_to_host(receiver):
            return False  # `.cpu().numpy()`: reported once, at `.cpu()`
        if is_model_like(self.ctx, receiver):
            return False  # `model.cpu()` moves a module
        kind = self.ctx.kind_of(receiver)
        if kind is not None:
            return kind == "Tensor"
        return names_models_by_convention(self.ctx)

    def _tensor_like(self, expr: cst.BaseExpression) -> bool:
        """A tensor by kind, a module's output, or a `loss`-named value in torch code."""
        kind = self.ctx.kind_of(expr)
        if kind is not None:
            return kind == "Tensor"
        if isinstance(expr, cst.Call):
            return self._tensor_call(expr)
        if isinstance(expr, cst.Name):
            binding = self.ctx.binding(expr.value)
            value = binding.value if binding is not None else None
            if isinstance(value, cst.Call) and is_model_forward(self.ctx, value):
                return True
        dotted = dotted_name(expr)
        if dotted is None or not names_models_by_convention(self.ctx):
            return False
        return bool(_LOSS_NAME.search(dotted.rsplit(".", 1)[-1]))

    def _tensor_call(self, call: cst.Call) -> bool:
        """`model(x)`, `torch.mean(out)`, `F.softmax(out)`, `out.isnan().any()`."""
        if is_model_forward(self.ctx, call):
            return True
        qname = self.ctx.qualified_name(call.func) or ""
        module, _, name = qname.rpartition(".")
        if module in _TENSOR_MODULES and name[:1].islower() and not name.startswith("is_"):
            return True
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value not in _NOT_TENSOR_METHODS:
            return self._tensor_like(func.value)
        return False


_TENSOR_MODULES = frozenset({"torch", "torch.nn.functional", "torch.linalg", "torch.fft"})
_NOT_TENSOR_METHODS = _SYNC_METHODS | {"size", "dim", "numel", "tolist", "keys", "items"}


def _step_loop(loops: list[LoopFrame]) -> LoopFrame | None:
    """The innermost training/inference loop, unless the code is per-epoch around it."""
    for frame in reversed(loops):
        if frame.is_training_loop():
            return None if frame.is_epoch_loop() else frame
    return None


def _cpu_tensor_type(qname: str) -> bool:
    """`torch.FloatTensor`, `torch.LongTensor` (not `torch.cuda.*`, not `torch.Tensor`)."""
    module, _, last = qname.rpartition(".")
    return module == "torch" and last.endswith("Tensor") and last != "Tensor"


def _already_on_host(expr: cst.BaseExpression) -> bool:
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        if expr.func.attr.value in {"cpu", "numpy", "tolist", "item"}:
            return True
        expr = expr.func.value
    return False


VALID = [
    # logging every N steps
    """
import torch
for step, (x, y) in enumerate(loader):
    loss = criterion(model(x.to(device)), y.to(device))
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        print(f"step {step}: {loss.item():.4f}")
""",
    # once per epoch, after the batch loop
    """
import torch
for epoch in range(10):
    total = torch.zeros((), device=device)
    for x, y in loader:
        loss = criterion(model(x.cuda()), y.cuda())
        loss.backward()
        optimizer.step()
        total += loss.detach()
    print(total.item())
""",
    # after the loop
    """
import torch
total = torch.zeros((), device="cuda")
for x, y in loader:
    total += model(x.cuda()).sum()
print(total.item())
""",
    # NumPy values
    """
import numpy as np
import torch
for x in loader:
    arr = np.asarray(x)
    peak = arr.max().item()
    x = x.to(device)
""",
    # not a training/inference loop
    """
import torch
for i in range(10):
    v = t.cuda().sum().item()
""",
    # no GPU anywhere in the file
    """
import torch
for x, y in loader:
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    running += loss.item()
""",
    # plain numbers
    """
import torch
for step, (x, y) in enumerate(loader):
    x = x.to(device)
    lr = float(step) / 100
    print(step, lr)
    print(f"{step}")
""",
    # no torch in the file
    """
for batch in loader:
    n = batch.item()
    send(batch.cpu(), device)
""",
    # synchronize to time each step; under the profiler; in a profiling branch
    """
import time
import torch
for x, y in loader:
    torch.cuda.synchronize()
    start = time.perf_counter()
    loss = model(x.cuda()).sum()
    loss.backward()
    optimizer.step()
    torch.cuda.synchronize()
    times.append(time.perf_counter() - start)
""",
    """
import torch
with torch.profiler.profile() as prof:
    for x in loader:
        out = model(x.to(device))
        torch.cuda.synchronize()
for x in loader:
    out = model(x.to(device))
    if args.profile:
        torch.cuda.synchronize()
""",
    # casts and moves that are not device-to-host copies; a model moved to the CPU
    """
import torch
for x, y in loader:
    x = x.to(device).type(torch.cuda.FloatTensor)
    y = y.to(torch.float16)
    loss = model(x).sum()
    loss.backward()
    optimizer.step()
model.to("cpu")
""",
    # element-by-element reads in an inner loop: AIP117 reports those
    """
import torch
for x, _ in loader:
    preds = model(x.cuda()).argmax(1)
    for i in range(len(preds)):
        counts[preds[i].item()] += 1
""",
]

INVALID = [
    Invalid(
        """
import torch
running_loss = 0.0
for x, y in train_loader:
    x, y = x.to(device), y.to(device)
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    running_loss += loss.item()
"""
    ),
    # alias import, method, self.model, several syncs; `.cpu().numpy()` counted once
    Invalid(
        """
import torch as T
class Evaluator:
    def run(self, loader):
        preds = []
        for x, _ in loader:
            out = self.model(x.cuda())
            preds.append(out.argmax(1).cpu().numpy())
            print(out)
            self.log(f"mean {T.mean(out)}")
            if bool(out.isnan().any()):
                break
        return preds
""",
        count=4,
    ),
    # nested function with its own training loop; float(loss)
    Invalid(
        """
from torch import nn
def main(device):
    model = nn.Linear(4, 2).to(device)
    def train_epoch(loader, opt):
        for x, y in loader:
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            history.append(float(loss))
    return train_epoch
"""
    ),
    # synchronize every step; hidden copies: .to("cpu") and .type(torch.FloatTensor)
    Invalid(
        """
import torch
from torch import cuda
for x, y in train_loader:
    out = model(x.to(device))
    loss = criterion(out, y.to(device))
    loss.backward()
    optimizer.step()
    cuda.synchronize()
    preds.append(out.to("cpu").numpy())
    probs.append(out.softmax(1).type(torch.FloatTensor))
""",
        count=3,
    ),
]
