"""AIP114 count-batches-by-iterating."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import DATALOADER, DATASET, dotted_name, positional_args

_MATERIALISERS = frozenset({"builtins.list", "builtins.tuple"})
_MAP_STYLE_DATASETS = frozenset({"torch.utils.data.TensorDataset", "torch.utils.data.Subset"})
_LENGTH_CHANGING_ARGS = ("sampler", "batch_sampler")


class CountBatchesByIterating(Rule):
    """
    ## What it does
    Finds `len(list(loader))`, `len([b for b in loader])` and `sum(1 for _ in loader)` on a DataLoader: counting batches by loading them all.

    ## Why is this bad
    The count runs a whole epoch: every item is read, transformed and
    collated (and with workers, the workers are started) only to be thrown
    away; `len(list(loader))` also holds every batch in memory at once.
    `len(loader)` answers from the sampler's length without loading anything.
    This rule's fixture pair measures the difference on CPU
    (`aiperf-lint verify --rule AIP114`).

    Not reported: a comparison of the two counts in an `assert` or a test
    function (`assert len(loader) == len(list(loader))` checks a property),
    counts of other iterables, and comprehensions that filter (`if` clauses).

    ## Example
    ```python
    n_batches = len(list(train_loader))
    ```

    ## Use instead
    ```python
    n_batches = len(train_loader)
    ```

    ## Fix safety
    Safe, and only offered when the name is bound to a `DataLoader(...)` over a
    map-style dataset known in this module (a `Dataset` subclass defined here, a
    `TensorDataset`), without a custom `sampler`/`batch_sampler`: then
    `len(loader)` is the number of batches the loader yields. For an
    `IterableDataset` the length may be undefined or an estimate, so the
    finding is reported without a fix.

    ## References
    - PyTorch `DataLoader.__len__`: https://pytorch.org/docs/stable/data.html#torch.utils.data.DataLoader
    - No ruff rule covers this (FURB/PERF rules do not know DataLoaders).
    """

    code = "AIP114"
    name = "count-batches-by-iterating"
    message = (
        "`{expr}` loads every batch only to count them; use `len({loader})` (the number of "
        "batches, from the sampler, without loading data)"
    )
    fix_kind = "sometimes"
    triggers = (b"len(", b"sum(")
    trigger_all = ((b"torch",),)  # is_maybe_loader needs a torch import

    def visit_Call(self, node: cst.Call) -> None:
        loader = self._counted_iterable(node)
        if loader is None or not self.ctx.is_maybe_loader(loader):
            return
        if self._property_check(loader):
            return
        text = cst.Module(body=[]).code_for_node(node)
        name = dotted_name(loader) or "loader"
        message = self.message.format(expr=text, loader=name)
        self.report(node, message, self._fix(node, loader))

    def _counted_iterable(self, call: cst.Call) -> cst.BaseExpression | None:
        """`len(list(x))`, `len(tuple(x))`, `len([... for _ in x])`, `sum(1 for _ in x)` -> x."""
        qname = self.ctx.qualified_name(call.func)
        if qname not in {"builtins.len", "builtins.sum"} or len(call.args) != 1:
            return None
        arg = call.args[0]
        if arg.star or arg.keyword is not None:
            return None
        value = arg.value
        if qname == "builtins.len":
            if (
                isinstance(value, cst.Call)
                and self.ctx.qualified_name(value.func) in _MATERIALISERS
            ):
                args = positional_args(value)
                return args[0].value if len(args) == 1 and len(value.args) == 1 else None
            return _plain_comprehension_iterable(value, cst.ListComp, counting=False)
        return _plain_comprehension_iterable(value, (cst.GeneratorExp, cst.ListComp), counting=True)

    def _property_check(self, loader: cst.BaseExpression) -> bool:
        """In an `assert`, a test function, or compared with `len(loader)` itself."""
        if any(isinstance(node, cst.Assert) for node in self.ctx.ancestors):
            return True
        frame = self.ctx.current_function()
        if frame is not None and frame.name.startswith("test"):
            return True
        for node in reversed(self.ctx.ancestors):
            if isinstance(node, cst.Comparison):
                return _compares_len_of(node, dotted_name(loader))
        return False

    def _fix(self, call: cst.Call, loader: cst.BaseExpression) -> Fix | None:
        if not self._known_map_style_loader(loader):
            return None
        if self.ctx.qualified_name(cst.Name("len")) != "builtins.len":
            return None
        replacement = call.with_changes(func=cst.Name("len"), args=[cst.Arg(loader)])
        return Fix("safe", {call: replacement}, description="len(loader)")

    def _known_map_style_loader(self, loader: cst.BaseExpression) -> bool:
        if not isinstance(loader, cst.Name) or self.ctx.kind_of(loader) != DATALOADER:
            return False
        binding = self.ctx.binding(loader.value)
        value = binding.value if binding is not None else None
        facts = self.ctx.loader_call(value) if isinstance(value, cst.Call) else None
        if facts is None or facts.has_star_args:
            return False
        if any(facts.argument(name) is not None for name in _LENGTH_CHANGING_ARGS):
            return False
        if facts.dataset_class is not None:
            return facts.dataset_class.kind == DATASET
        return facts.dataset_qualname in _MAP_STYLE_DATASETS


def _plain_comprehension_iterable(value, types, counting: bool) -> cst.BaseExpression | None:
    """The iterable of a one-`for`, unfiltered, synchronous comprehension
    (whose element is the literal `1` when `counting`)."""
    if not isinstance(value, types):
        return None
    comp = value.for_in
    if comp.inner_for_in is not None or comp.ifs or comp.asynchronous is not None:
        return None
    if counting and not (isinstance(value.elt, cst.Integer) and value.elt.value == "1"):
        return None
    return comp.iter


def _compares_len_of(comparison: cst.Comparison, name: str | None) -> bool:
    sides = [comparison.left] + [target.comparator for target in comparison.comparisons]
    for side in sides:
        if isinstance(side, cst.Call) and dotted_name(side.func) == "len" and len(side.args) == 1:
            if name is not None and dotted_name(side.args[0].value) == name:
                return True
    return False


VALID = [
    # the loader's own length
    """
from torch.utils.data import DataLoader
loader = DataLoader(ds, batch_size=32)
n = len(loader)
""",
    # a property check in a test, in an assert, and a bare comparison
    """
from torch.utils.data import DataLoader
def test_loader_length():
    loader = DataLoader(ds, batch_size=4)
    batches = len(list(loader))
    assert batches == 3
assert len(loader) == len(list(loader))
ok = len(list(train_loader)) == len(train_loader)
""",
    # counting other iterables: a list of files, lines, a generator of filtered items
    """
import torch
n_files = len(list(paths))
n_lines = sum(1 for _ in open("data.txt"))
n_batches_with_nan = sum(1 for b in loader if torch.isnan(b).any())
""",
    # a list of batches kept for later use is not only a count
    """
import torch
batches = list(loader)
for b in batches:
    train(b)
""",
    # not a loader, no torch
    """
n = len(list(loader))
""",
]

INVALID = [
    Invalid(
        """
import torch
from torch.utils.data import DataLoader, TensorDataset
train_loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
steps_per_epoch = len(list(train_loader))
""",
        fixed="""
import torch
from torch.utils.data import DataLoader, TensorDataset
train_loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
steps_per_epoch = len(train_loader)
""",
    ),
    # a Dataset subclass of this module; a generator count; module alias
    Invalid(
        """
import torch.utils.data as tud
class Images(tud.Dataset):
    def __len__(self):
        return 10
    def __getitem__(self, i):
        return i
dl = tud.DataLoader(Images(), batch_size=2, num_workers=2)
total = sum(1 for _ in dl)
""",
        fixed="""
import torch.utils.data as tud
class Images(tud.Dataset):
    def __len__(self):
        return 10
    def __getitem__(self, i):
        return i
dl = tud.DataLoader(Images(), batch_size=2, num_workers=2)
total = len(dl)
""",
    ),
    # an IterableDataset: reported, no fix (its length may be undefined)
    Invalid(
        """
from torch.utils.data import DataLoader, IterableDataset
class Stream(IterableDataset):
    def __iter__(self):
        yield from range(10)
loader = DataLoader(Stream(), batch_size=2)
n = len([batch for batch in loader])
"""
    ),
    # unknown dataset, a self attribute, a custom batch sampler: reported, no fix
    Invalid(
        """
import torch
from torch.utils.data import DataLoader
def steps(ds, sampler):
    loader = DataLoader(ds, batch_sampler=sampler)
    return len(list(loader)), len(tuple(self.val_loader)), len(list(DataLoader(ds)))
""",
        count=3,
    ),
]
