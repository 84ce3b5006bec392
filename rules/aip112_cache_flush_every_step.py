"""AIP112 cache-flush-every-step."""

from __future__ import annotations

import libcst as cst

from aiperf_lint import walk
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import dotted_name, names_in
from aiperf_lint.steps import enclosing_ifs, step_loop

_FLUSHES = frozenset(
    {
        "torch.cuda.empty_cache",
        "torch.mps.empty_cache",
        "torch.xpu.empty_cache",
        "torch.cuda.ipc_collect",
        "gc.collect",
    }
)
_HELPER_DEPTH = 3


class CacheFlushEveryStep(Rule):
    """
    ## What it does
    Finds `torch.cuda.empty_cache()` or `gc.collect()` run on every step of a training/inference loop or on every request.

    Also through same-module helpers (`torch_gc()`, `clear_torch_cache()`)
    whose body makes such a call.

    ## Why is this bad
    `empty_cache()` waits for the device and hands the caching allocator's free
    blocks back to the driver; the next step then allocates the same blocks again
    through `cudaMalloc`, which synchronizes. `gc.collect()` walks every Python
    object (with torch and a model loaded, tens to hundreds of milliseconds).
    Neither frees memory that is still referenced, so calling them every step
    costs time and rarely avoids an out-of-memory error. The cost only shows on
    a GPU (the CPU allocator has no cache to flush): this rule's fixture pair
    claims its gain on CUDA only.

    Not reported: calls after the loop, once per epoch around the batch loop,
    in an `except` block (out-of-memory recovery), under a periodic condition
    (`if step % 100 == 0:`) or a memory-threshold check
    (`if torch.cuda.memory_reserved() > limit:`).

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x.cuda()), y.cuda())
        loss.backward()
        optimizer.step()
        torch.cuda.empty_cache()
    ```

    ## Use instead
    ```python
    for epoch in range(epochs):
        for x, y in loader:
            ...
        torch.cuda.empty_cache()  # once per epoch, if at all
    ```

    ## Fix safety
    No fix: whether a flush is needed at all (another process sharing the GPU,
    fragmentation) is a decision the rule cannot make.

    ## References
    - PyTorch CUDA semantics, "Memory management": https://pytorch.org/docs/stable/notes/cuda.html#memory-management
    - No ruff rule covers this.
    """

    code = "AIP112"
    name = "cache-flush-every-step"
    message = (
        "{what} runs on every {unit}: it stalls the device and discards cached memory that "
        "the next {unit} allocates again; flush once after the loop, or only on out-of-memory"
    )
    triggers = (b"empty_cache", b"collect(")  # a helper's body holds one of these too
    trigger_all = ((b"torch",),)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._helper_flushes: dict[int, str | None] = {}

    def visit_Call(self, node: cst.Call) -> None:
        what = self._flush(node)
        if what is None or self.ctx.in_except_handler() or self.ctx.in_periodic_guard():
            return
        if _memory_guarded(enclosing_ifs(self.ctx)):
            return
        if step_loop(self.ctx) is not None:
            unit = "step"
        else:
            frame = self.ctx.current_function()
            if frame is None or not frame.is_request_handler():
                return
            unit = "request"
        self.report(node, self.message.format(what=what, unit=unit))

    def _flush(self, call: cst.Call, depth: int = 0) -> str | None:
        """The flush this call makes, directly or through a same-module helper."""
        qname = self.ctx.qualified_name(call.func)
        if qname in _FLUSHES:
            return f"`{qname}()`"
        helper = self.ctx.resolve_function(call.func)
        if helper is None or depth >= _HELPER_DEPTH:
            return None
        key = id(helper)
        if key not in self._helper_flushes:
            self._helper_flushes[key] = None  # recursion guard
            self._helper_flushes[key] = self._helper_flush(helper, depth)
        inner = self._helper_flushes[key]
        return f"`{dotted_name(call.func)}()` (it calls {inner})" if inner else None

    def _helper_flush(self, helper: cst.FunctionDef, depth: int) -> str | None:
        for inner in walk.find_all(helper.body, cst.Call):
            qname = self.ctx.qualified_name(inner.func)
            if qname in _FLUSHES:
                return f"`{qname}()`"
            if isinstance(inner.func, cst.Name) and inner.func.value in self.ctx.functions:
                nested = self.ctx.functions[inner.func.value]
                if nested is not helper and depth + 1 < _HELPER_DEPTH:
                    found = self._helper_flush(nested, depth + 1)
                    if found:
                        return found
        return None


def _memory_guarded(ifs: list[cst.If]) -> bool:
    """Under `if torch.cuda.memory_reserved() > limit:` or `if low_mem:`-style conditions."""
    return any(
        any("mem" in name.lower() or "oom" in name.lower() for name in names_in(branch.test))
        for branch in ifs
    )


VALID = [
    # once per epoch, after the batch loop
    """
import torch
for epoch in range(10):
    for x, y in loader:
        loss = criterion(model(x.cuda()), y.cuda())
        loss.backward()
        optimizer.step()
    torch.cuda.empty_cache()
""",
    # after the loop
    """
import gc, torch
for x, y in train_loader:
    loss = model(x.cuda()).sum()
    loss.backward()
    optimizer.step()
gc.collect()
torch.cuda.empty_cache()
""",
    # out-of-memory recovery
    """
import torch
for x, y in loader:
    try:
        loss = model(x.cuda()).sum()
        loss.backward()
        optimizer.step()
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
""",
    # periodic, and a memory-threshold guard
    """
import gc, torch
for step, batch in enumerate(loader):
    out = model(batch.cuda())
    if step % 500 == 0:
        gc.collect()
    if torch.cuda.memory_reserved() > LIMIT:
        torch.cuda.empty_cache()
""",
    # a loop that is not a training/inference loop (one model per checkpoint)
    """
import gc, torch
for path in checkpoints:
    model = torch.load(path)
    evaluate(model)
    del model
    gc.collect()
""",
    # a method named like the flush on another object; a helper that does not flush
    """
import torch
def log_metrics():
    logger.flush()
for x, y in loader:
    loss = model(x.cuda()).sum()
    loss.backward()
    optimizer.step()
    cache.collect()
    log_metrics()
""",
    # a plain function (not a request handler) that flushes once
    """
import torch
def predict(x):
    out = model(x)
    torch.cuda.empty_cache()
    return out
""",
]

INVALID = [
    Invalid(
        """
import torch
for x, y in train_loader:
    loss = criterion(model(x.cuda()), y.cuda())
    loss.backward()
    optimizer.step()
    torch.cuda.empty_cache()
"""
    ),
    # gc.collect by alias import, inside a method's training loop
    Invalid(
        """
from gc import collect
import torch
class Trainer:
    def fit(self):
        for batch in self.loader:
            loss = self.model(batch).mean()
            loss.backward()
            self.optimizer.step()
            collect()
"""
    ),
    # a same-module helper, called per request in a FastAPI endpoint
    Invalid(
        """
import gc
import torch
from fastapi import FastAPI
app = FastAPI()
def torch_gc():
    if torch.cuda.is_available():
        with torch.cuda.device("cuda:0"):
            torch.cuda.empty_cache()
            torch.cuda.ipc_collect()
@app.post("/chat")
async def chat(req):
    response = model.chat(req.prompt)
    torch_gc()
    return response
"""
    ),
    # helper of a helper, in an inference loop over a loader
    Invalid(
        """
import gc as garbage
import torch
def free():
    garbage.collect()
def clear_torch_cache():
    free()
with torch.no_grad():
    for batch in val_loader:
        preds.append(model(batch.to("cuda")))
        clear_torch_cache()
"""
    ),
]
