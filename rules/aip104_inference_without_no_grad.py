"""AIP104 inference-without-no-grad."""

from __future__ import annotations

import re
from pathlib import PurePath

import libcst as cst

from aiperf_lint.model import Fix, ImportSpec
from aiperf_lint.patterns import is_model_forward
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import FunctionFrame, dotted_name

# Methods of an nn.Module named `embed`/`score`/`generate` are often part of the
# training forward; inside a Module only clearly inference-named methods count.
_MODULE_INFERENCE_METHOD = re.compile(r"(^|_)(predict|infer|inference)", re.IGNORECASE)


class InferenceWithoutNoGrad(Rule):
    """
    ## What it does
    Finds model forwards at inference time without `no_grad` / `inference_mode`.

    Finds forward calls of an `nn.Module` (`model(x)`, `self.model(x)`,
    `self.net(x)`, `model.forward(x)`) after `model.eval()`, or inside functions
    whose role is inference (`predict`, `infer`, `evaluate`, `validate`, `test`,
    web request handlers), with no `torch.no_grad()` / `torch.inference_mode()` /
    `torch.set_grad_enabled(False)` around them (as a context or a decorator, on
    the function or on its callers in the same module) and no gradient work in
    reach.

    ## Why is this bad
    With autograd on, every forward records a graph and keeps the activations
    each layer needs for a backward pass that never comes: memory grows with depth
    and batch size, and the bookkeeping costs time. Measured on a 2-core CPU
    (`../shared/notes/speedups-cpu.md`, pair 6): peak memory of the forward is 1.5x
    (2-layer MLP) to 4.5x (8-layer MLP) lower under `no_grad`; time gains are small
    (1.18-1.22x for a tiny MLP, about 1.0x for larger ones on CPU).

    Not reported: training loops (a loop calling `backward()` / `optimizer.step()`),
    and functions that work with gradients on purpose (Grad-CAM and saliency maps,
    adversarial examples, gradient penalties: any `backward()`, `torch.autograd.grad`,
    `requires_grad`, `.grad` or hook in the function or its callers), Lightning
    `*_step` methods (Lightning disables grad itself), and pytest test functions.

    ## Example
    ```python
    def predict(model, x):
        model.eval()
        return model(x).argmax(1)
    ```

    ## Use instead
    ```python
    @torch.inference_mode()
    def predict(model, x):
        model.eval()
        return model(x).argmax(1)
    ```

    ## Fix safety
    Unsafe: decorates the enclosing function with `@torch.inference_mode()`
    (using the module's alias of `torch`, adding `import torch` if needed). Tensors
    created under inference mode can never join autograd later: code that feeds a
    prediction back into training raises. Use `torch.no_grad()` by hand there. No
    fix for `async def` functions (the decorator would not cover the coroutine's
    body) or for module-level code.

    ## References
    - PyTorch autograd mechanics, "Inference mode":
      https://pytorch.org/docs/stable/notes/autograd.html#inference-mode
    - No ruff rule covers this.
    """

    code = "AIP104"
    name = "inference-without-no-grad"
    message = (
        "model forward at inference without `torch.no_grad()`/`torch.inference_mode()`: "
        "autograd records a graph and keeps activations it will never use"
    )
    fix_kind = "unsafe"
    triggers = (b"torch",)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._evaluated: dict[int, set[str]] = {}  # scope id -> names after `.eval()`
        self._reported_scopes: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        if not self.ctx.uses("torch"):
            return
        self._track_mode(node)
        if self.ctx.grad_disabled() or not is_model_forward(self.ctx, node):
            return
        frame = self.ctx.current_function()
        scope = frame.node if frame is not None else self.ctx.module
        if id(scope) in self._reported_scopes:
            return
        callee = dotted_name(node.func) or ""
        after_eval = callee in self._evaluated.get(id(scope), set())
        if not (after_eval or self._inference_function(frame)):
            return
        if self._needs_grad(frame, scope) or self._in_training_loop():
            return
        self._reported_scopes.add(id(scope))
        self.report(node, fix=self._decorate_fix(frame))

    def visit_Assign(self, node: cst.Assign) -> None:
        """`model = Net().eval()`, `model = load(...).eval()`."""
        value = node.value
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
            if value.func.attr.value == "eval" and not value.args:
                for target in node.targets:
                    name = dotted_name(target.target)
                    if name:
                        self._scope_names().add(name)

    def _track_mode(self, call: cst.Call) -> None:
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in {"eval", "train"}:
            return
        name = dotted_name(func.value)
        if name is None:
            return
        if func.attr.value == "eval" and not call.args:
            self._scope_names().add(name)
        else:
            self._scope_names().discard(name)  # `.train()` / `.train(False)`: back to unknown

    def _scope_names(self) -> set[str]:
        frame = self.ctx.current_function()
        scope = frame.node if frame is not None else self.ctx.module
        return self._evaluated.setdefault(id(scope), set())

    def _inference_function(self, frame: FunctionFrame | None) -> bool:
        if frame is None or not frame.is_inference_role():
            return False
        cls = frame.class_info
        if cls is not None and cls.kind == "Module":
            if any("Lightning" in base for base in cls.bases):
                return False  # Lightning runs validation/test/predict steps without grad
            return bool(_MODULE_INFERENCE_METHOD.search(frame.name))
        return not _is_pytest_test(frame, self.ctx.path)

    def _needs_grad(self, frame: FunctionFrame | None, scope: cst.CSTNode) -> bool:
        """Gradients in reach: here, in a same-module caller, or grad off by the callers."""
        if self.ctx.disables_grad_globally() or self.ctx.uses_autograd(scope):
            return True
        if frame is None:
            return False
        if any(d.rsplit(".", 1)[-1] == "enable_grad" for d in frame.decorators):
            return True
        if self.ctx.called_with_grad_disabled(frame.name):
            return True
        return any(
            site.function is not None and self.ctx.uses_autograd(site.function)
            for site in self.ctx.call_sites(frame.name)
        )

    def _in_training_loop(self) -> bool:
        return any(
            loop.facts().calls_backward or loop.facts().calls_optimizer_step
            for loop in self.ctx.statement_loops()
        )

    def _decorate_fix(self, frame: FunctionFrame | None) -> Fix | None:
        if frame is None or frame.is_async or not isinstance(frame.node, cst.FunctionDef):
            return None
        root, imports = _torch_root(self.ctx)
        decorator = cst.Decorator(
            cst.Call(cst.Attribute(cst.Name(root), cst.Name("inference_mode")))
        )
        node = frame.node
        new_node = node.with_changes(decorators=[*node.decorators, decorator])
        return Fix("unsafe", {node: new_node}, imports=imports, description="@inference_mode")


def _torch_root(ctx) -> tuple[str, list[ImportSpec]]:
    for local, full in ctx.imports.items():
        if full == "torch" and "." not in local:
            return local, []
    return "torch", [ImportSpec("torch")]


def _is_pytest_test(frame: FunctionFrame, path: str) -> bool:
    filename = PurePath(path).name
    is_test_file = filename.startswith("test_") or filename.endswith("_test.py")
    return frame.name.startswith("test_") and is_test_file


VALID = [
    # the correct idioms
    """
import torch
@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(x)
""",
    """
import torch
def evaluate(model, loader):
    model.eval()
    with torch.inference_mode():
        return [model(x) for x in loader]
""",
    # grad disabled by the caller
    """
import torch
def predict(model, x):
    return model(x)
def main(model, x):
    with torch.no_grad():
        return predict(model, x)
""",
    # Grad-CAM / saliency: needs gradients at evaluation time
    """
import torch
def predict_with_saliency(model, x):
    model.eval()
    x.requires_grad_(True)
    out = model(x)
    out.max().backward()
    return x.grad
""",
    # adversarial example helper, called from code that needs the gradient
    """
import torch
def infer_logits(model, x):
    return model(x)
def fgsm(model, x, y, eps):
    x = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(infer_logits(model, x), y)
    grad, = torch.autograd.grad(loss, x)
    return x + eps * grad.sign()
""",
    # a training loop after eval() for e.g. BN statistics frozen
    """
import torch
model.eval()
for x, y in loader:
    loss = model(x).sum()
    loss.backward()
    optimizer.step()
""",
    # not an inference function, no eval()
    """
import torch
def features(model, x):
    return model(x)
""",
    # global switch
    """
import torch
torch.set_grad_enabled(False)
model.eval()
out = model(x)
""",
    # Lightning disables grad itself
    """
import torch
import pytorch_lightning as pl
class Lit(pl.LightningModule):
    def validation_step(self, batch, idx):
        return self.model(batch)
""",
    # Keras model
    """
import torch
import tensorflow as tf
def predict(model, x):
    return model(x)
""",
]

INVALID = [
    Invalid(
        """
import torch
def predict(model, x):
    model.eval()
    return model(x).argmax(1)
""",
        fixed="""
import torch
@torch.inference_mode()
def predict(model, x):
    model.eval()
    return model(x).argmax(1)
""",
        unsafe=True,
    ),
    # alias import, method, self.model
    Invalid(
        """
import torch as T
class Service:
    def predict(self, batch):
        logits = self.model(batch)
        return T.softmax(logits, -1)
""",
        fixed="""
import torch as T
class Service:
    @T.inference_mode()
    def predict(self, batch):
        logits = self.model(batch)
        return T.softmax(logits, -1)
""",
        unsafe=True,
    ),
    # torch only imported by name: `import torch` added; eval() then forward in a nested def
    Invalid(
        """
from torch import nn
def build():
    def run(x):
        net = nn.Linear(4, 2)
        net.eval()
        return net(x)
    return run
""",
        fixed="""
from torch import nn
import torch
def build():
    @torch.inference_mode()
    def run(x):
        net = nn.Linear(4, 2)
        net.eval()
        return net(x)
    return run
""",
        unsafe=True,
    ),
    # module-level script: reported, no fix
    Invalid(
        """
import torch
model = torch.load("m.pt").eval()
out = model(x)
"""
    ),
    # async request handler: reported, no fix
    Invalid(
        """
import torch
@app.post("/predict")
async def handle(req):
    return model(req.tensor)
"""
    ),
]
