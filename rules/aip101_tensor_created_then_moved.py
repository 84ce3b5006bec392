"""AIP101 tensor-created-then-moved."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.patterns import DeviceMove, device_move
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import TORCH_FACTORIES, keyword_arg, names_in, positional_args

_RANDOM = frozenset(
    ["randn", "rand", "randint", "randperm", "normal", "rand_like", "randn_like", "randint_like"]
)
# The other factories: same values every call (a safe fix). `from_numpy`, `stack`
# and `cat` take existing data, so moving their result is a real transfer.
_DETERMINISTIC = TORCH_FACTORIES - _RANDOM - {"from_numpy", "stack", "cat"}
# Built from a few Python values only: `torch.tensor(<host array>)` is a real transfer.
_FROM_DATA = frozenset({"tensor", "as_tensor"})


class TensorCreatedThenMoved(Rule):
    """
    ## What it does
    Finds tensors created on the CPU by a factory and then moved to a device.

    Finds tensors created by a factory (`torch.zeros`, `torch.randn`,
    `torch.tensor([...])`, ...) on the CPU and then moved to a device with
    `.cuda()` / `.to(device)`, chained or through a variable used only for that.

    ## Why is this bad
    The tensor is first allocated and filled in host memory, then copied over
    PCIe into a second, device-side allocation: two allocations, a host fill and
    a host-to-device copy where `device=` gives one allocation filled on the
    device. RNN initial states, GAN noise and labels, masks and small
    class-weight tensors are the usual cases. On the CPU the move is a no-op
    (`.to("cpu")` returns the same tensor): the measured CPU ratio is 1.00x
    (`../shared/notes/speedups-cpu.md`, pair 13), so the gain only shows on a GPU.

    Data loaded or computed on the host and then moved (`torch.from_numpy(batch).cuda()`,
    `torch.tensor(array).cuda()`) is a real transfer and is not reported. Casts
    (`.to(torch.float16)`, `.to(dtype)`) are not moves and are never reported.

    ## Example
    ```python
    h0 = torch.zeros(2, batch, hidden).to(device)
    noise = torch.randn(batch, 100).cuda()
    ```

    ## Use instead
    ```python
    h0 = torch.zeros(2, batch, hidden, device=device)
    noise = torch.randn(batch, 100, device="cuda")
    ```

    ## Fix safety
    Offered for the chained form only. Safe for deterministic factories (`zeros`,
    `ones`, `full`, `empty`, `arange`, `linspace`, `eye`, `tensor`, `as_tensor`,
    `*_like`): the values are the same. Unsafe for random factories (`randn`,
    `rand`, `randint`, `normal`, ...): the CPU and CUDA generators give different
    numbers for the same seed. `.cuda()` becomes `device="cuda"`, `.cuda(1)`
    `device="cuda:1"`, `.to(dev, dtype)` `device=dev, dtype=dtype`. No fix when
    the move also sets `non_blocking`, `copy` or `memory_format`, when the factory
    already has `device=`, or with `requires_grad=True` (the moved tensor is not a
    leaf; the one created with `device=` is, so training code would change).

    ## References
    - PyTorch performance tuning guide, "Create tensors directly on the target device":
      https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
    - No ruff rule covers this.
    """

    code = "AIP101"
    name = "tensor-created-then-moved"
    message = (
        "`torch.{factory}()` creates the tensor on the CPU and then copies it to the device; "
        "pass `device=` to the factory instead"
    )
    fix_kind = "sometimes"
    triggers = (b".cuda(", b".to(")

    def visit_Call(self, node: cst.Call) -> None:
        move = device_move(self.ctx, node)
        if move is None or move.to_cpu:
            return
        receiver = move.receiver
        factory = self._factory(receiver)
        if factory is not None:
            fix = _device_fix(move, receiver, factory)
            self.report(node, self.message.format(factory=factory), fix)
        elif isinstance(receiver, cst.Name):
            self._check_variable(receiver, node)

    def _factory(self, expr: cst.BaseExpression) -> str | None:
        """The factory's name when expr is a host-side factory call, else None."""
        if not isinstance(expr, cst.Call):
            return None
        qname = self.ctx.qualified_name(expr.func) or ""
        module, _, name = qname.rpartition(".")
        if module != "torch" or name not in _DETERMINISTIC | _RANDOM:
            return None
        if keyword_arg(expr, "out") is not None or any(a.star for a in expr.args):
            return None
        if keyword_arg(expr, "generator") is not None:
            return None  # a CPU generator on purpose: `device=` would not accept it
        device = keyword_arg(expr, "device")
        if device is not None and not _is_cpu_literal(device.value):
            return None  # already created on the device: the move is a no-op
        if name in _FROM_DATA and not _literal_data(expr):
            return None
        return name

    def _check_variable(self, name: cst.Name, move_call: cst.Call) -> None:
        """`h = torch.zeros(...)` then, later in the same block, `h = h.to(device)`."""
        statement = self.ctx.current_statement()
        block = self._block_of(statement)
        here = _index_of(block or [], statement)
        if block is None or here is None:
            return
        creation = _last_assignment(block[:here], name.value)
        if creation is None:
            return
        index, value = creation
        factory = self._factory(value)
        if factory is None:
            return
        if any(name.value in names_in(s) for s in block[index + 1 : here]):
            return
        if not _only_use_is_the_move(statement, name.value, block[here + 1 :]):
            return
        message = (
            f"`{name.value}` is created by `torch.{factory}()` on the CPU only to be moved to "
            "the device; pass `device=` to the factory instead"
        )
        self.report(value, message)

    def _block_of(self, statement: cst.CSTNode | None) -> list[cst.CSTNode] | None:
        if not isinstance(statement, cst.SimpleStatementLine):
            return None
        for ancestor in reversed(self.ctx.ancestors):
            if isinstance(ancestor, (cst.IndentedBlock, cst.Module)):
                return list(ancestor.body)
        return None


def _is_cpu_literal(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return isinstance(value, str) and value.startswith("cpu")
    return False


def _literal_data(call: cst.Call) -> bool:
    """`torch.tensor([0.2, 0.8])`, `torch.tensor(1.0)`: values written in the source."""
    args = positional_args(call)
    if not args:
        return False
    return _is_literal(args[0].value)


def _is_literal(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, (cst.Integer, cst.Float, cst.Name)):
        return not isinstance(expr, cst.Name) or expr.value in {"True", "False"}
    if isinstance(expr, cst.UnaryOperation):
        return _is_literal(expr.expression)
    if isinstance(expr, (cst.List, cst.Tuple)):
        return all(
            not isinstance(el, cst.StarredElement) and _is_literal(el.value) for el in expr.elements
        )
    return False


def _last_assignment(statements, name: str) -> tuple[int, cst.BaseExpression] | None:
    """(index, value) of the last `name = value` line among statements."""
    for index in range(len(statements) - 1, -1, -1):
        statement = statements[index]
        if _rebinds(statement, name):
            return index, statement.body[0].value
        if name in names_in(statement):
            return None
    return None


def _index_of(block, statement) -> int | None:
    for index, candidate in enumerate(block):
        if candidate is statement:
            return index
    return None


def _only_use_is_the_move(statement, name: str, rest) -> bool:
    """The move is the name's only read; afterwards the name is rebound or unused."""
    counter = _NameCount(name)
    statement.visit(counter)
    rebinds = _rebinds(statement, name)
    if counter.count != 1 + int(rebinds):
        return False
    return rebinds or not any(name in names_in(s) for s in rest)


def _rebinds(statement: cst.CSTNode, name: str) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    return (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and small.targets[0].target.value == name
    )


class _NameCount(cst.CSTVisitor):
    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name:
            self.count += 1

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # `x.name` does not read `name`
        return False


def _device_fix(move: DeviceMove, factory: cst.Call, name: str) -> Fix | None:
    if move.options or keyword_arg(factory, "device") is not None:
        return None
    requires_grad = keyword_arg(factory, "requires_grad")
    if requires_grad is not None and not (
        isinstance(requires_grad.value, cst.Name) and requires_grad.value.value == "False"
    ):
        return None
    device = _device_argument(move)
    if device is None:
        return None
    new_args = [cst.Arg(device, keyword=cst.Name("device"), equal=_EQUAL)]
    if move.dtype is not None:
        if keyword_arg(factory, "dtype") is not None:
            return None
        new_args.append(cst.Arg(move.dtype, keyword=cst.Name("dtype"), equal=_EQUAL))
    args = list(factory.args)
    if args and isinstance(args[-1].comma, cst.Comma):
        # a trailing comma (`f(a, b,)`, or one per line) moves to the new last argument
        new_args[-1] = new_args[-1].with_changes(comma=args[-1].comma)
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    new_call = factory.with_changes(args=[*args, *new_args])
    applicability = "safe" if name in _DETERMINISTIC else "unsafe"
    return Fix(applicability, {move.call: new_call}, description="create on the device")


_EQUAL = cst.AssignEqual(
    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
)


def _device_argument(move: DeviceMove) -> cst.BaseExpression | None:
    if move.method == "to":
        return move.device
    if move.device is None:
        return cst.SimpleString('"cuda"')
    if isinstance(move.device, cst.Integer):
        return cst.SimpleString(f'"cuda:{move.device.value}"')
    if isinstance(move.device, cst.SimpleString):
        return move.device
    return None  # `.cuda(i)` with a variable: an int, a device or None; spelled differently


VALID = [
    # a seeded CPU generator: creating on the device would reject it
    """
import torch
g = torch.Generator().manual_seed(0)
noise = torch.rand(16, generator=g).to("cuda")
""",
    # a cast, not a move
    """
import torch
x = torch.zeros(3).to(torch.float16)
y = torch.ones(3).to(dtype)
""",
    # host data moved to the device: a real transfer
    """
import torch
import numpy as np
batch = np.load("b.npy")
x = torch.from_numpy(batch).cuda()
y = torch.tensor(batch).to(device)
z = torch.as_tensor(load_rows()).cuda()
""",
    # already created on the device
    """
import torch
x = torch.zeros(3, device=device).to(device)
""",
    # moved to the CPU: a no-op
    """
import torch
x = torch.zeros(3).to("cpu")
""",
    # the host tensor is also used on the host
    """
import torch
mask = torch.zeros(10)
mask[3] = 1
mask = mask.to(device)
""",
    """
import torch
h = torch.zeros(4)
h_gpu = h.to(device)
print(h.sum())
""",
    # `.to(other_tensor)` matches another tensor: not classified as a move here
    """
import torch
def f(x: torch.Tensor):
    return torch.ones(3).to(x)
""",
    # not torch
    """
import numpy as np
units = np.zeros(3)
q = quantity.to("m")
""",
]

INVALID = [
    Invalid(
        """
import torch
h0 = torch.zeros(2, 8, 64).to(device)
w = torch.tensor([0.2, 0.8]).cuda()
""",
        fixed="""
import torch
h0 = torch.zeros(2, 8, 64, device=device)
w = torch.tensor([0.2, 0.8], device="cuda")
""",
        count=2,
    ),
    # alias import, dtype kept, `.cuda(i)` literal
    Invalid(
        """
import torch as T
def init(n):
    a = T.ones(n).to(dev, T.float16)
    b = T.eye(n).to(device=dev, dtype=T.float64)
    c = T.arange(n).cuda(1)
    return a, b, c
""",
        fixed="""
import torch as T
def init(n):
    a = T.ones(n, device=dev, dtype=T.float16)
    b = T.eye(n, device=dev, dtype=T.float64)
    c = T.arange(n, device="cuda:1")
    return a, b, c
""",
        count=3,
    ),
    # random factory imported by name, in a method: unsafe fix
    Invalid(
        """
from torch import randn
class GAN:
    def sample(self, batch):
        noise = randn(batch, 100).to(self.device)
        return self.generator(noise)
""",
        fixed="""
from torch import randn
class GAN:
    def sample(self, batch):
        noise = randn(batch, 100, device=self.device)
        return self.generator(noise)
""",
        unsafe=True,
    ),
    # no fix: non_blocking, requires_grad, or `.cuda(i)` with a variable
    Invalid(
        """
import torch
def f(i):
    a = torch.zeros(3).to(device, non_blocking=True)
    b = torch.zeros(3, requires_grad=True).cuda()
    c = torch.zeros(3).cuda(i)
    return a, b, c
""",
        count=3,
    ),
    # through a variable used only for the move (nested function): reported, no fix
    Invalid(
        """
import torch
def outer(batch, hidden):
    def init_hidden():
        h0 = torch.zeros(2, batch, hidden)
        h0 = h0.to(device)
        return h0
    return init_hidden()
"""
    ),
]
