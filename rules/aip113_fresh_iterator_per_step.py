"""AIP113 fresh-iterator-per-step."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import dotted_name, positional_args
from aiperf_lint.steps import repeating_loop


class FreshIteratorPerStep(Rule):
    """
    ## What it does
    Finds `next(iter(loader))` inside a loop body: a new DataLoader iterator is built on every iteration.

    ## Why is this bad
    Each `iter(loader)` starts a new pass: with `num_workers > 0` it starts
    the worker processes (fork, dataset copy, worker init), prefetches several
    batches, returns one and tears the workers down again. It also restarts
    the sampler, so without shuffling every step sees the same first batch.
    The search loops that draw a validation batch per step are the common real
    case. This rule's fixture pair (2 workers, 16 items per batch) shows the
    gain on CPU; measure it with `aiperf-lint verify --rule AIP113`.

    Not reported: `next(iter(loader))` before the loop (showing a sample
    batch), as the loop's own iterable (`for x in next(iter(dl)):` runs once),
    in a `StopIteration` handler, under a periodic condition
    (`if step % 1000 == 0:`), and loops over several loaders
    (`for dl in loaders: next(iter(dl))`).

    ## Example
    ```python
    for step in range(steps):
        x, y = next(iter(val_loader))
        ...
    ```

    ## Use instead
    ```python
    batches = iter(val_loader)
    for step in range(steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(val_loader)
            x, y = next(batches)
        ...
    ```

    ## Fix safety
    No fix: where to restart the iterator, and whether the same batch was
    wanted on purpose, are decisions the rule cannot make.

    ## References
    - PyTorch `DataLoader` documentation ("Multi-process data loading"): https://pytorch.org/docs/stable/data.html#multi-process-data-loading
    - No ruff rule covers this.
    """

    code = "AIP113"
    name = "fresh-iterator-per-step"
    message = (
        "`next(iter({loader}))` builds a new loader iterator on every iteration (workers "
        "started and torn down, sampling restarted); create the iterator once before the loop "
        "and call `next()` on it, handling `StopIteration`"
    )
    triggers = (b"iter(",)
    trigger_all = ((b"torch",),)  # is_maybe_loader needs a torch import

    def visit_Call(self, node: cst.Call) -> None:
        loader = self._fresh_iterator_of(node)
        if loader is None or not self.ctx.is_maybe_loader(loader):
            return
        if self.ctx.in_except_handler() or self.ctx.in_periodic_guard():
            return
        loop = repeating_loop(self.ctx)
        if loop is None or not self.ctx.frame_for(loop).is_invariant(loader):
            return
        self.report(node, self.message.format(loader=dotted_name(loader) or "loader"))

    def _fresh_iterator_of(self, call: cst.Call) -> cst.BaseExpression | None:
        """`next(iter(x))` / `next(iter(x), default)` -> x."""
        args = positional_args(call)
        if self.ctx.qualified_name(call.func) != "builtins.next" or not 1 <= len(args) <= 2:
            return None
        inner = args[0].value
        if (
            not isinstance(inner, cst.Call)
            or self.ctx.qualified_name(inner.func) != "builtins.iter"
        ):
            return None
        inner_args = positional_args(inner)
        return inner_args[0].value if len(inner_args) == 1 and len(inner.args) == 1 else None


VALID = [
    # once before the loop: a sample batch
    """
import torch
images, labels = next(iter(train_loader))
for epoch in range(10):
    for x, y in train_loader:
        step(x, y)
""",
    # the loop's own iterable is evaluated once
    """
import torch
for sample in next(iter(dl)):
    show(sample)
""",
    # the iterator created once, restarted on StopIteration
    """
import torch
batches = iter(loader)
for step in range(1000):
    try:
        x = next(batches)
    except StopIteration:
        batches = iter(loader)
        x = next(batches)
""",
    # one batch from each of several loaders
    """
import torch
for name, dl in loaders.items():
    x, y = next(iter(dl))
    print(name, x.shape)
""",
    # periodic visualisation, and a loop inside a nested def
    """
import torch
for step in range(steps):
    if step % 1000 == 0:
        plot(next(iter(val_loader)))
    def peek():
        return next(iter(val_loader))
""",
    # not a loader: a list, a dict's values, a local class
    """
import torch
for step in range(10):
    first = next(iter(names))
    key = next(iter(config.values()))
""",
    # no torch in the module
    """
for step in range(10):
    batch = next(iter(loader))
""",
]

INVALID = [
    Invalid(
        """
import torch
for step in range(steps):
    x, y = next(iter(val_loader))
    loss = model(x.cuda()).sum()
"""
    ),
    # a known DataLoader bound to any name, through an alias; a while loop
    Invalid(
        """
from torch.utils.data import DataLoader as DL
data = DL(dataset, batch_size=32, num_workers=4, shuffle=True)
while not done:
    batch = next(iter(data), None)
    done = search_step(batch)
"""
    ),
    # self attribute in a method's loop
    Invalid(
        """
import torch
class Search:
    def run(self):
        for arch in self.candidates:
            inputs, targets = next(iter(self.valid_loader))
            self.score(arch, inputs, targets)
"""
    ),
]
