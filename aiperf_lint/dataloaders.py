"""Data-pipeline facts for the semantic layer: DataLoader calls, their datasets, loader use.

Reached through `semantic.Context`: `ctx.loader_call(call)` describes one
`torch.utils.data.DataLoader(...)` call at the current position (its dataset,
the dataset's class and kind, the name the loader is bound to), and
`ctx.pipeline()` holds module-level facts computed lazily, once per file, by one
walk of the module: does the module move its batches to CUDA, which loader
names are iterated once per epoch, which are only used to draw one batch.

Everything here is name- and shape-based (no execution, no imports of the
linted code). Unknown stays unknown: rules decide what unknown means.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from aiperf_lint.semantic import (
    _LOADER_NAME,
    ClassInfo,
    _unwrap_iterable,
    call_name,
    dotted_name,
    keyword_arg,
    names_in,
    positional_args,
)

if TYPE_CHECKING:
    from aiperf_lint.semantic import Context

DATALOADER = "torch.utils.data.DataLoader"
TENSOR_DATASET = "torch.utils.data.TensorDataset"

# DataLoader's positional parameters (torch 1.x-2.x); later ones are keyword-only.
LOADER_POSITIONAL = (
    "dataset",
    "batch_size",
    "shuffle",
    "sampler",
    "batch_sampler",
    "num_workers",
    "collate_fn",
    "pin_memory",
    "drop_last",
    "timeout",
    "worker_init_fn",
    "multiprocessing_context",
    "generator",
)

# Parts of callee names that mean real per-item work: decoding, reading, transforming.
_ITEM_WORK_PARTS = frozenset(
    {
        "open",
        "imread",
        "imdecode",
        "read",
        "load",
        "loads",
        "decode",
        "transform",
        "transforms",
        "augment",
        "augmentation",
        "augmentations",
        "aug",
        "resize",
        "crop",
        "tokenize",
        "tokenizer",
        "encode",
        "preprocess",
        "process",
        "parse",
        "normalize",
        "convert",
        "audio",
        "image",
        "video",
    }
)
_ITEM_WORK_STEMS = ("transform", "tokeniz", "augment", "decode", "imread")
_ITEM_METHODS = ("__getitem__", "__getitems__", "__iter__", "__next__")
_DTYPE_NAMES = re.compile(
    r"^(float|double|half|bfloat16|int|long|short|uint8|int8|bool|complex)\d*$"
)
_EPOCH = re.compile(r"epoch", re.IGNORECASE)
# Lightning calls these once per epoch (test/predict loaders run once).
_PER_EPOCH_HOOKS = frozenset({"train_dataloader", "val_dataloader"})
_ANY_SCOPE = -1


@dataclass
class LoaderCall:
    """One `DataLoader(...)` call and what is known about its dataset."""

    call: cst.Call
    dataset: cst.BaseExpression | None
    dataset_source: cst.BaseExpression | None  # the expression that built the dataset
    dataset_qualname: str | None  # e.g. torch.utils.data.TensorDataset, torchvision.datasets.X
    dataset_class: ClassInfo | None  # a Dataset class defined in this module
    dataset_kind: str | None
    scope: int | None  # id of the enclosing def, None at module level
    bound_to: str | None  # `loader = DataLoader(...)` -> "loader", `self.dl = ...` -> "self.dl"
    returned_from: str | None  # `return DataLoader(...)` inside def f -> "f"
    inside_loop: bool  # built inside a for/while loop (rebuilt every iteration)

    def argument(self, name: str) -> cst.BaseExpression | None:
        """The argument bound to DataLoader parameter `name` (keyword or positional)."""
        arg = keyword_arg(self.call, name)
        if arg is not None:
            return arg.value
        if name in LOADER_POSITIONAL:
            index = LOADER_POSITIONAL.index(name)
            positional = positional_args(self.call)
            if index < len(positional):
                return positional[index].value
        return None

    @property
    def has_star_args(self) -> bool:
        """`*args` / `**kwargs` may carry any argument: nothing is known then."""
        return any(arg.star for arg in self.call.args)


def describe_call(ctx: Context, call: cst.Call) -> LoaderCall:
    dataset = None
    positional = positional_args(call)
    keyword = keyword_arg(call, "dataset")
    if keyword is not None:
        dataset = keyword.value
    elif positional:
        dataset = positional[0].value
    source = _dataset_source(ctx, dataset)
    qualname, cls = None, None
    if isinstance(source, cst.Call):
        qualname = ctx.qualified_name(source.func)
        if isinstance(source.func, cst.Name):
            cls = ctx.classes.get(source.func.value)
    function = ctx.current_function()
    bound_to, returned_from = _binding_of_call(ctx, call)
    return LoaderCall(
        call=call,
        dataset=dataset,
        dataset_source=source,
        dataset_qualname=qualname,
        dataset_class=cls,
        dataset_kind=ctx.kind_of(dataset),
        scope=id(function.node) if function is not None else None,
        bound_to=bound_to,
        returned_from=returned_from,
        inside_loop=bool(ctx.statement_loops()),
    )


def _dataset_source(ctx: Context, dataset: cst.BaseExpression | None):
    if isinstance(dataset, cst.Name):
        binding = ctx.binding(dataset.value)
        return binding.value if binding is not None else None
    return dataset


def _binding_of_call(ctx: Context, call: cst.Call) -> tuple[str | None, str | None]:
    parent = ctx.parent()
    if isinstance(parent, cst.Assign) and parent.value is call and len(parent.targets) == 1:
        return _plain_target(parent.targets[0].target), None
    if isinstance(parent, cst.AnnAssign) and parent.value is call:
        return _plain_target(parent.target), None
    if isinstance(parent, cst.Return):
        function = ctx.current_function()
        return None, function.name if function is not None else None
    return None, None


def _plain_target(target: cst.BaseExpression) -> str | None:
    dotted = dotted_name(target)
    if dotted is None or dotted.count(".") > 1:
        return None
    if "." in dotted and not dotted.startswith("self."):
        return None
    return dotted


def module_int_constant(ctx: Context, expr: cst.BaseExpression | None) -> int | None:
    """An int literal, or a name bound at module level to one (`NUM_WORKERS = 0`)."""
    if isinstance(expr, cst.Integer):
        return int(expr.evaluated_value)
    if isinstance(expr, cst.Name) and not ctx._shadowed(expr.value):
        binding = ctx.scopes[0].names.get(expr.value)
        if binding is not None and isinstance(binding.value, cst.Integer):
            return int(binding.value.evaluated_value)
    return None


# ---------------------------------------------------------------- dataset classes


def class_methods(ctx: Context, info: ClassInfo) -> dict[str, cst.FunctionDef]:
    """Methods of a class, those of local base classes included (subclass wins)."""
    methods: dict[str, cst.FunctionDef] = {}
    seen: set[str] = set()
    stack = [info]
    while stack:
        current = stack.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        for name, node in current.methods.items():
            methods.setdefault(name, node)
        stack.extend(ctx.classes[b] for b in current.bases if b in ctx.classes)
    return methods


def has_item_work(ctx: Context, info: ClassInfo) -> bool:
    """Does `__getitem__`/`__iter__` decode, read or transform each item?

    Looks at the callee names in those methods and in same-class methods they
    call (one level). Indexing in-memory tensors (`self.x[i]`) is no evidence.
    """
    methods = class_methods(ctx, info)
    bodies = [methods[n] for n in _ITEM_METHODS if n in methods]
    names = _callee_names(bodies)
    helpers = [methods[n] for n in names if n in methods and n not in _ITEM_METHODS]
    names |= _callee_names(helpers)
    return any(_is_item_work_name(n) for n in names)


def _is_item_work_name(name: str) -> bool:
    lowered = name.lower()
    if any(stem in lowered for stem in _ITEM_WORK_STEMS):
        return True
    return any(part in _ITEM_WORK_PARTS for part in lowered.split("_"))


def _callee_names(functions: list[cst.FunctionDef]) -> set[str]:
    finder = _CalleeNames()
    for function in functions:
        function.body.visit(finder)
    return finder.names


class _CalleeNames(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.moves_to_device = False
        self.asks_worker_info = False

    def visit_Call(self, node: cst.Call) -> None:
        name = call_name(node)
        if name:
            self.names.add(name)
        if name == "cuda" or (name == "to" and is_device_transfer(node)):
            self.moves_to_device = True
        if name == "get_worker_info":
            self.asks_worker_info = True


def shards_by_worker(ctx: Context, info: ClassInfo) -> bool:
    """An IterableDataset that splits its stream by `get_worker_info()`."""
    finder = _CalleeNames()
    for method in class_methods(ctx, info).values():
        method.body.visit(finder)
    return finder.asks_worker_info


def moves_to_device(functions: list[cst.CSTNode]) -> bool:
    """Do these functions/expressions call `.cuda()` or `.to(<device>)`?"""
    finder = _CalleeNames()
    for function in functions:
        function.visit(finder)
    return finder.moves_to_device


def is_device_transfer(call: cst.Call) -> bool:
    """`x.to(device)`, `x.to("cuda")`, `x.to(device=d)`; not a dtype-only `x.to(torch.float16)`."""
    if keyword_arg(call, "device") is not None:
        return True
    positional = positional_args(call)
    if not positional:
        return False
    first = positional[0].value
    dotted = dotted_name(first) or ""
    last = dotted.rsplit(".", 1)[-1]
    return not (dotted.startswith("torch.") and _DTYPE_NAMES.match(last)) and last != "dtype"


# ---------------------------------------------------------------- module facts


@dataclass
class PipelineFacts:
    """How a module uses its loaders (one walk of the whole module)."""

    moves_batches_to_cuda: bool = False
    per_epoch: dict[str, set[int | None]] = field(default_factory=dict)
    name_uses: dict[str, dict[int | None, int]] = field(default_factory=dict)
    one_batch_uses: dict[str, dict[int | None, int]] = field(default_factory=dict)
    assigned_from_call: dict[str, set[tuple[int | None, str]]] = field(default_factory=dict)
    mutated_in_loops: set[str] = field(default_factory=set)

    def _keys(self, loader: LoaderCall) -> list[tuple[int | None, str]]:
        if loader.bound_to is not None:
            return [(loader.scope, loader.bound_to)]
        if loader.returned_from is not None:
            return sorted(self.assigned_from_call.get(loader.returned_from, ()), key=str)
        return []

    def iterated_per_epoch(self, loader: LoaderCall) -> bool:
        """Is this loader object iterated more than once (an epoch loop, `trainer.fit`)?"""
        if loader.inside_loop:
            return False  # rebuilt every iteration: a new loader per pass
        if loader.returned_from in _PER_EPOCH_HOOKS:
            return True
        return any(self._matches(self.per_epoch, key) for key in self._keys(loader))

    def used_for_one_batch_only(self, loader: LoaderCall) -> bool:
        """Every use of the loader's name is `next(iter(name))`."""
        if loader.bound_to is None or "." in loader.bound_to:
            return False
        name, scope = loader.bound_to, loader.scope
        uses = self.name_uses.get(name, {})
        once = self.one_batch_uses.get(name, {})
        if scope is None:  # a module-level loader may be used in any function
            total, batches = sum(uses.values()), sum(once.values())
        else:
            total, batches = uses.get(scope, 0), once.get(scope, 0)
        return batches > 0 and total == batches + 1  # +1: the binding itself

    @staticmethod
    def _matches(table: dict[str, set[int | None]], key: tuple[int | None, str]) -> bool:
        scope, name = key
        scopes = table.get(name, set())
        if not scopes:
            return False
        if scope is None or name.startswith("self.") or _ANY_SCOPE in scopes:
            return True
        return scope in scopes


def scan_pipeline(ctx: Context, module: cst.Module) -> PipelineFacts:
    scan = _PipelineScan(ctx)
    module.visit(scan)
    return scan.finish()


@dataclass
class _Loop:
    node: cst.CSTNode
    iterates_loader: bool
    epoch_like: bool


class _PipelineScan(cst.CSTVisitor):
    """One walk over the module; loops are tracked per function (a def resets them)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.facts = PipelineFacts()
        self.scopes: list[cst.FunctionDef | None] = [None]
        self.loops: list[list[_Loop]] = [[]]
        self.loader_names: set[str] = set()
        self.cuda_evidence = False
        self.transfer_in_loader_loop = False
        self.iterated_at_top: dict[str, set[str]] = defaultdict(set)
        self.calls_in_loops: list[tuple[int | None, str, list[str]]] = []

    # -- scopes
    @property
    def scope(self) -> int | None:
        node = self.scopes[-1]
        return id(node) if node is not None else None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.scopes.append(node)
        self.loops.append([])

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.scopes.pop()
        self.loops.pop()

    # -- loops
    def visit_For(self, node: cst.For) -> None:
        inner = _unwrap_iterable(node.iter)
        loader = self._is_loader_like(inner)
        epoch = bool(_EPOCH.search(" ".join(names_in(node.target) | names_in(node.iter))))
        dotted = dotted_name(inner)
        if loader and dotted is not None:
            if self.loops[-1]:
                self._per_epoch(dotted, self.scope)
            elif self.scopes[-1] is not None:
                self.iterated_at_top[self.scopes[-1].name.value].add(dotted)
        self.loops[-1].append(_Loop(node, loader, epoch))

    def leave_For(self, node: cst.For) -> None:
        self.loops[-1].pop()

    def visit_While(self, node: cst.While) -> None:
        epoch = bool(_EPOCH.search(" ".join(names_in(node.test))))
        self.loops[-1].append(_Loop(node, False, epoch))

    def leave_While(self, node: cst.While) -> None:
        self.loops[-1].pop()

    def _is_loader_like(self, expr: cst.BaseExpression) -> bool:
        if isinstance(expr, cst.Call):
            return self.ctx.qualified_name(expr.func) == DATALOADER
        dotted = dotted_name(expr)
        if dotted is None:
            return False
        return dotted in self.loader_names or bool(_LOADER_NAME.search(dotted.split(".")[-1]))

    # -- bindings
    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1:
            return
        target = _plain_target(node.targets[0].target)
        value = node.value
        if isinstance(value, cst.Call) and target is not None:
            if self.ctx.qualified_name(value.func) == DATALOADER:
                self.loader_names.add(target)
            callee = dotted_name(value.func)
            if callee is not None and (callee.count(".") == 0 or callee.startswith("self.")):
                name = callee.rsplit(".", 1)[-1]
                self.facts.assigned_from_call.setdefault(name, set()).add((self.scope, target))
        if self.loops[-1]:
            for t in node.targets:
                if isinstance(t.target, cst.Attribute):
                    owner = dotted_name(t.target.value)
                    if owner:
                        self.facts.mutated_in_loops.add(owner)

    # -- uses
    def visit_Name(self, node: cst.Name) -> None:
        uses = self.facts.name_uses.setdefault(node.value, {})
        uses[self.scope] = uses.get(self.scope, 0) + 1

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if "cuda" in node.value and str(node.evaluated_value).startswith("cuda"):
            self.cuda_evidence = True

    def visit_Attribute(self, node: cst.Attribute) -> None:
        # torch.cuda.*, torch.accelerator.* (the device-generic API, CUDA on NVIDIA)
        if node.attr.value in {"cuda", "accelerator"} and dotted_name(node.value) == "torch":
            self.cuda_evidence = True

    def visit_Call(self, node: cst.Call) -> None:
        name = call_name(node)
        loops = self.loops[-1]
        if name == "cuda" and isinstance(node.func, cst.Attribute):
            self.cuda_evidence = True
        if name in {"cuda", "to"} and isinstance(node.func, cst.Attribute):
            if any(loop.iterates_loader for loop in loops) and (
                name == "cuda" or is_device_transfer(node)
            ):
                self.transfer_in_loader_loop = True
        if name == "next":
            self._one_batch(node)
        if name == "fit":  # trainer.fit(model, loader): iterated once per epoch
            for arg_name in _argument_names(node):
                self._per_epoch(arg_name, _ANY_SCOPE)
        if not loops:
            return
        if name and name.startswith("set_") and isinstance(node.func, cst.Attribute):
            owner = dotted_name(node.func.value)
            if owner:
                self.facts.mutated_in_loops.add(owner)
        callee = dotted_name(node.func)
        if callee is not None and (callee.count(".") == 0 or callee.startswith("self.")):
            self.calls_in_loops.append(
                (self.scope, callee.rsplit(".", 1)[-1], _argument_names(node))
            )
        if any(loop.epoch_like for loop in loops):
            for arg_name in _argument_names(node):
                self._per_epoch(arg_name, self.scope)

    def _one_batch(self, node: cst.Call) -> None:
        args = positional_args(node)
        if len(args) == 1 and isinstance(args[0].value, cst.Call):
            inner = args[0].value
            inner_args = positional_args(inner)
            if call_name(inner) == "iter" and len(inner_args) == 1:
                target = inner_args[0].value
                if isinstance(target, cst.Name):
                    once = self.facts.one_batch_uses.setdefault(target.value, {})
                    once[self.scope] = once.get(self.scope, 0) + 1

    def _per_epoch(self, name: str, scope: int | None) -> None:
        self.facts.per_epoch.setdefault(name, set()).add(scope)

    def finish(self) -> PipelineFacts:
        # A function that iterates a loader, called inside a loop, iterates it per epoch.
        for scope, function, arg_names in self.calls_in_loops:
            iterated = self.iterated_at_top.get(function)
            if not iterated:
                continue
            for name in iterated:
                self._per_epoch(name, _ANY_SCOPE)
            for arg_name in arg_names:
                self._per_epoch(arg_name, scope)
        self.facts.moves_batches_to_cuda = self.cuda_evidence and self.transfer_in_loader_loop
        return self.facts


def _argument_names(call: cst.Call) -> list[str]:
    names = []
    for arg in call.args:
        dotted = dotted_name(arg.value)
        if dotted is not None:
            names.append(dotted)
    return names


# ---------------------------------------------------------------- fixes


def with_keyword_args(call: cst.Call, updates: dict[str, cst.BaseExpression]) -> cst.Call:
    """The call with keyword arguments set (replaced in place, or appended in its style)."""
    args = list(call.args)
    for name, value in updates.items():
        index = next(
            (i for i, a in enumerate(args) if a.keyword is not None and a.keyword.value == name),
            None,
        )
        if index is not None:
            args[index] = args[index].with_changes(value=value)
            continue
        args = _append_keyword(call, args, name, value)
    return call.with_changes(args=args)


def _append_keyword(call: cst.Call, args: list[cst.Arg], name: str, value) -> list[cst.Arg]:
    new = cst.Arg(
        value=value,
        keyword=cst.Name(name),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )
    if not args:
        return [new]
    last = args[-1]
    if isinstance(last.comma, cst.Comma):  # trailing comma: keep the multi-line layout
        if len(args) >= 2 and isinstance(args[-2].comma, cst.Comma):
            separator = args[-2].comma
        else:
            separator = cst.Comma(whitespace_after=call.whitespace_before_args)
        return [*args[:-1], last.with_changes(comma=separator), new.with_changes(comma=last.comma)]
    separator = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return [*args[:-1], last.with_changes(comma=separator), new]
