"""AIP110 autograd-debug-mode-left-on."""

from __future__ import annotations

import libcst as cst

from aiperf_lint import walk
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import keyword_arg, positional_args

_SET_ANOMALY = frozenset(
    {"torch.autograd.set_detect_anomaly", "torch.autograd.anomaly_mode.set_detect_anomaly"}
)
_ANOMALY_CONTEXTS = frozenset(
    {"torch.autograd.detect_anomaly", "torch.autograd.anomaly_mode.detect_anomaly"}
)
_PROFILERS = frozenset({"torch.autograd.profiler.profile", "torch.autograd.profiler.emit_nvtx"})


class DebugModeInTraining(Rule):
    """
    ## What it does
    Finds autograd debugging and profiling modes left on in training code:
    `torch.autograd.set_detect_anomaly(True)`, `with torch.autograd.detect_anomaly():`,
    and `torch.autograd.profiler.profile()` / `emit_nvtx()` contexts wrapping a
    training loop (or opened on every step of one).

    ## Why is this bad
    Anomaly detection records a Python stack trace for every operation of the
    forward pass and checks every gradient of the backward pass for NaN, which
    the PyTorch docs say should only be enabled for debugging: it slows every
    step. Measured by the fixture pair (200 SGD steps of a 9-layer MLP of width
    64, batch 32, on a 2-core AMD EPYC CPU;
    `OMP_NUM_THREADS=1 aiperf-lint verify fixtures/AIP110_detect_anomaly_in_training`):
    2.03 s with `detect_anomaly()`, 428 ms without, 4.7x. The autograd profiler
    records an event per operator (and `emit_nvtx` an NVTX range per operator):
    useful for one profiling run, pure overhead in a real training run.

    Not reported: anomaly detection switched off (`set_detect_anomaly(False)`) or
    driven by a flag (`set_detect_anomaly(args.debug)`), and any of these modes
    inside a debugging or profiling branch (`if args.debug:`, `if cfg.profile:`)
    or a function named for it (`debug_step`, `profile_epoch`), in test functions
    (`test_*`), and `detect_anomaly(check_nan=False)`, which code uses on purpose
    to record where each operation was created. Profilers are
    reported only around or inside a training loop; never reported:
    `torch.autograd.profiler.record_function` (cheap labels) and
    `torch.profiler.profile`, whose `schedule=` is designed to stay in a training
    script and record only a few steps.

    ## Example
    ```python
    torch.autograd.set_detect_anomaly(True)
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    torch.autograd.set_detect_anomaly(args.detect_anomaly)  # off unless debugging
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Fix safety
    No fix: whether a debug mode was left on by mistake or is wanted for this
    run is the author's call; the usual change is to put it behind a flag.

    ## References
    - PyTorch docs, "Anomaly detection" (`detect_anomaly`: "This mode should be
      enabled only for debugging"): https://pytorch.org/docs/stable/autograd.html#anomaly-detection
    - PyTorch performance tuning guide, "Disable debugging APIs":
      https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
    - No ruff rule covers this.
    """

    code = "AIP110"
    name = "autograd-debug-mode-left-on"
    message = (
        "`{what}` slows every training step; enable it only while debugging "
        "(behind a flag such as `args.debug`) and leave it off otherwise"
    )
    triggers = (b"anomaly", b"profiler", b"emit_nvtx")

    def visit_Call(self, node: cst.Call) -> None:
        qname = self.ctx.qualified_name(node.func)
        if qname in _SET_ANOMALY and _turns_on(node) and not self._deliberate():
            self.report(node, self.message.format(what="set_detect_anomaly(True)"))

    def visit_WithItem(self, node: cst.WithItem) -> None:
        call = node.item
        if not isinstance(call, cst.Call) or self._deliberate():
            return
        qname = self.ctx.qualified_name(call.func) or ""
        anomaly = qname in _ANOMALY_CONTEXTS and not _traceback_only(call)
        if anomaly or (qname in _PROFILERS and self._around_training(call)):
            self.report(call, self.message.format(what=qname.rsplit(".", 1)[-1] + "()"))

    def _deliberate(self) -> bool:
        """A debugging/profiling branch or helper, or a test exercising the mode."""
        function = self.ctx.current_function()
        in_test = function is not None and function.name.startswith("test")
        return in_test or self.ctx.in_debug_branch()

    def _around_training(self, call: cst.Call) -> bool:
        """The profiled block contains a training loop, or the block runs on every step."""
        if keyword_arg(call, "enabled") is not None:
            return False  # `profile(enabled=args.profile)`: switched by a flag
        if self.ctx.in_hot_loop():
            return True
        with_node = self.ctx.parent()
        if not isinstance(with_node, cst.With):
            return False
        loops = [*walk.find_all(with_node.body, cst.For), *walk.find_all(with_node.body, cst.While)]
        return any(self.ctx.frame_for(loop).is_training_loop() for loop in loops)


def _is_name(expr: cst.BaseExpression, name: str) -> bool:
    return isinstance(expr, cst.Name) and expr.value == name


def _traceback_only(call: cst.Call) -> bool:
    """`detect_anomaly(check_nan=False)`: used on purpose to record forward stack traces."""
    check_nan = keyword_arg(call, "check_nan")
    return check_nan is not None and _is_name(check_nan.value, "False")


def _turns_on(call: cst.Call) -> bool:
    args = positional_args(call)
    mode = args[0].value if args else None
    if mode is None:
        keyword = keyword_arg(call, "mode")
        mode = keyword.value if keyword is not None else None
    return _is_name(mode, "True") if mode is not None else False


VALID = [
    # switched off, or driven by a flag
    """
import torch
torch.autograd.set_detect_anomaly(False)
torch.autograd.set_detect_anomaly(args.detect_anomaly)
""",
    # inside a debugging branch
    """
import torch
def main(args):
    if args.debug:
        torch.autograd.set_detect_anomaly(True)
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
""",
    """
import os
from torch import autograd
for x, y in loader:
    if os.environ.get("DEBUG_NANS"):
        with autograd.detect_anomaly():
            loss = criterion(model(x), y)
            loss.backward()
    else:
        loss = criterion(model(x), y)
        loss.backward()
""",
    # a profiling branch and a function named for profiling
    """
import torch
if cfg.profile:
    with torch.autograd.profiler.profile(use_cuda=True) as prof:
        for x, y in loader:
            loss = criterion(model(x), y)
            loss.backward()
""",
    """
import torch
def profile_training(model, loader):
    with torch.autograd.profiler.emit_nvtx():
        for x, y in loader:
            model(x).sum().backward()
""",
    # a profiler that does not wrap training (one inference call); record_function labels
    """
import torch
with torch.autograd.profiler.profile() as prof:
    model(x)
for x, y in loader:
    with torch.autograd.profiler.record_function("forward"):
        loss = model(x).sum()
    loss.backward()
""",
    # a profiler switched by a flag
    """
import torch
with torch.autograd.profiler.profile(enabled=args.profile):
    for x, y in loader:
        model(x).sum().backward()
""",
    # same names on another object
    """
class Checker:
    def set_detect_anomaly(self, on):
        self.on = on
checker = Checker()
checker.set_detect_anomaly(True)
""",
    # a test exercising the mode; traceback capture without NaN checks
    """
import torch
def test_anomaly_reports_nan():
    with torch.autograd.detect_anomaly():
        run_step()
def trace_ops(fn, *args):
    with torch.autograd.detect_anomaly(check_nan=False):
        return fn(*args)
""",
    # the else branch of `if not args.debug:` is the debug branch
    """
import torch
if not args.debug:
    pass
else:
    torch.autograd.set_detect_anomaly(True)
""",
]

INVALID = [
    Invalid(
        """
import torch
torch.autograd.set_detect_anomaly(True)
for x, y in loader:
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
"""
    ),
    Invalid(
        """
import torch.autograd as ag

class Trainer:
    def train_step(self, x, y):
        with ag.detect_anomaly():
            loss = self.criterion(self.model(x), y)
            loss.backward()
        self.optimizer.step()
"""
    ),
    Invalid(
        """
from torch.autograd import set_detect_anomaly as anomaly, detect_anomaly

def train(loader):
    anomaly(mode=True)
    def step(x):
        with detect_anomaly(check_nan=True):
            model(x).sum().backward()
    for x in loader:
        step(x)
""",
        count=2,
    ),
    Invalid(
        """
import torch
with torch.autograd.profiler.profile(use_cuda=True) as prof:
    for epoch in range(10):
        for x, y in train_loader:
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
"""
    ),
    # `if not args.debug:` body is the non-debug path
    Invalid(
        """
import torch
for x, y in loader:
    if not args.debug:
        with torch.autograd.profiler.emit_nvtx():
            loss = criterion(model(x), y)
            loss.backward()
"""
    ),
]
