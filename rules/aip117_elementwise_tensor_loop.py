"""AIP117 elementwise-tensor-loop."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.device_tensors import element_read
from aiperf_lint.rule import Invalid, Rule


class ElementwiseTensorLoop(Rule):
    """
    ## What it does
    Finds Python loops that read a GPU tensor one element at a time (`t[i].item()`, `int(t[i])`, `x.item()` for `x in t`).

    The tensor must be known to be on the device: moved there (`.cuda()`,
    `.to(device)`), made there (`device=`), or a model's output, in a file
    that uses a GPU.

    ## Why is this bad
    Every `t[i]` launches an indexing kernel and every `.item()`/`int()` waits
    for the device and copies one number back: one launch and one sync per
    element, thousands of times slower than one copy of the whole tensor.
    `t.tolist()` (or `t.cpu()`) before the loop copies everything at once, and
    a vectorized expression (`(preds == labels).sum()`) avoids the loop. The
    device round trip makes it worst on a GPU, but the per-element indexing
    call costs on the CPU too: this rule's fixture pair (10,000 predictions)
    ran 2.4x faster with one `.tolist()` on a loaded 2-core CPU, forward pass
    included (one run; `aiperf-lint verify --rule AIP117` measures it properly).

    Not reported: tensors known to be on the CPU (`.cpu()`, `.numpy()`,
    `.tolist()` first, `device="cpu"`), values of unknown origin, and loops
    over a handful of elements (`range(4)`).

    ## Example
    ```python
    preds = model(x.cuda()).argmax(1)
    for i in range(len(preds)):
        counts[preds[i].item()] += 1
    ```

    ## Use instead
    ```python
    preds = model(x.cuda()).argmax(1).tolist()  # one copy
    for p in preds:
        counts[p] += 1
    # or: counts = torch.bincount(preds, minlength=n_classes)
    ```

    ## Fix safety
    No fix: whether to vectorize or to copy once depends on what the loop does.

    ## References
    - PyTorch performance tuning guide, "Avoid unnecessary CPU-GPU synchronization":
      https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
    - No ruff rule covers this.
    """

    code = "AIP117"
    name = "elementwise-tensor-loop"
    message = (
        "`{what}` reads a GPU tensor one element per iteration (a kernel launch and a device "
        "sync each); vectorize, or copy it once before the loop with `.tolist()` / `.cpu()`"
    )
    triggers = (b".item(", b"int(", b"float(", b"bool(", b".tolist(")
    trigger_all = ((b"torch",), (b"cuda", b"device", b"mps"))  # on_device needs both

    def visit_Call(self, node: cst.Call) -> None:
        if not self.ctx.statement_loops() or not self.ctx.uses("torch"):
            return
        what = element_read(self.ctx, node)
        if what is not None:
            self.report(node, self.message.format(what=what))


VALID = [
    # copied to the host once, then looped over
    """
import torch
preds = model(x.cuda()).argmax(1).cpu()
for i in range(len(preds)):
    counts[preds[i].item()] += 1
for p in model(x.cuda()).argmax(1).tolist():
    counts[p] += 1
""",
    # a CPU tensor (never moved), and one made on the CPU explicitly
    """
import torch
labels = torch.tensor(raw_labels)
mask = torch.zeros(100, device="cpu")
for i in range(len(labels)):
    total += labels[i].item() + int(mask[i])
device = "cuda"
""",
    # a handful of elements
    """
import torch
box = model(img.cuda())[0]
for i in range(4):
    coords.append(float(box[i]))
""",
    # the index is not the loop variable; unknown origin
    """
import torch
out = model(x.to("cuda"))
for step in range(n):
    best = out[0].item()
for i in range(len(scores)):
    print(scores[i].item())
""",
    # no accelerator in the file
    """
import torch
out = model(x)
for i in range(len(out)):
    print(out[i].item())
""",
]

INVALID = [
    Invalid(
        """
import torch
preds = model(x.cuda()).argmax(1)
for i in range(len(preds)):
    counts[preds[i].item()] += 1
"""
    ),
    # iterate the tensor directly; int() and float(); torch alias and .to(device)
    Invalid(
        """
import torch as T
def decode(logits, device):
    ids = T.argmax(logits.to(device), dim=-1)
    words = []
    for tok in ids:
        words.append(vocab[int(tok)])
    for i, p in enumerate(T.softmax(logits.to(device), -1)):
        scores[i] = p.max().item()
    return words
""",
        count=2,
    ),
    # made on the device; range(n) over a model output
    Invalid(
        """
import torch
sims = torch.zeros(n, device="cuda")
out = self.model(batch)
for j in range(n):
    total += float(sims[j]) + out[j].item()
""",
        count=2,
    ),
]
