"""AIP115 rebuilt-every-epoch."""

from __future__ import annotations

import libcst as cst

from aiperf_lint import walk
from aiperf_lint.dataloaders import module_int_constant
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import OPTIMIZER, LoopFrame, keyword_arg, names_in, target_names
from aiperf_lint.steps import enclosing_ifs, repeating_loop

_LOADER_MESSAGE = (
    "DataLoader built inside the epoch loop: its worker processes are started again every "
    "epoch; build it once before the loop (with `persistent_workers=True`)"
)
_OPTIMIZER_MESSAGE = (
    "`{name}(...)` built inside the epoch loop silently resets its state (momentum, Adam "
    "moments, step count) every epoch; build it once before the loop and change the "
    "learning rate through a scheduler or `param_groups`"
)
_STAGE_WORDS = ("freeze", "requires_grad")


class RebuiltEveryEpoch(Rule):
    """
    ## What it does
    Finds a `DataLoader(...)` with workers or a `torch.optim` optimizer built inside the epoch loop that wraps the batch loop.

    ## Why is this bad
    An optimizer built again every epoch starts from empty state: SGD momentum
    buffers, Adam's moment estimates and its bias-correction step count are
    thrown away, so every epoch trains as if from step 0. That changes the
    results (usually for the worse), not only the speed. A DataLoader built
    every epoch starts its worker processes again each time (fork, dataset
    copy, worker init): this rule's fixture pair measures that start-up on
    CPU (`aiperf-lint verify --rule AIP115`).

    Not reported: loops that are not named as epoch loops (cross-validation
    folds, experiments, configs), objects whose arguments change in the loop
    (per-epoch resampling, batch-size schedules, a new model per run),
    rebuilds under a condition (`if epoch == unfreeze_at:`), epoch loops that
    freeze or unfreeze parameters, loaders without workers (cheap to
    rebuild), and plain SGD without momentum (it has no state).

    ## Example
    ```python
    for epoch in range(epochs):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for x, y in loader:
            ...
    ```

    ## Use instead
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        for x, y in loader:
            ...
    ```

    ## Fix safety
    No fix: moving an optimizer out of the loop changes the training results
    (that is the point), and a loader may be rebuilt for reasons the rule
    cannot see.

    ## References
    - PyTorch `torch.optim` ("How to adjust learning rate"): https://pytorch.org/docs/stable/optim.html
    - PyTorch `DataLoader` documentation, `persistent_workers`: https://pytorch.org/docs/stable/data.html
    - No ruff rule covers this.
    """

    code = "AIP115"
    name = "rebuilt-every-epoch"
    message = _OPTIMIZER_MESSAGE
    triggers = (b"DataLoader", b"optim")
    trigger_all = ((b"torch",), (b"epoch",))  # only epoch-named loops are reported

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._stage_loops: dict[int, bool] = {}

    def visit_Call(self, node: cst.Call) -> None:
        loader = self.ctx.loader_call(node)
        if loader is not None:
            if self._workers_started(loader) and self._rebuilt_each_epoch(node):
                self.report(node, _LOADER_MESSAGE)
            return
        if self.ctx.kind_of(node) != OPTIMIZER or self._stateless_sgd(node):
            return
        if self._rebuilt_each_epoch(node, optimizer=True):
            name = self.ctx.qualified_name(node.func) or "optimizer"
            self.report(node, _OPTIMIZER_MESSAGE.format(name=name.rsplit(".", 1)[-1]))

    def _rebuilt_each_epoch(self, call: cst.Call, optimizer: bool = False) -> bool:
        """Directly in the body of an epoch loop, unconditionally, from loop-invariant inputs."""
        loops = self.ctx.statement_loops()
        loop = repeating_loop(self.ctx)
        if not loops or loop is None or loops[-1].node is not loop:
            return False
        frame = loops[-1]
        if not (frame.is_epoch_loop() and _named_for_epochs(frame)):
            return False
        if _ifs_inside(enclosing_ifs(self.ctx), loop):
            return False
        if any(arg.star or not frame.is_invariant(arg.value) for arg in call.args):
            return False
        return not (optimizer and self._changes_trainable_set(loop))

    def _workers_started(self, loader) -> bool:
        if loader.has_star_args:
            return False
        workers = loader.argument("num_workers")
        return workers is not None and module_int_constant(self.ctx, workers) != 0

    def _stateless_sgd(self, call: cst.Call) -> bool:
        if self.ctx.qualified_name(call.func) != "torch.optim.SGD":
            return False
        momentum = keyword_arg(call, "momentum")
        return momentum is None or (
            isinstance(momentum.value, (cst.Integer, cst.Float))
            and float(momentum.value.value) == 0.0
        )

    def _changes_trainable_set(self, loop: cst.CSTNode) -> bool:
        """Progressive unfreezing: the same `parameters()` differ from stage to stage."""
        key = id(loop)
        if key not in self._stage_loops:
            words = names_in(loop.body)
            self._stage_loops[key] = any(
                w in name.lower() for name in words for w in _STAGE_WORDS
            ) or bool(walk.find_all(loop.body, cst.Lambda))
        return self._stage_loops[key]


def _named_for_epochs(frame: LoopFrame) -> bool:
    node = frame.node
    if isinstance(node, cst.For):
        names = target_names(node.target) | names_in(node.iter)
    elif isinstance(node, cst.While):
        names = names_in(node.test)
    else:
        return False
    return any("epoch" in name.lower() for name in names)


def _ifs_inside(ifs: list[cst.If], loop: cst.CSTNode) -> bool:
    """Is any enclosing `if` nested inside the loop (rather than around it)?"""
    inside = {id(node) for node in walk.find_all(loop.body, cst.If)} if ifs else set()
    return any(id(branch) in inside for branch in ifs)


VALID = [
    # built once, before the epoch loop
    """
import torch
from torch.utils.data import DataLoader
loader = DataLoader(ds, batch_size=64, num_workers=4, persistent_workers=True)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(10):
    for x, y in loader:
        loss = model(x).sum()
        loss.backward()
        optimizer.step()
""",
    # cross-validation folds and experiments: each builds its own
    """
import torch
from torch.utils.data import DataLoader
for fold, (train_idx, val_idx) in enumerate(kfold.split(data)):
    loader = DataLoader(Subset(ds, train_idx), batch_size=64, num_workers=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in loader:
        train_step(x, y)
for cfg in configs:
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    for batch in train_loader:
        loss = net(batch).mean()
        loss.backward()
        opt.step()
""",
    # per-epoch resampling, a batch-size schedule, curriculum stages: the inputs change
    """
import torch
from torch.utils.data import DataLoader
for epoch in range(epochs):
    sampled = resample(ds, epoch)
    loader = DataLoader(sampled, batch_size=64, num_workers=4)
    val_loader = DataLoader(val_ds, batch_size=batch_sizes[epoch], num_workers=4)
    for x in loader:
        step(x)
""",
    # a conditional rebuild at a stage boundary; progressive unfreezing
    """
import torch
for epoch in range(epochs):
    if epoch == unfreeze_at:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    for x in loader:
        loss = model(x).sum()
        loss.backward()
        optimizer.step()
for epoch in range(epochs):
    for p in model.backbone.parameters():
        p.requires_grad = epoch >= 5
    optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()))
    for x in loader:
        train_step(x)
""",
    # no workers (cheap to rebuild), plain SGD (no state), a scheduler (not an optimizer)
    """
import torch
from torch.utils.data import DataLoader
for epoch in range(epochs):
    loader = DataLoader(ds, batch_size=64, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, 10)
    for x in loader:
        loss = model(x).sum()
        loss.backward()
        optimizer.step()
""",
    # inside the batch loop is another problem; a loop with no inner training loop
    """
import torch
for epoch in range(epochs):
    opt = torch.optim.Adam(model.parameters())
    train_one_epoch(model, opt)
""",
]

INVALID = [
    Invalid(
        """
import torch
for epoch in range(num_epochs):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
"""
    ),
    # aliases: `from torch import optim`, DataLoader from torch.utils.data as DL; while loop
    Invalid(
        """
from torch import optim
from torch.utils.data import DataLoader as DL
epoch = 0
while epoch < args.epochs:
    loader = DL(train_set, batch_size=32, shuffle=True, num_workers=args.workers)
    opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    for batch in loader:
        loss = net(batch).mean()
        loss.backward()
        opt.step()
    epoch += 1
""",
        count=2,
    ),
    # a method of a trainer class
    Invalid(
        """
import torch
class Trainer:
    def fit(self, epochs):
        for e in range(epochs):
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.lr)
            for batch in self.train_loader:
                self.step(batch)
"""
    ),
]
