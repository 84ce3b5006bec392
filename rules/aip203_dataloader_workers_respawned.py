"""AIP203 dataloader-workers-respawned."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.dataloaders import LoaderCall, module_int_constant, with_keyword_args
from aiperf_lint.model import Fix
from aiperf_lint.patterns import is_simple_reference
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import dotted_name


class DataLoaderWorkersRespawned(Rule):
    """
    ## What it does
    Finds DataLoaders with workers but no `persistent_workers=True` that are iterated every epoch.
    Workers: `num_workers > 0`. Iterated every epoch: the same loader object is
    iterated in a loop nested in another loop,
    passed to a function called inside an epoch loop (`train_one_epoch(model,
    loader)`), iterated by a method called in a loop, handed to
    `trainer.fit(...)`, or returned from a Lightning `train_dataloader` /
    `val_dataloader` hook.

    ## Why is this bad
    Without `persistent_workers=True` the loader shuts its workers down at the
    end of every pass and starts new ones (process start, dataset copy, worker
    init) at the start of the next: a pause at every epoch boundary. The
    verifier measured `persistent_workers=True` alone at 1.11x over 3 epochs of
    256 items (`../shared/notes/speedups-cpu.md`, pair 8); the gain grows when
    epochs are short or worker start-up is costly (see this rule's fixture pair).

    Not reported: loaders built inside the loop (a new loader every pass gains
    nothing), loaders whose dataset the epoch loop mutates (`ds.set_epoch(e)`,
    `ds.attr = ...`: persistent workers would keep serving their old copy),
    `num_workers=0`, and `**kwargs` that may carry the setting.

    ## Example
    ```python
    loader = DataLoader(train_set, batch_size=64, num_workers=4)
    for epoch in range(epochs):
        for x, y in loader:
            ...
    ```

    ## Use instead
    ```python
    loader = DataLoader(train_set, batch_size=64, num_workers=4, persistent_workers=True)
    ```

    ## Fix safety
    Safe, offered when `num_workers` is a literal or a module constant
    (`persistent_workers=True`) or a plain name/attribute
    (`persistent_workers=args.workers > 0`, valid for 0 workers too); no fix for
    other expressions. Workers and their dataset copies stay alive between
    epochs (memory held), and changes the main process makes to the dataset
    after the first epoch are not seen by the workers: the rule stays silent
    when it sees the epoch loop mutate the dataset, but cannot see mutations
    hidden in other modules.

    ## References
    - PyTorch `DataLoader` documentation, `persistent_workers`: https://pytorch.org/docs/stable/data.html#torch.utils.data.DataLoader
    - No ruff rule covers this.
    """

    code = "AIP203"
    name = "dataloader-workers-respawned"
    message = (
        "DataLoader with worker processes is iterated every epoch without "
        "`persistent_workers=True`: its workers are shut down and re-spawned each epoch"
    )
    fix_kind = "sometimes"
    triggers = (b"DataLoader",)

    def visit_Call(self, node: cst.Call) -> None:
        loader = self.ctx.loader_call(node)
        if loader is None or loader.has_star_args:
            return
        if loader.argument("persistent_workers") is not None:
            return
        workers = loader.argument("num_workers")
        if workers is None or module_int_constant(self.ctx, workers) == 0:
            return
        if (
            isinstance(workers, (cst.Integer, cst.UnaryOperation))
            and module_int_constant(self.ctx, workers) is None
        ):
            return  # a negative or odd literal: leave it to torch's own error
        pipeline = self.ctx.pipeline()
        if not pipeline.iterated_per_epoch(loader) or self._dataset_mutated(loader):
            return
        self.report(node, fix=self._fix(node, workers))

    def _dataset_mutated(self, loader: LoaderCall) -> bool:
        mutated = self.ctx.pipeline().mutated_in_loops
        dataset = dotted_name(loader.dataset) if loader.dataset is not None else None
        own = f"{loader.bound_to}.dataset" if loader.bound_to else None
        return bool({dataset, own} & mutated)

    def _fix(self, call: cst.Call, workers: cst.BaseExpression) -> Fix | None:
        if module_int_constant(self.ctx, workers) is not None:
            value: cst.BaseExpression = cst.Name("True")
        elif is_simple_reference(workers):
            value = cst.Comparison(
                left=workers,
                comparisons=[cst.ComparisonTarget(cst.GreaterThan(), cst.Integer("0"))],
            )
        else:
            return None
        new_call = with_keyword_args(call, {"persistent_workers": value})
        return Fix("safe", {call: new_call}, description="keep workers between epochs")


VALID = [
    # iterated once (no epoch loop)
    """
from torch.utils.data import DataLoader
loader = DataLoader(ds, batch_size=64, num_workers=4)
for x in loader:
    predict(x)
""",
    # already persistent, or no workers
    """
from torch.utils.data import DataLoader
loader = DataLoader(ds, batch_size=64, num_workers=4, persistent_workers=True)
for epoch in range(10):
    for x in loader:
        step(x)
""",
    """
from torch.utils.data import DataLoader
NUM_WORKERS = 0
loader = DataLoader(ds, batch_size=64, num_workers=NUM_WORKERS)
for epoch in range(10):
    for x in loader:
        step(x)
""",
    # the loader is rebuilt every epoch (per-epoch resampling): nothing to keep
    """
from torch.utils.data import DataLoader
for epoch in range(10):
    loader = DataLoader(resample(ds, epoch), batch_size=64, num_workers=4)
    for x in loader:
        step(x)
""",
    # the epoch loop mutates the dataset: persistent workers would miss it
    """
from torch.utils.data import DataLoader
train_set = Curriculum()
loader = DataLoader(train_set, batch_size=64, num_workers=4)
for epoch in range(10):
    train_set.set_epoch(epoch)
    for x in loader:
        step(x)
""",
    # **kwargs may carry persistent_workers
    """
from torch.utils.data import DataLoader
loader = DataLoader(ds, num_workers=4, **extra)
for epoch in range(10):
    for x in loader:
        step(x)
""",
    # built, but never iterated in the epoch loop
    """
from torch.utils.data import DataLoader
def main():
    loader = DataLoader(ds, num_workers=4)
    for epoch in range(10):
        log(epoch)
""",
]

INVALID = [
    Invalid(
        """
from torch.utils.data import DataLoader
loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=4)
for epoch in range(10):
    for x, y in loader:
        step(x, y)
""",
        fixed="""
from torch.utils.data import DataLoader
loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=4, persistent_workers=True)
for epoch in range(10):
    for x, y in loader:
        step(x, y)
""",
    ),
    # num_workers from args; loader passed to a per-epoch function
    Invalid(
        """
import torch.utils.data as tud

def main(args):
    train_loader = tud.DataLoader(train_set, batch_size=args.bs, num_workers=args.workers)
    for epoch in range(args.epochs):
        train_one_epoch(model, train_loader, optimizer)
""",
        fixed="""
import torch.utils.data as tud

def main(args):
    train_loader = tud.DataLoader(train_set, batch_size=args.bs, num_workers=args.workers, persistent_workers=args.workers > 0)
    for epoch in range(args.epochs):
        train_one_epoch(model, train_loader, optimizer)
""",
    ),
    # trainer class: `self.loader` iterated by a method called in the epoch loop
    Invalid(
        """
import torch
class Trainer:
    def __init__(self, ds):
        self.loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2)

    def train_epoch(self):
        for batch in self.loader:
            self.step(batch)

    def fit(self, epochs):
        for _ in range(epochs):
            self.train_epoch()
"""
    ),
    # an alias; a loader built by a helper; a complex num_workers: report, no fix
    Invalid(
        """
import os
from torch.utils.data import DataLoader as DL
def make_loader(ds):
    return DL(ds, batch_size=8, num_workers=os.cpu_count() // 2)
dl = make_loader(ds)
while epoch < max_epochs:
    for batch in dl:
        step(batch)
    epoch += 1
"""
    ),
    # Lightning hook
    Invalid(
        """
import lightning as L
from torch.utils.data import DataLoader
class Model(L.LightningModule):
    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=32, num_workers=8)
"""
    ),
]
