"""Tensors known to live on an accelerator, and per-element reads of them in Python loops.

Shared by AIP117 (reports the reads) and AIP103 (leaves them to AIP117).
"""

from __future__ import annotations

import libcst as cst

from aiperf_lint.patterns import device_move, is_model_forward
from aiperf_lint.semantic import Context, LoopFrame, call_name, keyword_arg, positional_args

_HOST_METHODS = frozenset({"cpu", "numpy", "tolist", "item", "size", "dim", "numel"})
_SCALAR_READS = frozenset({"item", "tolist"})
_CONVERSIONS = frozenset({"builtins.int", "builtins.float", "builtins.bool"})
_SMALL_RANGE = 32
_DEPTH = 6


def on_device(ctx: Context, expr: cst.BaseExpression, depth: int = 0) -> bool:
    """Is expr a tensor produced on the GPU: moved there, made there, or a model's output
    (in a file that mentions an accelerator)? Unknown values are not."""
    if depth > _DEPTH or not ctx.mentions_accelerator():
        return False
    if isinstance(expr, cst.Name):
        binding = ctx.binding(expr.value)
        value = binding.value if binding is not None else None
        return value is not None and value is not expr and on_device(ctx, value, depth + 1)
    if isinstance(expr, (cst.Subscript, cst.Attribute)):
        if isinstance(expr, cst.Attribute) and expr.attr.value in {"shape", "dtype", "device"}:
            return False
        return on_device(ctx, expr.value, depth + 1)
    if isinstance(expr, cst.BinaryOperation):
        return on_device(ctx, expr.left, depth + 1) or on_device(ctx, expr.right, depth + 1)
    if isinstance(expr, cst.Call):
        return _call_on_device(ctx, expr, depth)
    return False


def _call_on_device(ctx: Context, call: cst.Call, depth: int) -> bool:
    move = device_move(ctx, call)
    if move is not None:
        return not move.to_cpu
    qname = ctx.qualified_name(call.func) or ""
    if qname.startswith("torch."):
        device = keyword_arg(call, "device")
        if device is not None:
            return not (
                isinstance(device.value, cst.SimpleString)
                and device.value.evaluated_value.startswith("cpu")
            )
        args = positional_args(call)
        return bool(args) and on_device(ctx, args[0].value, depth + 1)
    if is_model_forward(ctx, call):
        return True
    if isinstance(call.func, cst.Attribute):
        if call.func.attr.value in _HOST_METHODS:
            return False
        return on_device(ctx, call.func.value, depth + 1)
    return False


def element_read(ctx: Context, call: cst.Call) -> str | None:
    """`t[i].item()`, `int(t[i])`, `x.item()` for `x in t`, ... inside a Python loop over the
    elements of a GPU tensor `t`: the text of the read, else None."""
    read = _read_target(ctx, call)
    if read is None:
        return None
    target, what = read
    target = _chain_base(target)
    for frame in reversed(ctx.statement_loops()):
        node = frame.node
        if not isinstance(node, cst.For):
            continue
        if _indexes_by(target, frame) and _large_range(ctx, node.iter):
            tensor = target.value
            if frame.is_invariant(tensor) and on_device(ctx, tensor):
                return what
        if isinstance(target, cst.Name) and _element_of(target.value, node, ctx):
            return what
    return None


def _read_target(ctx: Context, call: cst.Call) -> tuple[cst.BaseExpression, str] | None:
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value in _SCALAR_READS and not call.args:
        return func.value, f".{func.attr.value}()"
    qname = ctx.qualified_name(func)
    if qname in _CONVERSIONS and len(call.args) == 1 and not call.args[0].keyword:
        return call.args[0].value, f"{qname[9:]}(...)"
    return None


def _chain_base(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`p.max()`, `t[i].float()` -> `p`, `t[i]`: per-element tensor methods keep the element."""
    while (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value not in _HOST_METHODS
    ):
        expr = expr.func.value
    return expr


def _indexes_by(target: cst.BaseExpression, frame: LoopFrame) -> bool:
    """`t[i]` where `i` is this loop's target."""
    if not isinstance(target, cst.Subscript) or len(target.slice) != 1:
        return False
    index = target.slice[0].slice
    return (
        isinstance(index, cst.Index)
        and isinstance(index.value, cst.Name)
        and index.value.value in frame.targets
    )


def _large_range(ctx: Context, iterable: cst.BaseExpression) -> bool:
    """`range(len(t))`, `range(n)`; not `range(4)` (a handful of literal steps)."""
    if not isinstance(iterable, cst.Call) or ctx.qualified_name(iterable.func) != "builtins.range":
        return False
    args = positional_args(iterable)
    if args and all(isinstance(arg.value, cst.Integer) for arg in args):
        bounds = [int(arg.value.evaluated_value) for arg in args]
        stop = bounds[1] if len(bounds) > 1 else bounds[0]
        start = bounds[0] if len(bounds) > 1 else 0
        return stop - start > _SMALL_RANGE
    return bool(args)


def _element_of(name: str, loop: cst.For, ctx: Context) -> bool:
    """`for x in t` / `for i, x in enumerate(t)` with `t` on the device; name is x."""
    iterable, target = loop.iter, loop.target
    if isinstance(iterable, cst.Call) and call_name(iterable) == "enumerate":
        args = positional_args(iterable)
        if not args or not (isinstance(target, cst.Tuple) and len(target.elements) == 2):
            return False
        iterable, target = args[0].value, target.elements[1].value
    if not (isinstance(target, cst.Name) and target.value == name):
        return False
    return on_device(ctx, iterable)
