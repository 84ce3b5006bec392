"""AIP109 torch-data-parallel."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.rule import Invalid, Rule

_DATA_PARALLEL = frozenset(
    {
        "torch.nn.DataParallel",
        "torch.nn.parallel.DataParallel",
        "torch.nn.parallel.data_parallel.DataParallel",
        "torch.nn.parallel.data_parallel",
        "torch.nn.parallel.data_parallel.data_parallel",
    }
)


class DataParallel(Rule):
    """
    ## What it does
    Finds models wrapped in `torch.nn.DataParallel` (or run through the functional
    `torch.nn.parallel.data_parallel`).

    ## Why is this bad
    `DataParallel` drives every GPU from one Python process. On each forward it
    scatters the batch from the first GPU, copies the whole model to every other
    GPU again (`replicate`), runs the replicas in threads that share one GIL, and
    gathers all outputs back on the first GPU, where the loss and the optimizer
    step then run alone. The first GPU does more work and holds more memory than
    the others, and the per-step Python and copy overhead grows with the number of
    GPUs. `DistributedDataParallel` runs one process per GPU, keeps a model copy
    on each, and overlaps the gradient all-reduce with the backward pass; the
    PyTorch documentation recommends it even on a single machine. Even with one
    visible GPU, `DataParallel.forward` checks every parameter's device and
    scatters the inputs on every call.

    The gain only exists on GPUs: with no GPU, `DataParallel` calls the model
    directly.

    Not reported: `isinstance(model, nn.DataParallel)` checks and `.module`
    unwrapping (code that handles models wrapped elsewhere), subclasses, and
    `DistributedDataParallel`.

    ## Example
    ```python
    model = nn.DataParallel(model).cuda()
    ```

    ## Use instead
    ```python
    # launched with `torchrun --nproc_per_node=N train.py`
    torch.distributed.init_process_group("nccl")
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    model = DistributedDataParallel(model.to(local_rank), device_ids=[local_rank])
    # and a DistributedSampler for the DataLoader
    ```

    ## Fix safety
    No fix: DDP needs a launcher, a process group and a per-process data sampler;
    the batch size per step changes meaning (per process instead of global).

    ## References
    - PyTorch docs, `DataParallel` ("It is recommended to use
      DistributedDataParallel instead"):
      https://pytorch.org/docs/stable/generated/torch.nn.DataParallel.html
    - CUDA semantics, "Use nn.parallel.DistributedDataParallel instead of
      multiprocessing or nn.DataParallel":
      https://pytorch.org/docs/stable/notes/cuda.html
    - No ruff rule covers this.
    """

    code = "AIP109"
    name = "torch-data-parallel"
    message = (
        "`{name}` runs all GPUs from one process (GIL-bound scatter/replicate/gather every "
        "step); use `DistributedDataParallel` with one process per GPU (`torchrun`)"
    )
    triggers = (b"DataParallel", b"data_parallel")

    def visit_Call(self, node: cst.Call) -> None:
        qname = self.ctx.qualified_name(node.func)
        if qname in _DATA_PARALLEL:
            shown = cst.Module(body=[]).code_for_node(node.func)
            self.report(node, self.message.format(name=shown))


VALID = [
    # DistributedDataParallel is the recommendation
    """
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
model = DDP(model.to(rank), device_ids=[rank])
""",
    # unwrapping a model wrapped elsewhere
    """
import torch.nn as nn
def unwrap(model):
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        return model.module
    return model
""",
    # a subclass declaration is not a wrap (its instantiation is a local class)
    """
import torch.nn as nn
class Patched(nn.DataParallel):
    def __getattr__(self, name):
        return super().__getattr__(name)
""",
    # another library's DataParallel (PyTorch Geometric's graph batching)
    """
from torch_geometric.nn import DataParallel
model = DataParallel(model)
""",
    # a local class with the same name
    """
import torch
class DataParallel:
    def __init__(self, m):
        self.m = m
model = DataParallel(net)
""",
]

INVALID = [
    Invalid(
        """
import torch
model = torch.nn.DataParallel(model, device_ids=[0, 1]).cuda()
"""
    ),
    Invalid(
        """
import torch
import torch.nn as nn

class Trainer:
    def __init__(self, model):
        if torch.cuda.device_count() > 1:
            model = nn.DataParallel(model)
        self.model = model.cuda()
"""
    ),
    Invalid(
        """
from torch.nn import DataParallel as DP
def build(net):
    def wrap():
        return DP(net)
    return wrap()
"""
    ),
    Invalid(
        """
from torch.nn.parallel import data_parallel
out = data_parallel(model, batch, device_ids=[0, 1])
"""
    ),
]
