"""AIP106 cuda-training-without-amp."""

from __future__ import annotations

import re

import libcst as cst

from aiperf_lint.patterns import device_move
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import LoopFrame, call_name

# Identifiers and strings showing the file already chose its precision: autocast, scalers,
# apex/accelerate/deepspeed/Lightning precision settings, half-precision models, TF32.
_PRECISION_NAME = re.compile(
    r"^(autocast|GradScaler|half|bfloat16|float16|mixed_precision|Accelerator|"
    r"deepspeed|Fabric|apex|allow_tf32|set_float32_matmul_precision)$"
    r"|(^|_)(amp|fp16|bf16|fp8)(_|$)",
    re.IGNORECASE,
)
_PRECISION_STRING = re.compile(r"fp16|bf16|float16|16-mixed|fp8", re.IGNORECASE)


class CudaTrainingWithoutAmp(Rule):
    """
    ## What it does
    Finds CUDA training loops (a loop that moves its data with `.cuda()` /
    `.to(device)` and calls `backward()`) in files that never use mixed
    precision: no `torch.autocast` / `torch.amp`, no `GradScaler`, no half or
    bfloat16 model, no framework precision setting (Accelerate, Lightning,
    DeepSpeed, apex) and no TF32 switch anywhere in the file. Off by default:
    enable it with `--select AIP106` (or `extend-select`).

    ## Why is this bad
    In float32, matrix multiplications and convolutions run on the GPU's
    general-purpose units (or TF32 tensor cores only where enabled). Under
    `autocast` they run in bfloat16/float16 on tensor cores, whose peak
    throughput is many times higher (NVIDIA's A100 datasheet: 19.5 TFLOPS
    FP32, 312 TFLOPS BF16/FP16 dense), and the activations saved for backward
    take half the memory, which also allows larger batches. The gain exists
    only on GPUs with tensor cores; on a CPU, autocast is usually no faster.

    Not reported: CPU-only training (no move to a device, or a device known to be
    the CPU), and any file that mentions autocast, AMP or a precision setting,
    including in the function that calls the training loop (`with autocast():
    train(...)`) or through a flag (`use_amp`).

    ## Example
    ```python
    for x, y in loader:
        x, y = x.cuda(), y.cuda()
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    for x, y in loader:
        x, y = x.cuda(), y.cuda()
        optimizer.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    # float16 instead of bfloat16 also needs a torch.amp.GradScaler("cuda")
    ```

    ## Fix safety
    No fix: mixed precision changes the numerics. Some models need float32 for
    parts of the network (custom losses, large reductions), and float16 needs
    loss scaling; the author has to check convergence.

    ## References
    - PyTorch docs, "Automatic Mixed Precision package - torch.amp":
      https://pytorch.org/docs/stable/amp.html
    - PyTorch recipe, "Automatic Mixed Precision":
      https://pytorch.org/tutorials/recipes/recipes/amp_recipe.html
    - NVIDIA A100 datasheet (peak FP32 vs BF16/FP16 tensor-core throughput).
    - No ruff rule covers this.
    """

    code = "AIP106"
    name = "cuda-training-without-amp"
    message = (
        "CUDA training loop runs in float32: run the forward pass and loss under "
        '`torch.autocast("cuda", dtype=torch.bfloat16)` (float16 also needs '
        "`torch.amp.GradScaler`)"
    )
    default_enabled = False
    triggers = (b"backward",)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._precision_chosen: bool | None = None
        self._reported_loops: set[int] = set()
        self._moving_loops: dict[int, bool] = {}

    def visit_Call(self, node: cst.Call) -> None:
        if call_name(node) != "backward" or not isinstance(node.func, cst.Attribute):
            return
        loops = self.ctx.statement_loops()
        if not loops or id(loops[-1].node) in self._reported_loops:
            return
        if not any(self._moves_to_device(frame) for frame in loops):
            return
        if self._file_chose_precision():
            return
        self._reported_loops.add(id(loops[-1].node))
        self.report(node)

    def _moves_to_device(self, frame: LoopFrame) -> bool:
        key = id(frame.node)
        if key not in self._moving_loops:
            finder = _CallCollector()
            frame.node.body.visit(finder)
            self._moving_loops[key] = any(
                (move := device_move(self.ctx, call)) is not None and not move.to_cpu
                for call in finder.calls
            )
        return self._moving_loops[key]

    def _file_chose_precision(self) -> bool:
        if self._precision_chosen is None:
            finder = _PrecisionEvidence()
            self.ctx.module.visit(finder)
            self._precision_chosen = finder.found
        return self._precision_chosen


class _CallCollector(cst.CSTVisitor):
    def __init__(self) -> None:
        self.calls: list[cst.Call] = []

    def visit_Call(self, node: cst.Call) -> None:
        if call_name(node) in {"cuda", "to"}:
            self.calls.append(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False


class _PrecisionEvidence(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False

    def visit_Name(self, node: cst.Name) -> None:
        self.found = self.found or bool(_PRECISION_NAME.search(node.value))

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self.found = self.found or bool(_PRECISION_STRING.search(node.value))

    def on_visit(self, node: cst.CSTNode) -> bool:
        return not self.found and super().on_visit(node)


VALID = [
    # autocast in the loop
    """
import torch
for x, y in loader:
    x, y = x.cuda(), y.cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
""",
    # autocast in the caller
    """
import torch
def train_epoch(model, loader, device):
    for x, y in loader:
        x = x.to(device)
        loss = model(x).mean()
        loss.backward()

def main():
    with torch.autocast(device_type="cuda"):
        train_epoch(model, loader, "cuda")
""",
    # AMP behind a flag, GradScaler
    """
import torch
from contextlib import nullcontext
ctx = torch.amp.autocast("cuda") if args.use_amp else nullcontext()
scaler = torch.amp.GradScaler(enabled=args.use_amp)
for x, y in loader:
    x = x.to(device, non_blocking=True)
    with ctx:
        loss = criterion(model(x), y)
    scaler.scale(loss).backward()
""",
    # CPU-only training: no move, or a device known to be the CPU
    """
import torch
for x, y in loader:
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
""",
    """
import torch
device = torch.device("cpu")
for x, y in loader:
    x, y = x.to(device), y.to(device)
    loss = criterion(model(x), y)
    loss.backward()
""",
    # a dtype cast is not a move
    """
import torch
for x, y in loader:
    x = x.to(torch.float32)
    loss = criterion(model(x), y)
    loss.backward()
""",
    # precision chosen by a framework or a half model
    """
import torch
from accelerate import Accelerator
accelerator = Accelerator(mixed_precision="bf16")
for x, y in loader:
    x = x.to(accelerator.device)
    loss = criterion(model(x), y)
    accelerator.backward(loss)
""",
    """
import torch
model = model.cuda().half()
for x, y in loader:
    x = x.cuda().half()
    criterion(model(x), y).backward()
""",
    # backward outside any loop (a step function; its caller is not visible here)
    """
import torch
def step(batch):
    x = batch.cuda()
    model(x).sum().backward()
""",
]

INVALID = [
    Invalid(
        """
import torch
for epoch in range(10):
    for x, y in loader:
        x, y = x.cuda(), y.cuda()
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
"""
    ),
    Invalid(
        """
import torch
import torch.nn as nn

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = nn.Linear(10, 2).to(device)

def train(loader):
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        loss.backward()
"""
    ),
    Invalid(
        """
from torch.nn import DataParallel as DP

class Trainer:
    def fit(self):
        def one_epoch():
            for batch in self.loader:
                batch = {k: v.to(self.device) for k, v in batch.items()}
                self.model(**batch).loss.backward()
                self.optimizer.step()
        for _ in range(self.epochs):
            one_epoch()
"""
    ),
]
