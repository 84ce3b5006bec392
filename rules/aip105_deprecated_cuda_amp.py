"""AIP105 deprecated-cuda-amp."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix, ImportSpec
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import dotted_name, positional_args

_OLD = "torch.cuda.amp"
_NAMES = frozenset({"autocast", "GradScaler"})
_ALIASES = {
    "torch.cuda.amp.autocast_mode.autocast": "torch.cuda.amp.autocast",
    "torch.cuda.amp.grad_scaler.GradScaler": "torch.cuda.amp.GradScaler",
}
# torch.cuda.amp.autocast(enabled, dtype, cache_enabled) -> keywords of torch.amp.autocast,
# whose second positional parameter is dtype, not enabled.
_AUTOCAST_POSITIONAL = ("enabled", "dtype", "cache_enabled")
_CUDA = cst.Arg(cst.SimpleString('"cuda"'))


class DeprecatedCudaAmp(Rule):
    """
    ## What it does
    Finds deprecated `torch.cuda.amp.autocast` / `GradScaler` calls, in every import style.

    Finds `torch.cuda.amp.autocast(...)` and `torch.cuda.amp.GradScaler(...)`, in
    every import style (`import torch`, `from torch.cuda import amp`,
    `from torch.cuda.amp import autocast, GradScaler`).

    ## Why is this bad
    Both have been deprecated since PyTorch 2.4 in favour of the device-generic
    `torch.amp.autocast("cuda", ...)` and `torch.amp.GradScaler("cuda", ...)`: each
    construction emits a `FutureWarning` (once per call site, so training logs fill
    with it) and the old names will be removed. This is API hygiene, not speed:
    the new spellings run the same kernels.

    ## Example
    ```python
    from torch.cuda.amp import GradScaler, autocast

    scaler = GradScaler()
    with autocast():
        loss = model(x)
    ```

    ## Use instead
    ```python
    from torch.amp import GradScaler, autocast

    scaler = GradScaler("cuda")
    with autocast("cuda"):
        loss = model(x)
    ```

    ## Fix safety
    Safe: `torch.amp.autocast("cuda", ...)` and `torch.amp.GradScaler("cuda", ...)`
    have the same defaults as the old classes. Positional arguments of the old
    `autocast(enabled, dtype, cache_enabled)` are passed by keyword, because the new
    signature's second parameter is `dtype`. A `from torch.cuda.amp import ...` or
    `from torch.cuda import amp` import is rewritten to `torch.amp` when every use of
    the imported names is a call that is rewritten too; otherwise the calls are
    spelled `torch.amp.autocast("cuda", ...)` (adding `import torch` if needed) and
    the import is left for the remaining uses. No fix with `*args`.

    ## References
    - PyTorch AMP docs: https://pytorch.org/docs/stable/amp.html
    - No ruff rule covers this (ruff has no PyTorch deprecation rules).
    """

    code = "AIP105"
    name = "deprecated-cuda-amp"
    message = '`torch.cuda.amp.{name}(...)` is deprecated; use `torch.amp.{name}("cuda", ...)`'
    fix_kind = "safe"
    triggers = (b"amp",)
    trigger_all = ((b"cuda",),)  # every spelling goes through torch.cuda

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._calls: list[tuple[cst.Call, str]] = []  # (call, "autocast" | "GradScaler")
        self._reports_by_call: dict[int, int] = {}
        self._name_uses: dict[str, int] = {}  # local name -> references outside imports

    def visit_Call(self, node: cst.Call) -> None:
        qname = self.ctx.qualified_name(node.func)
        qname = _ALIASES.get(qname or "", qname)
        if not qname or qname.rpartition(".")[0] != _OLD or qname.rpartition(".")[2] not in _NAMES:
            return
        name = qname.rpartition(".")[2]
        self._reports_by_call[id(node)] = len(self.reports)
        self._calls.append((node, name))
        self.report(node, self.message.format(name=name))

    def visit_Name(self, node: cst.Name) -> None:
        parent = self.ctx.parent()
        if isinstance(parent, (cst.ImportAlias, cst.AsName)):
            return
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            return
        if isinstance(parent, cst.Arg) and parent.keyword is node:
            return
        if isinstance(parent, (cst.FunctionDef, cst.ClassDef, cst.Param)):
            return
        self._name_uses[node.value] = self._name_uses.get(node.value, 0) + 1

    def leave_Module(self, node: cst.Module) -> None:
        """Attach fixes once every use of the imported names has been seen."""
        import_fix = self._import_rewrite(node)
        for call, name in self._calls:
            report = self.reports[self._reports_by_call[id(call)]]
            if import_fix is not None and call in import_fix.replacements:
                report.fix = import_fix
            else:
                report.fix = self._standalone_fix(call, name)

    # ------------------------------------------------------------ fixes

    def _new_args(self, call: cst.Call, name: str) -> list[cst.Arg] | None:
        if any(arg.star for arg in call.args):
            return None
        args = list(call.args)
        if name == "autocast":
            positional = positional_args(call)
            if len(positional) > len(_AUTOCAST_POSITIONAL):
                return None
            for arg, keyword in zip(positional, _AUTOCAST_POSITIONAL):
                args[args.index(arg)] = arg.with_changes(keyword=cst.Name(keyword), equal=_EQUAL)
        return [_CUDA, *args]

    def _standalone_fix(self, call: cst.Call, name: str) -> Fix | None:
        """`<torch>.amp.<name>("cuda", ...)`; the old import stays for its other uses."""
        args = self._new_args(call, name)
        if args is None:
            return None
        root, imports = self._torch_root()
        func = cst.Attribute(cst.Attribute(cst.Name(root), cst.Name("amp")), cst.Name(name))
        dotted = dotted_name(call.func) or ""
        head = dotted.split(".")[0]
        if self.ctx.imports.get(head) == "torch":
            func = cst.Attribute(cst.Attribute(cst.Name(head), cst.Name("amp")), cst.Name(name))
            imports = []
        new_call = call.with_changes(func=func, args=args)
        return Fix("safe", {call: new_call}, imports=imports, description="use torch.amp")

    def _torch_root(self) -> tuple[str, list[ImportSpec]]:
        for local, full in self.ctx.imports.items():
            if full == "torch" and "." not in local:
                return local, []
        return "torch", [ImportSpec("torch")]

    def _import_rewrite(self, module: cst.Module) -> Fix | None:
        """One fix for the whole file: imports to torch.amp, every call gets "cuda".

        Only when each name imported from torch.cuda.amp (or the `amp` module alias)
        is used solely by calls this rule rewrites: otherwise a remaining use would
        silently start meaning the torch.amp class without its device argument.
        """
        imports = _amp_imports(module)
        if not imports:
            return None
        locals_ = {local for _, aliases in imports for local in aliases}
        rewritten: dict[cst.CSTNode, object] = {}
        call_uses: dict[str, int] = {}
        for call, name in self._calls:
            head = (dotted_name(call.func) or "").split(".")[0]
            if head not in locals_:
                continue
            args = self._new_args(call, name)
            if args is None:
                return None
            rewritten[call] = call.with_changes(args=args)
            call_uses[head] = call_uses.get(head, 0) + 1
        for local in locals_:
            if self._name_uses.get(local, 0) != call_uses.get(local, 0):
                return None
        for statement, aliases in imports:
            rewritten[statement] = _to_torch_amp(statement, aliases)
        return Fix("safe", rewritten, description="use torch.amp")


_EQUAL = cst.AssignEqual(
    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
)


def _amp_imports(module: cst.Module) -> list[tuple[cst.CSTNode, list[str]]]:
    """Top-level imports of the old API, with the local names each binds.

    `from torch.cuda.amp import autocast, GradScaler`, `from torch.cuda import amp`,
    `import torch.cuda.amp as amp`. An import that also binds other names from
    torch.cuda.amp (`custom_fwd`) is left as it is; its calls get the standalone fix.
    """
    found = []
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                if len(small.names) == 1 and small.names[0].asname is not None:
                    alias = small.names[0]
                    if dotted_name(alias.name) == _OLD:
                        found.append((small, [dotted_name(alias.asname.name)]))
                continue
            if not isinstance(small, cst.ImportFrom) or small.relative or small.module is None:
                continue
            if isinstance(small.names, cst.ImportStar):
                continue
            module_name = dotted_name(small.module)
            names = [dotted_name(alias.name) for alias in small.names]
            if (module_name == _OLD and set(names) <= _NAMES) or (
                module_name == "torch.cuda" and names == ["amp"]
            ):
                pass
            else:
                continue
            aliases = [
                dotted_name(alias.asname.name) if alias.asname else dotted_name(alias.name)
                for alias in small.names
            ]
            found.append((small, aliases))
    return found


def _to_torch_amp(statement, aliases: list[str]):
    if isinstance(statement, cst.Import):  # import torch.cuda.amp as amp
        alias = statement.names[0]
        new_name = cst.Attribute(cst.Name("torch"), cst.Name("amp"))
        return statement.with_changes(names=[alias.with_changes(name=new_name)])
    if dotted_name(statement.module) == _OLD:
        new_module = cst.Attribute(cst.Name("torch"), cst.Name("amp"))
    else:
        new_module = cst.Name("torch")
    return statement.with_changes(module=new_module)


VALID = [
    # the new API
    """
import torch
scaler = torch.amp.GradScaler("cuda")
with torch.amp.autocast("cuda", dtype=torch.bfloat16):
    pass
""",
    """
from torch.amp import autocast, GradScaler
with autocast("cuda"):
    pass
""",
    # CPU autocast is not deprecated
    """
import torch
with torch.cpu.amp.autocast():
    pass
""",
    # a local function that happens to be called autocast
    """
def autocast():
    return None
with autocast():
    pass
""",
    # apex.amp is another library
    """
from apex import amp
model, opt = amp.initialize(model, opt)
""",
]

INVALID = [
    Invalid(
        """
import torch
scaler = torch.cuda.amp.GradScaler()
with torch.cuda.amp.autocast():
    loss = model(x)
""",
        fixed="""
import torch
scaler = torch.amp.GradScaler("cuda")
with torch.amp.autocast("cuda"):
    loss = model(x)
""",
        count=2,
    ),
    # alias import, positional autocast args become keywords
    Invalid(
        """
import torch as T
def step(x):
    with T.cuda.amp.autocast(True, T.bfloat16):
        return model(x)
scaler = T.cuda.amp.GradScaler(2.0**10, enabled=True)
""",
        fixed="""
import torch as T
def step(x):
    with T.amp.autocast("cuda", enabled=True, dtype=T.bfloat16):
        return model(x)
scaler = T.amp.GradScaler("cuda", 2.0**10, enabled=True)
""",
        count=2,
    ),
    # from-import: the import is rewritten with every call
    Invalid(
        """
from torch.cuda.amp import autocast, GradScaler
class Trainer:
    def __init__(self):
        self.scaler = GradScaler(enabled=True)
    def step(self, x):
        with autocast(dtype=torch.float16):
            return self.model(x)
""",
        fixed="""
from torch.amp import autocast, GradScaler
class Trainer:
    def __init__(self):
        self.scaler = GradScaler("cuda", enabled=True)
    def step(self, x):
        with autocast("cuda", dtype=torch.float16):
            return self.model(x)
""",
        count=2,
    ),
    # module alias
    Invalid(
        """
from torch.cuda import amp
scaler = amp.GradScaler()
with amp.autocast():
    pass
""",
        fixed="""
from torch import amp
scaler = amp.GradScaler("cuda")
with amp.autocast("cuda"):
    pass
""",
        count=2,
    ),
    # a non-call use of the imported name: calls spelled with torch.amp, import kept
    Invalid(
        """
from torch.cuda.amp import autocast
ctx = autocast if use_amp else nullcontext
with autocast():
    pass
""",
        fixed="""
from torch.cuda.amp import autocast
import torch
ctx = autocast if use_amp else nullcontext
with torch.amp.autocast("cuda"):
    pass
""",
    ),
    # `import torch.cuda.amp as amp`
    Invalid(
        """
import torch.cuda.amp as amp
scaler = amp.GradScaler()
""",
        fixed="""
import torch.amp as amp
scaler = amp.GradScaler("cuda")
""",
    ),
]
