"""AIP202 dataloader-no-pin-memory."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.dataloaders import (
    TENSOR_DATASET,
    LoaderCall,
    class_methods,
    moves_to_device,
    with_keyword_args,
)
from aiperf_lint.model import Fix
from aiperf_lint.rule import Invalid, Rule


class DataLoaderNoPinMemory(Rule):
    """
    ## What it does
    Finds DataLoaders without `pin_memory` in a module that moves its batches to CUDA.
    Moving batches: a `.to(device)` / `.cuda()` call inside a loop over a loader,
    in a module that targets CUDA (a `"cuda"` device string, `torch.cuda`,
    `torch.accelerator`, or `.cuda()`).

    ## Why is this bad
    A host-to-GPU copy from ordinary (pageable) memory is staged by the driver
    through a pinned buffer, synchronously. With `pin_memory=True` the loader
    puts each batch in page-locked memory on a background thread, so
    `.to("cuda", non_blocking=True)` is a direct DMA that can overlap with
    compute, and copies run at full bus bandwidth. The gain only exists on a
    GPU; the verifier's pair for this rule claims it on CUDA only.

    Not reported: modules that never target CUDA (CPU-only code; pinning would
    only cost a copy), loaders with `pin_memory` set either way or `**kwargs`
    that may carry it, and datasets that already produce CUDA tensors (pinning
    a CUDA tensor is an error).

    ## Example
    ```python
    loader = DataLoader(train_set, batch_size=64, num_workers=4)
    for x, y in loader:
        x, y = x.to("cuda", non_blocking=True), y.to("cuda", non_blocking=True)
    ```

    ## Use instead
    ```python
    loader = DataLoader(train_set, batch_size=64, num_workers=4, pin_memory=True)
    ```

    ## Fix safety
    Safe: batches are the same tensors, in page-locked host memory. Pinned
    memory is a limited resource: very large batches with many workers pin a
    lot of host RAM. If the dataset (imported, not visible here) returns CUDA
    tensors already, pinning raises; the rule skips datasets it can see doing so.

    ## References
    - PyTorch, "Memory Pinning": https://pytorch.org/docs/stable/data.html#memory-pinning
    - PyTorch tutorial, "A guide on good usage of non_blocking and pin_memory()": https://pytorch.org/tutorials/intermediate/pinmem_nonblock.html
    - No ruff rule covers this.
    """

    code = "AIP202"
    name = "dataloader-no-pin-memory"
    message = (
        "DataLoader feeds batches that are moved to CUDA from pageable memory; set "
        "`pin_memory=True` (and move them with `non_blocking=True`)"
    )
    fix_kind = "safe"
    triggers = (b"DataLoader",)

    def visit_Call(self, node: cst.Call) -> None:
        loader = self.ctx.loader_call(node)
        if loader is None or loader.has_star_args or loader.argument("pin_memory") is not None:
            return
        if not self.ctx.pipeline().moves_batches_to_cuda:
            return
        if self._dataset_on_device(loader) or self._collate_on_device(loader):
            return
        new_call = with_keyword_args(node, {"pin_memory": cst.Name("True")})
        self.report(node, fix=Fix("safe", {node: new_call}, description="pin batch memory"))

    def _dataset_on_device(self, loader: LoaderCall) -> bool:
        source = loader.dataset_source
        if loader.dataset_qualname == TENSOR_DATASET and isinstance(source, cst.Call):
            values = [arg.value for arg in source.args]
            sources = [self._bound_value(v) for v in values]
            return moves_to_device(values + [s for s in sources if s is not None])
        if loader.dataset_class is not None:
            return moves_to_device(list(class_methods(self.ctx, loader.dataset_class).values()))
        return False

    def _collate_on_device(self, loader: LoaderCall) -> bool:
        collate = loader.argument("collate_fn")
        if collate is None:
            return False
        function = self.ctx.resolve_function(collate)
        return moves_to_device([function if function is not None else collate])

    def _bound_value(self, expr: cst.BaseExpression):
        if isinstance(expr, cst.Name):
            binding = self.ctx.binding(expr.value)
            return binding.value if binding is not None else None
        return None


_TRAIN = """
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
for epoch in range(3):
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        step(x, y)
"""

VALID = [
    # CPU-only module: moving to "cpu" / an unknown device
    """
import torch
from torch.utils.data import DataLoader
loader = DataLoader(train_set, batch_size=64)
for x, y in loader:
    x = x.to("cpu")
""",
    """
from torch.utils.data import DataLoader
def train(train_set, device):
    loader = DataLoader(train_set, batch_size=64)
    for x, y in loader:
        x, y = x.to(device), y.to(device)
""",
    # pin_memory already set (either way), or possibly in **kwargs
    "import torch\nfrom torch.utils.data import DataLoader\n"
    "loader = DataLoader(train_set, batch_size=64, pin_memory=True)\n" + _TRAIN,
    "import torch\nfrom torch.utils.data import DataLoader\n"
    "loader = DataLoader(train_set, batch_size=64, pin_memory=False)\n" + _TRAIN,
    "import torch\nfrom torch.utils.data import DataLoader\n"
    "loader = DataLoader(train_set, **cfg.loader)\n" + _TRAIN,
    # a GPU module whose loop only converts dtypes (no transfer of batches)
    """
import torch
from torch.utils.data import DataLoader
model = Net().cuda()
loader = DataLoader(train_set, batch_size=64)
for x, y in loader:
    x = x.to(torch.float16)
""",
    # the dataset already lives on the GPU: pinning would raise
    """
import torch
from torch.utils.data import DataLoader, TensorDataset
x = torch.randn(1000, 8).cuda()
y = torch.randn(1000).cuda()
loader = DataLoader(TensorDataset(x, y), batch_size=64)
for xb, yb in loader:
    xb = xb.to("cuda")
""",
    # a DataLoader-named class that is not torch's
    """
import torch
from mylib import DataLoader
loader = DataLoader(train_set)
for x in loader:
    x = x.cuda()
""",
]

INVALID = [
    Invalid(
        "import torch\nfrom torch.utils.data import DataLoader\n"
        "loader = DataLoader(train_set, batch_size=64, num_workers=4)\n" + _TRAIN,
        fixed="import torch\nfrom torch.utils.data import DataLoader\n"
        "loader = DataLoader(train_set, batch_size=64, num_workers=4, pin_memory=True)\n" + _TRAIN,
    ),
    # `import torch.utils.data as tud`, `.cuda()`, loader built in a function
    Invalid(
        """
import torch.utils.data as tud

def fit(model, ds):
    loader = tud.DataLoader(
        ds,
        batch_size=32,
    )
    for batch in loader:
        loss = model(batch.cuda(non_blocking=True))
""",
        fixed="""
import torch.utils.data as tud

def fit(model, ds):
    loader = tud.DataLoader(
        ds,
        batch_size=32,
        pin_memory=True,
    )
    for batch in loader:
        loss = model(batch.cuda(non_blocking=True))
""",
    ),
    # fully qualified name; the DataLoader call comes before the CUDA code
    Invalid(
        """
import torch
train_dl = torch.utils.data.DataLoader(ds, 16)
for epoch in range(10):
    for xb in train_dl:
        xb = xb.to("cuda:0")
"""
    ),
    # an alias; batches moved inside a dict comprehension
    Invalid(
        """
from torch.utils.data import DataLoader as DL
dl = DL(tokenized, batch_size=8, collate_fn=collate)
for batch in dl:
    batch = {k: v.to("cuda") for k, v in batch.items()}
"""
    ),
]
