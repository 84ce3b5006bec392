"""AIP107 torch-cat-in-loop."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.accumulation import collect_then_join_fix, find_accumulation
from aiperf_lint.rule import Invalid, Rule


class TensorGrowthInLoop(Rule):
    """
    ## What it does
    Finds tensors grown inside a loop by re-binding the same name to
    `torch.cat` / `torch.stack` (also `concat`, `concatenate`, `vstack`,
    `hstack`) of itself and a new piece on every iteration.

    ## Why is this bad
    Each `torch.cat([acc, piece])` allocates a new tensor and copies everything
    accumulated so far: n iterations copy O(n^2) elements (and on a GPU launch a
    copy kernel and allocate per step). Collecting the pieces in a list and
    concatenating once copies each element once. Measured on a 2-core CPU
    (`../shared/notes/speedups-cpu.md`, pair 5): 100 chunks of 16x64 float32,
    about 27x; 1,000 chunks, about 80x; 3,000 chunks, about 580x.

    Not reported: loops that read the accumulated tensor again inside the loop
    (autoregressive decoding feeding `ids` back to the model, DenseNet-style
    blocks, U-Net skip concatenation where `x` is re-bound by a layer), loops
    over a handful of literal items, and a single `torch.cat` after the loop
    (the correct idiom).

    ## Example
    ```python
    feats = torch.empty(0, 128)
    for x in loader:
        feats = torch.cat([feats, model(x)])
    ```

    ## Use instead
    ```python
    feats_parts = [torch.empty(0, 128)]
    for x in loader:
        feats_parts.append(model(x))
    feats = torch.cat(feats_parts)
    ```

    ## Fix safety
    Unsafe, offered for the plain shape only: `acc = torch.cat([acc, piece], ...)`
    (or `concat`, `concatenate`, `vstack`, `hstack`) directly in a `for`/`while`
    body without an `else` clause, not inside a `with` block of the loop, with
    loop-invariant other arguments. The fix keeps the value `acc` holds before
    the loop as the first list element (`acc_parts = [acc]`) rather than
    dropping an "empty" initialiser: `torch.cat` promotes dtypes across all
    inputs and skips legacy 1-D empty tensors, so `torch.empty(0)` followed by
    float16 2-D pieces gives the same float32 result in both forms, and a loop
    that never runs still leaves the initial contents. What changes: the joined
    tensor is a fresh object after the loop even when no piece was added, a
    shape mismatch is raised after the loop instead of at the bad iteration,
    and the pieces stay alive until the final join (the same memory the result
    needs). The `x if acc is None else torch.cat(...)` idiom, prepending
    (`[piece, acc]`), `torch.stack` accumulation and attribute accumulators
    (`self.buf`) are reported without a fix.

    ## References
    - PyTorch docs, `torch.cat`: https://pytorch.org/docs/stable/generated/torch.cat.html
    - The NumPy/pandas form is AIP302 (same detection).
    """

    code = "AIP107"
    name = "torch-cat-in-loop"
    message = (
        "`torch.{function}` re-binds `{target}` to itself plus a piece on every iteration "
        "(quadratic copying); append the pieces to a list and `torch.cat` once after the loop"
    )
    fix_kind = "unsafe"
    triggers = (b"cat", b"stack")

    def visit_Assign(self, node: cst.Assign) -> None:
        acc = find_accumulation(self.ctx, node)
        if acc is None or acc.library != "torch":
            return
        message = self.message.format(function=acc.function, target=acc.target)
        self.report(acc.call, message, collect_then_join_fix(self.ctx, acc))


VALID = [
    # the correct idiom: collect, then one cat after the loop
    """
import torch
parts = []
for x in batches:
    parts.append(x * 2)
out = torch.cat(parts)
""",
    # autoregressive decoding: the grown tensor is fed back every step
    """
import torch
def generate(model, ids, steps):
    for _ in range(steps):
        logits = model(ids)
        next_id = logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, next_id], dim=-1)
    return ids
""",
    # DenseNet block: each layer reads the concatenation so far
    """
import torch
class Dense(torch.nn.Module):
    def forward(self, x):
        for layer in self.layers:
            out = layer(x)
            x = torch.cat([x, out], 1)
        return x
""",
    # U-Net decoder: x is re-bound by a layer every step, nothing grows
    """
import torch
def decode(x, ups, skips):
    for up, skip in zip(ups, skips):
        x = up(x)
        x = torch.cat([x, skip], dim=1)
    return x
""",
    # joining two different tensors in a loop is not accumulation
    """
import torch
for fwd, bwd in pairs:
    h = torch.cat([fwd, bwd], dim=-1)
    outputs.append(h)
""",
    # a handful of literal items
    """
import torch
x = torch.zeros(2, 3)
for k in (1, 2, 3):
    x = torch.cat([x, torch.full((2, 3), k)])
""",
    # outside any loop
    """
import torch
def add(buf, x):
    buf = torch.cat([buf, x])
    return buf
""",
    # same name on a non-torch object
    """
def cat(items):
    return sum(items, [])
acc = []
for x in xs:
    acc = cat([acc, x])
""",
    # the accumulator is used (its length) inside the loop
    """
import torch
acc = torch.empty(0)
while acc.numel() < 100:
    acc = torch.cat([acc, torch.rand(7)])
""",
    # in the for-else clause: runs once
    """
import torch
for x in xs:
    pass
else:
    acc = torch.cat([acc, x])
""",
    # NumPy growth belongs to AIP302
    """
import numpy as np
acc = np.empty(0)
for x in xs:
    acc = np.concatenate([acc, x])
""",
]

INVALID = [
    Invalid(
        """
import torch

def collect(chunks):
    out = torch.empty(0, 64)
    # grow the output
    for chunk in chunks:
        out = torch.cat([out, chunk * 2.0])
    return out
""",
        fixed="""
import torch

def collect(chunks):
    out = torch.empty(0, 64)
    # grow the output
    out_parts = [out]
    for chunk in chunks:
        out_parts.append(chunk * 2.0)
    out = torch.cat(out_parts)
    return out
""",
        unsafe=True,
    ),
    # alias import, tuple of pieces, dim kwarg, nested in an outer loop and a method
    Invalid(
        """
import torch as T

class Buffer:
    def fill(self, loader, epochs):
        for epoch in range(epochs):
            feats = T.zeros(0, 16)
            for x, _ in loader:
                if x.numel():
                    feats = T.cat((feats, x), dim=0)
            self.save(epoch, feats)
""",
        fixed="""
import torch as T

class Buffer:
    def fill(self, loader, epochs):
        for epoch in range(epochs):
            feats = T.zeros(0, 16)
            feats_parts = [feats]
            for x, _ in loader:
                if x.numel():
                    feats_parts.append(x)
            feats = T.cat(feats_parts, dim=0)
            self.save(epoch, feats)
""",
        unsafe=True,
    ),
    # from-import, while loop, positional dim
    Invalid(
        """
from torch import cat, randn
acc = randn(1, 8)
i = 0
while i < n:
    acc = cat([acc, randn(1, 8)], 0)
    i += 1
""",
        fixed="""
from torch import cat, randn
acc = randn(1, 8)
i = 0
acc_parts = [acc]
while i < n:
    acc_parts.append(randn(1, 8))
    i += 1
acc = cat(acc_parts, 0)
""",
        unsafe=True,
    ),
    # None-first idiom: reported, no fix
    Invalid(
        """
import torch
embeddings = None
for batch in loader:
    e = model(batch)
    embeddings = e if embeddings is None else torch.cat([embeddings, e])
"""
    ),
    Invalid(
        """
import torch
preds = None
for batch in loader:
    p = model(batch).softmax(-1)
    if preds is None:
        preds = p
    else:
        preds = torch.cat((preds, p), 0)
"""
    ),
    # stack accumulation and prepending: reported, no fix
    Invalid(
        """
import torch
hist = torch.zeros(0)
for t in steps:
    hist = torch.stack([hist, t])
"""
    ),
    Invalid(
        """
import torch
seq = torch.zeros(0)
for t in tokens:
    seq = torch.cat([t, seq])
"""
    ),
    # attribute accumulator: reported, no fix
    Invalid(
        """
import torch
class Bank:
    def add_all(self, items):
        for x in items:
            self.bank = torch.cat([self.bank, x.detach()])
"""
    ),
    # the join sits inside a `with` block of the loop: reported, no fix
    Invalid(
        """
import torch
out = torch.empty(0)
for x in xs:
    with torch.no_grad():
        out = torch.cat([out, model(x)])
"""
    ),
]
