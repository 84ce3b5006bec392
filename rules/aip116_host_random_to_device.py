"""AIP116 host-random-to-device."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.patterns import device_move
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import keyword_arg, positional_args
from aiperf_lint.steps import step_loop

_NUMPY_GENERATORS = frozenset(
    {"randn", "rand", "normal", "randint", "uniform", "random", "standard_normal", "random_sample"}
)
_CONVERSIONS = frozenset({"torch.from_numpy", "torch.tensor", "torch.as_tensor", "torch.Tensor"})
_WRAPPERS = frozenset({"torch.autograd.Variable"})
_CASTS = {"float": "float32", "double": "float64", "long": "int64"}
_TORCH_DTYPES = {
    "float32": "float32",
    "float": "float32",
    "float64": "float64",
    "double": "float64",
}
_NUMPY_DTYPE = {"randint": "int64"}  # the others give float64


@dataclass
class _Landing:
    node: cst.BaseExpression  # the expression that leaves the value on the device
    device: cst.BaseExpression | None  # None: not known (a conditional tensor type)
    dtype: str | None  # the resulting dtype when known ("float32", "float64", "int64")
    plain: bool  # conversion + optional cast + move, nothing else: the fix can replace it


class HostRandomToDevice(Rule):
    """
    ## What it does
    Finds random numbers drawn with `np.random` on the host and copied to the GPU on every step of a loop.

    The shapes: `torch.from_numpy(np.random.randn(...)).to(device)`,
    `torch.tensor(np.random.normal(...), device=device)`,
    `torch.cuda.FloatTensor(np.random.normal(...))`,
    `Variable(Tensor(np.random.normal(...)))` with
    `Tensor = torch.cuda.FloatTensor if cuda else torch.FloatTensor`, and the
    same with the NumPy array bound to a name first.

    ## Why is this bad
    The host draws the numbers one core at a time, then the array is copied
    over PCIe and the copy (from pageable memory) synchronizes with the
    device, every step. `torch.randn(..., device=device)` draws them on the
    GPU in one kernel with no copy. On a CPU both sides do the same work
    (`.to("cpu")` returns the same tensor: 1.00x measured,
    `../shared/notes/speedups-cpu.md`, pair 13), so this rule's fixture pair
    claims its gain on CUDA only.

    Not reported: random numbers drawn outside a training/inference loop or once
    per epoch, arrays that stay on the host, and files with no GPU evidence.

    ## Example
    ```python
    for real, _ in loader:
        z = torch.from_numpy(np.random.randn(64, 100)).float().to(device)
        fake = generator(z)
    ```

    ## Use instead
    ```python
    for real, _ in loader:
        z = torch.randn(64, 100, device=device)
        fake = generator(z)
    ```

    ## Fix safety
    Unsafe: torch's generator gives a different random stream than NumPy's
    (code that seeds NumPy for reproducibility gets other numbers), and the
    dtype is kept as it was (a NumPy draw is float64 unless cast, so the fix
    adds `dtype=torch.float64` where no `.float()` was applied). Offered for
    `randn`, `rand`, `normal` with scalar mean and scale, and `randint` with a
    literal size, converted by `torch.from_numpy(...)` [`.float()`]
    `.to(device)`/`.cuda()`, `torch.tensor(..., device=...)` or
    `torch.cuda.FloatTensor(...)`. Other shapes (a split over several lines,
    `Variable`, a conditional tensor type) are reported only.

    ## References
    - PyTorch performance tuning guide, "Create tensors directly on the target device":
      https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
    - No ruff rule covers this (TorchFix does not report it).
    """

    code = "AIP116"
    name = "host-random-to-device"
    message = (
        "random numbers drawn with `np.random.{gen}` on the host and copied to the GPU every "
        "step; draw them on the device (`torch.{torch_gen}(..., device=device)`)"
    )
    fix_kind = "sometimes"
    triggers = (b"random",)
    # torch and numpy imported; mentions_accelerator() needs one of the last group
    trigger_all = ((b"torch",), (b"numpy",), (b"cuda", b"device", b"mps"))

    def visit_Call(self, node: cst.Call) -> None:
        source = self._host_random_arg(node)
        if source is None:
            return
        landing = self._landing(node)
        if landing is None or step_loop(self.ctx) is None:
            return
        if not self.ctx.mentions_accelerator():
            return
        gen = self.ctx.qualified_name(source.func).rsplit(".", 1)[-1]
        direct = positional_args(node)[0].value is source
        fix = self._fix(landing, source, gen) if direct and landing.plain else None
        torch_gen = {"randint": "randint", "rand": "rand", "normal": "normal"}.get(gen, "randn")
        if gen == "uniform":
            torch_gen = "rand"
        self.report(landing.node, self.message.format(gen=gen, torch_gen=torch_gen), fix)

    # ------------------------------------------------------------ shapes

    def _host_random_arg(self, call: cst.Call) -> cst.Call | None:
        """The `np.random.*(...)` call converted by this torch conversion call."""
        if not self._is_conversion(call):
            return None
        args = positional_args(call)
        if not args:
            return None
        value = args[0].value
        if isinstance(value, cst.Name):
            binding = self.ctx.binding(value.value)
            value = binding.value if binding is not None else None
        if isinstance(value, cst.Call) and self._is_numpy_random(value):
            return value
        return None

    def _is_numpy_random(self, call: cst.Call) -> bool:
        qname = self.ctx.qualified_name(call.func) or ""
        module, _, last = qname.rpartition(".")
        return module == "numpy.random" and last in _NUMPY_GENERATORS

    def _is_conversion(self, call: cst.Call) -> bool:
        qname = self.ctx.qualified_name(call.func) or ""
        if qname in _CONVERSIONS or _is_tensor_type(qname):
            return True
        return bool(self._conditional_tensor_type(call.func))

    def _conditional_tensor_type(self, func: cst.BaseExpression) -> bool:
        """`Tensor` bound at module level to `torch.cuda.FloatTensor if cuda else torch.FloatTensor`."""
        if not isinstance(func, cst.Name) or self.ctx._shadowed(func.value):
            return False
        binding = self.ctx.scopes[0].names.get(func.value)
        value = binding.value if binding is not None else None
        if not isinstance(value, cst.IfExp):
            return False
        names = [self.ctx.qualified_name(side) or "" for side in (value.body, value.orelse)]
        return any(name.startswith("torch.cuda.") and _is_tensor_type(name) for name in names)

    def _landing(self, conversion: cst.Call) -> _Landing | None:
        """Where the converted tensor reaches the device, if it does in this expression."""
        qname = self.ctx.qualified_name(conversion.func) or ""
        if qname.startswith("torch.cuda.") and _is_tensor_type(qname):
            dtype = _tensor_type_dtype(qname)
            return _Landing(
                conversion, cst.SimpleString('"cuda"'), dtype, len(conversion.args) == 1
            )
        if self._conditional_tensor_type(conversion.func):
            return _Landing(self._outermost_wrapper(conversion), None, None, False)
        if qname in {"torch.tensor", "torch.as_tensor"}:
            device = keyword_arg(conversion, "device")
            if device is not None and not _is_cpu_literal(device.value):
                others = {a.keyword.value for a in conversion.args if a.keyword} - {"device"}
                return _Landing(conversion, device.value, None, not others)
        return self._moved_later(conversion)

    def _moved_later(self, conversion: cst.Call) -> _Landing | None:
        """`conv[.float()]...to(device)` / `.cuda()`, also through `Variable(...)`."""
        current: cst.BaseExpression = conversion
        casts: list[str] = []
        plain = True
        ancestors = self.ctx.ancestors
        index = len(ancestors) - 1
        while index >= 2:
            parent, grand = ancestors[index - 1], ancestors[index - 2]
            if isinstance(parent, cst.Attribute) and isinstance(grand, cst.Call):
                if parent.value is not current or grand.func is not parent:
                    return None
                move = device_move(self.ctx, grand)
                if move is not None:
                    if move.to_cpu:
                        return None
                    plain = plain and move.dtype is None and len(casts) <= 1
                    dtype = _CASTS.get(casts[-1]) if casts else None
                    return _Landing(grand, move.device or cst.SimpleString('"cuda"'), dtype, plain)
                if parent.attr.value not in _CASTS or grand.args:
                    return None
                casts.append(parent.attr.value)
                current, index = grand, index - 2
            elif isinstance(parent, cst.Arg) and isinstance(grand, cst.Call):
                if self.ctx.qualified_name(grand.func) not in _WRAPPERS:
                    return None
                current, plain, index = grand, False, index - 2
            else:
                return None
        return None

    def _outermost_wrapper(self, call: cst.Call) -> cst.BaseExpression:
        ancestors = self.ctx.ancestors
        node: cst.BaseExpression = call
        index = len(ancestors) - 1
        while index >= 2 and isinstance(ancestors[index - 1], cst.Arg):
            grand = ancestors[index - 2]
            if (
                not isinstance(grand, cst.Call)
                or self.ctx.qualified_name(grand.func) not in _WRAPPERS
            ):
                break
            node, index = grand, index - 2
        return node

    # ------------------------------------------------------------ fix

    def _fix(self, landing: _Landing, source: cst.Call, gen: str) -> Fix | None:
        if self.ctx.qualified_name(cst.Name("torch")) != "torch" or landing.device is None:
            return None
        if any(arg.star for arg in source.args):
            return None
        new_call = _device_draw(source, gen, landing.device)
        if new_call is None:
            return None
        native = "int64" if gen == "randint" else "float32"
        wanted = landing.dtype or _NUMPY_DTYPE.get(gen, "float64")
        if wanted != native:
            dtype = cst.Attribute(cst.Name("torch"), cst.Name(wanted))
            new_call = new_call.with_changes(args=[*new_call.args, _keyword("dtype", dtype)])
        return Fix("unsafe", {landing.node: new_call}, description="draw on the device")


def _device_draw(source: cst.Call, gen: str, device: cst.BaseExpression) -> cst.Call | None:
    """`np.random.<gen>(...)` -> `torch.<gen>(..., device=device)`, or None for other shapes."""
    positional = [arg.value for arg in positional_args(source)]
    keywords = {arg.keyword.value: arg.value for arg in source.args if arg.keyword is not None}
    if gen in {"randn", "rand"}:
        if keywords or not positional:
            return None
        return _torch_call(gen, positional, device)
    names = {"normal": ("loc", "scale", "size"), "randint": ("low", "high", "size")}.get(gen)
    if names is None or set(keywords) - set(names) or len(positional) > 3:
        return None
    values = dict(zip(names, positional, strict=False)) | keywords
    size = values.get("size")
    if size is None:
        return None
    if gen == "normal":
        loc, scale = values.get("loc"), values.get("scale")
        if _is_number(loc, 0) and _is_number(scale, 1):
            return _torch_call("randn", [size], device)
        if not (_is_number(loc) and _is_number(scale)):
            return None
        size = _as_tuple(size)
        parts = [loc or cst.Float("0.0"), scale or cst.Float("1.0"), size]
        return None if size is None else _torch_call("normal", parts, device)
    size = _as_tuple(size)
    bounds = [values["low"]] + ([values["high"]] if "high" in values else [])
    return None if size is None else _torch_call("randint", [*bounds, size], device)


def _torch_call(name: str, args: list, device: cst.BaseExpression) -> cst.Call:
    return cst.Call(
        func=cst.Attribute(cst.Name("torch"), cst.Name(name)),
        args=[cst.Arg(value) for value in args] + [_keyword("device", device)],
    )


def _keyword(name: str, value: cst.BaseExpression) -> cst.Arg:
    return cst.Arg(
        value,
        keyword=cst.Name(name),
        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
    )


def _as_tuple(size: cst.BaseExpression) -> cst.BaseExpression | None:
    if isinstance(size, cst.Tuple):
        return size
    if isinstance(size, cst.Integer):
        return cst.Tuple([cst.Element(size, comma=cst.Comma())])
    return None


def _is_number(expr: cst.BaseExpression | None, value: float | None = None) -> bool:
    """A numeric literal (or absent, counting as the default `value`)."""
    if expr is None:
        return True
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        return value is None and _is_number(expr.expression)
    if not isinstance(expr, (cst.Integer, cst.Float)):
        return False
    return value is None or float(expr.evaluated_value) == value


def _is_tensor_type(qname: str) -> bool:
    module, _, last = qname.rpartition(".")
    return module in {"torch", "torch.cuda"} and last.endswith("Tensor") and last != "Tensor"


def _tensor_type_dtype(qname: str) -> str | None:
    last = qname.rsplit(".", 1)[-1]
    return {"FloatTensor": "float32", "DoubleTensor": "float64", "LongTensor": "int64"}.get(last)


def _is_cpu_literal(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.SimpleString) and expr.evaluated_value.startswith("cpu")


VALID = [
    # drawn on the device already
    """
import torch
for x, _ in loader:
    z = torch.randn(x.size(0), 100, device=device)
    loss = G(z).mean()
    loss.backward()
    opt.step()
""",
    # drawn once, before the loop
    """
import numpy as np
import torch
fixed_noise = torch.from_numpy(np.random.randn(64, 100)).float().to(device)
for x, _ in loader:
    loss = model(x.to(device)).mean()
    loss.backward()
    optimizer.step()
""",
    # host random numbers that stay on the host (augmentation in numpy, a CPU tensor)
    """
import numpy as np
import torch
for x, y in loader:
    mask = torch.from_numpy(np.random.rand(8, 8) > 0.5)
    idx = np.random.randint(0, 10, size=4)
    loss = model(x.cuda()).mean()
    loss.backward()
    optimizer.step()
""",
    # moved to the CPU explicitly; data loaded from disk (not random) moved each step
    """
import numpy as np
import torch
for x, y in loader:
    noise = torch.tensor(np.random.randn(4), device="cpu")
    batch = torch.from_numpy(np.load(path)).to(device)
    loss = model(batch).mean()
    loss.backward()
    optimizer.step()
""",
    # no GPU anywhere in the file
    """
import numpy as np
import torch
for x, y in loader:
    z = torch.from_numpy(np.random.randn(4, 8)).float().to(dev)
    loss = model(z).mean()
    loss.backward()
    optimizer.step()
""",
    # not a training/inference loop
    """
import numpy as np
import torch
for i in range(10):
    z = torch.from_numpy(np.random.randn(4, 8)).cuda()
    samples.append(z)
""",
]

INVALID = [
    Invalid(
        """
import numpy as np
import torch
for real, _ in dataloader:
    z = torch.from_numpy(np.random.randn(64, 100)).float().to(device)
    loss = D(G(z)).mean()
    loss.backward()
    opt.step()
""",
        fixed="""
import numpy as np
import torch
for real, _ in dataloader:
    z = torch.randn(64, 100, device=device)
    loss = D(G(z)).mean()
    loss.backward()
    opt.step()
""",
        unsafe=True,
    ),
    # torch.tensor(..., device=) and .cuda(): float64 kept; normal with a shape tuple
    Invalid(
        """
import numpy as np
import torch
for x, y in train_loader:
    eps = torch.tensor(np.random.normal(0, 1, (x.shape[0], 16)), device=device)
    labels = torch.from_numpy(np.random.randint(0, 10, 32)).cuda()
    loss = model(x.cuda(), eps, labels).mean()
    loss.backward()
    optimizer.step()
""",
        fixed="""
import numpy as np
import torch
for x, y in train_loader:
    eps = torch.randn((x.shape[0], 16), device=device, dtype=torch.float64)
    labels = torch.randint(0, 10, (32,), device="cuda")
    loss = model(x.cuda(), eps, labels).mean()
    loss.backward()
    optimizer.step()
""",
        unsafe=True,
        count=2,
    ),
    # the PyTorch-GAN idiom: a conditional tensor type and Variable; reported, no fix
    Invalid(
        """
import numpy as np
import torch
from torch.autograd import Variable
cuda = torch.cuda.is_available()
Tensor = torch.cuda.FloatTensor if cuda else torch.FloatTensor
for i, (imgs, _) in enumerate(dataloader):
    z = Variable(Tensor(np.random.normal(0, 1, (imgs.shape[0], 100))))
    g_loss = adversarial_loss(discriminator(generator(z)), valid)
    g_loss.backward()
    optimizer_G.step()
"""
    ),
    # split over lines: reported, no fix
    Invalid(
        """
import numpy as np
import torch
for x in loader:
    noise = np.random.normal(size=(16, 8))
    z = torch.from_numpy(noise)
    out = model(x.cuda() + torch.from_numpy(noise).cuda())
"""
    ),
    # torch.cuda.FloatTensor with a non-default mean: torch.normal
    Invalid(
        """
from numpy.random import normal
import torch
for x in loader:
    w = torch.cuda.FloatTensor(normal(0.5, 2.0, 8))
    out = model(x.cuda() + w)
""",
        fixed="""
from numpy.random import normal
import torch
for x in loader:
    w = torch.normal(0.5, 2.0, (8,), device="cuda")
    out = model(x.cuda() + w)
""",
        unsafe=True,
    ),
]
