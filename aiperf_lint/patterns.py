"""Expression shapes shared by several rules (pandas row expressions, arithmetic).

Kept here rather than in a rule module so that AIP401, AIP402, AIP407 and
their successors agree on what "element-wise arithmetic of a row" means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

ARITHMETIC_OPERATORS = (
    cst.Add,
    cst.Subtract,
    cst.Multiply,
    cst.Divide,
    cst.FloorDivide,
    cst.Modulo,
    cst.Power,
)


# Attributes of a pandas row (Series / namedtuple) that are not columns.
ROW_ATTRIBUTES = frozenset(
    "dtype dtypes name index values shape size ndim empty array T at iat loc iloc "
    "str dt cat plot".split()
)


def row_field(expr: cst.BaseExpression, row: str) -> str | None:
    """`row["a"]` or `row.a` (row being the given name) -> "a"; else None."""
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Name):
        if expr.value.value != row or len(expr.slice) != 1:
            return None
        index = expr.slice[0].slice
        if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
            value = index.value.evaluated_value
            return value if isinstance(value, str) else None
        return None
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
        attr = expr.attr.value
        if expr.value.value == row and not attr.startswith("_") and attr not in ROW_ATTRIBUTES:
            return attr
    return None


def row_fields_only(node: cst.CSTNode, row: str) -> tuple[int, int]:
    """(column reads of the row, other uses of the row name) inside node."""
    counter = _RowFieldCounter(row)
    node.visit(counter)
    return counter.fields, counter.names - counter.fields


class _RowFieldCounter(cst.CSTVisitor):
    def __init__(self, row: str) -> None:
        self.row = row
        self.fields = 0
        self.names = 0

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if row_field(node, self.row) is not None:
            self.fields += 1

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if row_field(node, self.row) is not None:
            self.fields += 1

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.row:
            self.names += 1


def is_row_arithmetic(
    expr: cst.BaseExpression, row: str, allow_names: frozenset[str] = frozenset()
) -> bool:
    """Pure element-wise arithmetic of the row's fields, numbers and outside names.

    True for `row["a"] * 2 + row.b`, False for anything with calls,
    comparisons, subscripts of other things, attribute methods, or strings.
    At least one row field must be used.
    """
    return _arith(expr, row, allow_names) and _uses_row(expr, row)


def _arith(expr: cst.BaseExpression, row: str, allow_names: frozenset[str]) -> bool:
    if row_field(expr, row) is not None:
        return True
    if isinstance(expr, (cst.Integer, cst.Float)):
        return True
    if isinstance(expr, cst.Name):
        return expr.value in allow_names
    if isinstance(expr, cst.BinaryOperation):
        return isinstance(expr.operator, ARITHMETIC_OPERATORS) and (
            _arith(expr.left, row, allow_names) and _arith(expr.right, row, allow_names)
        )
    if isinstance(expr, cst.UnaryOperation):
        return isinstance(expr.operator, (cst.Minus, cst.Plus)) and _arith(
            expr.expression, row, allow_names
        )
    return False


def _uses_row(expr: cst.BaseExpression, row: str) -> bool:
    if row_field(expr, row) is not None:
        return True
    if isinstance(expr, cst.BinaryOperation):
        return _uses_row(expr.left, row) or _uses_row(expr.right, row)
    if isinstance(expr, cst.UnaryOperation):
        return _uses_row(expr.expression, row)
    return False


def uses_row_value(expr: cst.CSTNode, row: str) -> bool:
    """Does expr read the row at all (any `row[...]`, `row.x` or bare `row`)?"""
    finder = _RowUse(row)
    expr.visit(finder)
    return finder.found


class _RowUse(cst.CSTVisitor):
    def __init__(self, row: str) -> None:
        self.row = row
        self.found = False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.row:
            self.found = True


def has_numeric_work(expr: cst.CSTNode) -> bool:
    """Any arithmetic operator, comparison or augmented assignment inside expr."""
    finder = _NumericWork()
    expr.visit(finder)
    return finder.found


class _NumericWork(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, ARITHMETIC_OPERATORS):
            self.found = True

    def visit_Comparison(self, node: cst.Comparison) -> None:
        self.found = True

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.found = True


class ColumnRewriter(cst.CSTTransformer):
    """`row["a"]` / `row.a` -> `frame["a"]` (frame given as an expression)."""

    def __init__(self, row: str, frame: cst.BaseExpression) -> None:
        self.row = row
        self.frame = frame

    def leave_Subscript(self, original: cst.Subscript, updated: cst.Subscript):
        return self._column(original) or updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute):
        return self._column(original) or updated

    def _column(self, node: cst.BaseExpression):
        name = row_field(node, self.row)
        if name is None:
            return None
        return cst.Subscript(
            value=self.frame,
            slice=[cst.SubscriptElement(cst.Index(cst.SimpleString(_quote(name))))],
        )


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rewrite_row_fields(
    expr: cst.BaseExpression, row: str, frame: cst.BaseExpression
) -> cst.BaseExpression:
    return expr.visit(ColumnRewriter(row, frame))


def is_argument_arithmetic(
    expr: cst.BaseExpression, argument: str, allow_names: frozenset[str] = frozenset()
) -> bool:
    """Pure arithmetic of a function's argument itself (`x * 2 + 1`), numbers and outside names.

    The element-wise counterpart of `is_row_arithmetic` for `Series.apply(lambda x: ...)`.
    """
    return _arith(expr, "", allow_names | {argument}) and _mentions(expr, argument)


def _mentions(expr: cst.BaseExpression, name: str) -> bool:
    if isinstance(expr, cst.Name):
        return expr.value == name
    if isinstance(expr, cst.BinaryOperation):
        return _mentions(expr.left, name) or _mentions(expr.right, name)
    if isinstance(expr, cst.UnaryOperation):
        return _mentions(expr.expression, name)
    return False


class _NameReplacer(cst.CSTTransformer):
    def __init__(self, name: str, replacement: cst.BaseExpression) -> None:
        self.name = name
        self.replacement = replacement

    def leave_Name(self, original: cst.Name, updated: cst.Name):
        return self.replacement if original.value == self.name else updated


def replace_argument(
    expr: cst.BaseExpression, argument: str, replacement: cst.BaseExpression
) -> cst.BaseExpression:
    """`x * 2 + 1` with x -> `s`: `s * 2 + 1` (for expressions `is_argument_arithmetic` accepts)."""
    return expr.visit(_NameReplacer(argument, replacement))


def is_simple_reference(expr: cst.BaseExpression) -> bool:
    """A Name or attribute chain: safe to evaluate twice (no calls, no subscripts)."""
    while isinstance(expr, cst.Attribute):
        expr = expr.value
    return isinstance(expr, cst.Name)


# ---------------------------------------------------------------- torch: moves, casts, forwards
# Shared by the PyTorch rules (AIP101-AIP103, AIP116, ...) so they agree on what
# "moves to a device" and "runs a model forward" mean. They take the rule's
# `semantic.Context` for qualified names, kinds and bindings.

_DEVICE_STRING = re.compile(r"^(cuda|cpu|mps|xpu|hpu|npu|xla|meta)(:\d+)?$")
_DEVICE_NAME = re.compile(r"(^|_)(device|dev|gpu|cuda|rank|local_rank|gpu_id)$", re.IGNORECASE)
_DTYPE_NAME = re.compile(r"(^|_)dtype$", re.IGNORECASE)
_TORCH_DTYPES = frozenset(
    [
        "float16",
        "half",
        "bfloat16",
        "float32",
        "float",
        "float64",
        "double",
        "int8",
        "uint8",
        "int16",
        "short",
        "int32",
        "int",
        "int64",
        "long",
        "bool",
        "complex64",
        "complex128",
        "cfloat",
        "cdouble",
        "float8_e4m3fn",
        "float8_e5m2",
    ]
)
# Names that hold an nn.Module when the assignment is out of sight (`self.model`).
_MODEL_LIKE_NAME = re.compile(
    r"^(model|net|network|backbone|encoder|decoder|classifier|generator|discriminator|"
    r"unet|vae|net[A-Z])$|_(model|net|network)$|^model_",
)
# Frameworks whose models are also called `model(x)`: no name-based guesses there.
_OTHER_DL_ROOTS = ("tensorflow", "keras", "jax", "flax", "mxnet", "paddle")


@dataclass(frozen=True)
class DeviceMove:
    """`x.cuda(...)` / `x.to(<device>, ...)`: a move, as opposed to a cast."""

    call: cst.Call
    method: str  # "cuda" or "to"
    receiver: cst.BaseExpression
    device: cst.BaseExpression | None  # None for `.cuda()` (the current CUDA device)
    dtype: cst.BaseExpression | None  # a dtype changed by the same `.to(dev, dtype)`
    options: frozenset[str]  # other keywords: non_blocking, copy, memory_format
    to_cpu: bool  # the target is known to be the CPU


def device_move(ctx, call: cst.Call) -> DeviceMove | None:
    """Classify `x.cuda()` / `x.to(...)`; None for casts, `.to(other)` and unknowns."""
    func = call.func
    if not isinstance(func, cst.Attribute) or func.attr.value not in {"cuda", "to"}:
        return None
    if any(arg.star for arg in call.args):
        return None
    if ctx.kind_of(func.value) not in {None, "Tensor", "Module"}:
        return None  # a DataFrame, list, local class ...: not torch's .to()
    positional = [a.value for a in call.args if a.keyword is None]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if func.attr.value == "cuda":
        if len(positional) > 1:
            return None
        device = positional[0] if positional else keywords.pop("device", None)
        return DeviceMove(call, "cuda", func.value, device, None, frozenset(keywords), False)
    device = keywords.pop("device", None)
    dtype = keywords.pop("dtype", None)
    if device is None:
        if not positional or device_or_dtype(ctx, positional[0]) != "device":
            return None  # `.to(torch.float16)`, `.to(dtype)`, `.to(other_tensor)`, unknown
        device, positional = positional[0], positional[1:]
    if positional:
        if len(positional) > 1 or dtype is not None:
            return None
        dtype = positional[0]
    to_cpu = _is_cpu_device(ctx, device)
    return DeviceMove(call, "to", func.value, device, dtype, frozenset(keywords), to_cpu)


def device_or_dtype(ctx, expr: cst.BaseExpression, depth: int = 0) -> str | None:
    """ "device", "dtype", "tensor" or None (unknown) for an argument of `.to()`."""
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return "device" if isinstance(value, str) and _DEVICE_STRING.match(value) else None
    if isinstance(expr, cst.FormattedString):
        head = expr.parts[0] if expr.parts else None
        if isinstance(head, cst.FormattedStringText) and head.value.startswith("cuda"):
            return "device"
        return None
    if isinstance(expr, cst.Integer):
        return "device"  # a CUDA ordinal
    if isinstance(expr, cst.IfExp):
        both = {device_or_dtype(ctx, expr.body, depth), device_or_dtype(ctx, expr.orelse, depth)}
        return "device" if "device" in both else None
    qname = ctx.qualified_name(expr.func if isinstance(expr, cst.Call) else expr)
    if qname in {"torch.device", "torch.cuda.current_device"}:
        return "device"
    if qname and qname.startswith("torch.") and qname[6:] in _TORCH_DTYPES:
        return "dtype"
    if ctx.kind_of(expr) == "Tensor":
        return "tensor"
    if isinstance(expr, cst.Name) and depth < 3:
        binding = ctx.binding(expr.value)
        if binding is not None and binding.value is not None:
            found = device_or_dtype(ctx, binding.value, depth + 1)
            if found is not None:
                return found
    dotted = _dotted(expr)
    if dotted is not None:
        last = dotted.rsplit(".", 1)[-1]
        if _DEVICE_NAME.search(last):
            return "device"
        if _DTYPE_NAME.search(last):
            return "dtype"
    return None


def _is_cpu_device(ctx, expr: cst.BaseExpression, depth: int = 0) -> bool:
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return isinstance(value, str) and value.startswith("cpu")
    if isinstance(expr, cst.Call) and ctx.qualified_name(expr.func) == "torch.device":
        return bool(expr.args) and _is_cpu_device(ctx, expr.args[0].value, depth)
    if isinstance(expr, cst.Name) and depth < 3:
        binding = ctx.binding(expr.value)
        if binding is not None and binding.value is not None:
            return _is_cpu_device(ctx, binding.value, depth + 1)
    return False


def names_models_by_convention(ctx) -> bool:
    """May a name like `model`/`self.net` be taken for an nn.Module in this file?"""
    return ctx.uses("torch") and not any(ctx.uses(root) for root in _OTHER_DL_ROOTS)


def is_model_like(ctx, expr: cst.BaseExpression) -> bool:
    """An nn.Module by kind, or by name (`model`, `self.net`, `netG`) in a torch file."""
    kind = ctx.kind_of(expr)
    if kind is not None:
        return kind == "Module"
    dotted = _dotted(expr)
    if dotted is None or not names_models_by_convention(ctx):
        return False
    return bool(_MODEL_LIKE_NAME.search(dotted.rsplit(".", 1)[-1]))


def is_model_forward(ctx, call: cst.Call) -> bool:
    """`model(x)`, `self.model(x)`, `self.net(x)`, `model.forward(x)`, `self(x)` in a Module."""
    func = call.func
    if isinstance(func, cst.Name) and func.value == "self":
        cls = ctx.current_class()
        return cls is not None and cls.kind == "Module"
    if isinstance(func, cst.Attribute) and func.attr.value == "forward":
        owner = func.value
        if isinstance(owner, cst.Name) and owner.value == "self":
            cls = ctx.current_class()
            return cls is not None and cls.kind == "Module"
        return is_model_like(ctx, owner)
    return is_model_like(ctx, func)


def _dotted(expr: cst.BaseExpression) -> str | None:
    parts: list[str] = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if isinstance(expr, cst.Name):
        parts.append(expr.value)
        return ".".join(reversed(parts))
    return None
