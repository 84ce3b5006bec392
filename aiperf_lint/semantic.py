"""The shared "what is this name" layer used by every rule.

Built during the single traversal that runs the rules (the engine calls
`Context.enter` before the rules' `visit_*` and `Context.leave` after their
`leave_*`), so rules always see the context of the node they are visiting.

What it knows, cheaply and without LibCST's metadata providers:

* **Imports**: a local-name -> qualified-name table (`import pandas as pd`,
  `from torch.utils.data import DataLoader as DL`, imports inside functions).
  `qualified_name(expr)` resolves `pd.read_csv` to `pandas.read_csv`.
  Names not imported and not defined in the module resolve to `builtins.X`
  when X is a builtin.
* **Kinds**: `kind_of(expr)` infers what an expression evaluates to —
  DataFrame, Series, Tensor, Module, DataLoader, Dataset, ndarray, list, set,
  dict, str, number, file — from constructors, factories, methods, operators,
  annotations, assignments in enclosing scopes, `self.x` attributes assigned in
  the class, and user classes deriving from library bases. `None` means unknown;
  `OTHER` means known *not* to be any library kind (an instance of a local class).
* **Loops**: a stack of `LoopFrame`s (for/while/comprehensions) with the names
  each loop binds (loop-variant names) and whether it is a training/inference
  loop (iterates a DataLoader, or calls `backward()` / `optimizer.step()`).
* **Functions**: a stack of `FunctionFrame`s with decorators, async-ness and role
  (inference, request handler, `__init__`, ...).
* **Contexts**: whether autograd is disabled here (`torch.no_grad()` etc.),
  whether we are under a periodic guard (`if step % 100 == 0:`), inside an
  `except` handler, and the innermost enclosing statement.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import libcst as cst

from aiperf_lint import walk

# ---------------------------------------------------------------- kinds

DATAFRAME = "DataFrame"
SERIES = "Series"
TENSOR = "Tensor"
MODULE = "Module"
OPTIMIZER = "Optimizer"
DATALOADER = "DataLoader"
DATASET = "Dataset"
ITERABLE_DATASET = "IterableDataset"
NDARRAY = "ndarray"
LIST = "list"
TUPLE = "tuple"
SET = "set"
DICT = "dict"
STR = "str"
NUMBER = "number"
BOOL = "bool"
FILE = "file"
OTHER = "other"  # known to be none of the library kinds above
PIPELINE = "Pipeline"  # a transformers pipeline object (callable inference)
INFERENCE_SESSION = "InferenceSession"  # onnxruntime session (`.run` is inference)
THREAD_POOL = "ThreadPool"  # ThreadPoolExecutor, multiprocessing.dummy.Pool, ThreadPool
TOKEN_STREAMER = "TokenStreamer"  # transformers TextIteratorStreamer (blocking iteration)

PANDAS_KINDS = {DATAFRAME, SERIES}

_BUILTINS = frozenset(dir(builtins))

# Canonical spellings of re-exported names.
_CANONICAL = {
    "torch.utils.data.dataloader.DataLoader": "torch.utils.data.DataLoader",
    "torch.utils.data.dataset.Dataset": "torch.utils.data.Dataset",
    "torch.utils.data.dataset.IterableDataset": "torch.utils.data.IterableDataset",
    "torch.utils.data.dataset.TensorDataset": "torch.utils.data.TensorDataset",
    "pandas.core.frame.DataFrame": "pandas.DataFrame",
    "pandas.core.series.Series": "pandas.Series",
    "torch.nn.modules.module.Module": "torch.nn.Module",
    "torch.autograd.grad_mode.no_grad": "torch.no_grad",
    "torch.autograd.grad_mode.inference_mode": "torch.inference_mode",
    "torch.autograd.grad_mode.set_grad_enabled": "torch.set_grad_enabled",
    "numpy.core.multiarray.array": "numpy.array",
    "concurrent.futures.thread.ThreadPoolExecutor": "concurrent.futures.ThreadPoolExecutor",
    "transformers.pipelines.pipeline": "transformers.pipeline",
    "transformers.generation.streamers.TextIteratorStreamer": "transformers.TextIteratorStreamer",
    "transformers.generation.TextIteratorStreamer": "transformers.TextIteratorStreamer",
}

TORCH_FACTORIES = frozenset(
    [
        "randn",
        "rand",
        "randint",
        "randperm",
        "normal",
        "zeros",
        "ones",
        "empty",
        "full",
        "arange",
        "linspace",
        "logspace",
        "eye",
        "tensor",
        "as_tensor",
        "zeros_like",
        "ones_like",
        "empty_like",
        "full_like",
        "rand_like",
        "randn_like",
        "randint_like",
        "from_numpy",
        "stack",
        "cat",
    ]
)

# Calls whose result kind is known, by qualified name.
_CALL_KINDS = {
    "pandas.DataFrame": DATAFRAME,
    "pandas.Series": SERIES,
    "pandas.concat": DATAFRAME,
    "pandas.merge": DATAFRAME,
    "pandas.pivot_table": DATAFRAME,
    "pandas.get_dummies": DATAFRAME,
    "pandas.json_normalize": DATAFRAME,
    "torch.utils.data.DataLoader": DATALOADER,
    "torch.utils.data.TensorDataset": DATASET,
    "numpy.asarray": NDARRAY,
    "numpy.array": NDARRAY,
    "builtins.list": LIST,
    "builtins.sorted": LIST,
    "builtins.tuple": TUPLE,
    "builtins.set": SET,
    "builtins.frozenset": SET,
    "builtins.dict": DICT,
    "builtins.str": STR,
    "builtins.int": NUMBER,
    "builtins.float": NUMBER,
    "builtins.len": NUMBER,
    "builtins.sum": NUMBER,
    "builtins.bool": BOOL,
    "builtins.open": FILE,
    "builtins.range": "range",
    "builtins.zip": "zip",
    "builtins.enumerate": "enumerate",
    "torch.jit.load": MODULE,
    "torch.jit.script": MODULE,
    "torch.jit.trace": MODULE,
    "torch.compile": MODULE,
    "transformers.pipeline": PIPELINE,
    "onnxruntime.InferenceSession": INFERENCE_SESSION,
    "concurrent.futures.ThreadPoolExecutor": THREAD_POOL,
    "multiprocessing.dummy.Pool": THREAD_POOL,
    "multiprocessing.pool.ThreadPool": THREAD_POOL,
    "transformers.TextIteratorStreamer": TOKEN_STREAMER,
}

# Methods of a model object that run inference (`model.generate(...)`).
_MODEL_INFERENCE_METHODS = frozenset({"forward", "generate", "predict", "predict_proba", "encode"})
# Names that, in a module importing an ML library, hold a model even when the
# assignment is out of sight (`self.model = load_model(...)`).
_MODEL_NAME = re.compile(
    r"^(model|net|network|llm|classifier|detector|generator|encoder|backbone)$|_(model|net)$|^model_",
    re.IGNORECASE,
)
_MODEL_ATTRIBUTE = re.compile(r"^model$|_model$|^model_", re.IGNORECASE)
_ML_ROOTS = (
    "torch",
    "transformers",
    "onnxruntime",
    "sentence_transformers",
    "sklearn",
    "keras",
    "tensorflow",
)

_NUMPY_ARRAY_FUNCS = frozenset(
    [
        "zeros",
        "ones",
        "empty",
        "full",
        "arange",
        "linspace",
        "logspace",
        "eye",
        "identity",
        "zeros_like",
        "ones_like",
        "empty_like",
        "full_like",
        "concatenate",
        "stack",
        "vstack",
        "hstack",
        "append",
        "where",
        "sqrt",
        "exp",
        "log",
        "abs",
        "dot",
        "matmul",
        "cumsum",
        "sort",
        "argsort",
        "unique",
        "clip",
        "load",
        "loadtxt",
        "genfromtxt",
        "fromiter",
        "frombuffer",
    ]
)

_DATAFRAME_METHODS = frozenset(
    [
        "copy",
        "dropna",
        "fillna",
        "drop",
        "drop_duplicates",
        "merge",
        "join",
        "head",
        "tail",
        "query",
        "assign",
        "sort_values",
        "sort_index",
        "reset_index",
        "set_index",
        "rename",
        "astype",
        "reindex",
        "sample",
        "filter",
        "select_dtypes",
        "pivot",
        "pivot_table",
        "melt",
        "transpose",
        "abs",
        "round",
        "clip",
        "replace",
        "where",
        "mask",
        "explode",
        "interpolate",
        "ffill",
        "bfill",
        "nlargest",
        "nsmallest",
        "append",
        "_append",
    ]
)
_SERIES_METHODS = frozenset(
    [
        "copy",
        "dropna",
        "fillna",
        "astype",
        "map",
        "apply",
        "abs",
        "round",
        "clip",
        "replace",
        "where",
        "mask",
        "sort_values",
        "sort_index",
        "reset_index",
        "head",
        "tail",
        "rolling",
        "shift",
        "diff",
        "cumsum",
        "rank",
        "isin",
        "isna",
        "notna",
        "between",
        "append",
        "_append",
    ]
)
_TENSOR_TO_OTHER = {"item": NUMBER, "tolist": LIST, "numpy": NDARRAY, "size": TUPLE}
_TENSOR_NON_TENSOR = frozenset({"dim", "numel", "element_size", "is_contiguous"})
_MODULE_SELF_METHODS = frozenset(
    ["to", "cuda", "cpu", "eval", "train", "half", "float", "double", "bfloat16", "requires_grad_"]
)

_INFERENCE_NAME = re.compile(
    r"(^|_)(predict|prediction|predictions|infer|inference|evaluate|evaluation|"
    r"eval|validate|validation|valid|val|test|serve|score|generate|embed|encode_batch)"
    r"(_|$|s$)",
    re.IGNORECASE,
)
_HANDLER_DECORATOR_ATTRS = frozenset(
    ["get", "post", "put", "delete", "patch", "route", "api_route", "websocket", "head", "options"]
)
_VIEW_DECORATORS = frozenset(
    {
        "django.views.decorators.http.require_http_methods",
        "django.views.decorators.http.require_GET",
        "django.views.decorators.http.require_POST",
        "django.views.decorators.http.require_safe",
        "django.views.decorators.csrf.csrf_exempt",
        "rest_framework.decorators.api_view",
    }
)
_VIEW_BASES = frozenset(
    {"View", "APIView", "GenericAPIView", "ViewSet", "HTTPEndpoint", "MethodView"}
)
_HTTP_VERB_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "create", "list", "retrieve", "update"}
)
_LOADER_NAME = re.compile(r"(^|_)(loader|dataloader|dl|batches)(_|$)|loader$", re.I)
_OPTIMIZER_NAME = re.compile(r"(^|_)(optim|optimizer|opt|optimiser)(_|$|\d)", re.I)

_GRAD_OFF = frozenset({"torch.no_grad", "torch.inference_mode"})

# Autograd history (Context.carries_grad): what makes a loss, what ends the history.
_LOSS_CALLEE = re.compile(r"(loss|criterion|criteria)(_?(fn|func|function|module))?\d*$", re.I)
_FUNCTIONAL_LOSSES = frozenset(
    {"cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"}
)
_GRAD_ENDING_METHODS = frozenset(
    {
        *("detach", "detach_", "item", "tolist", "numpy", "argmax", "argmin", "argsort"),
        *("size", "dim", "numel", "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf"),
        *("isfinite", "long", "int", "bool", "nonzero", "any", "all", "backward"),
        "requires_grad_",
    }
)
_GRAD_ENDING_ATTRS = frozenset({"data", "grad", "shape", "dtype", "device", "requires_grad"})
# Branch conditions and def names that mark debugging/profiling code (Context.in_debug_branch).
_DEBUG_WORDS = re.compile(r"debug|profil|anomal|nvtx|trace|verbose", re.I)


def dotted_name(expr: cst.BaseExpression) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if isinstance(expr, cst.Name):
        parts.append(expr.value)
        return ".".join(reversed(parts))
    return None


def call_name(call: cst.Call) -> str | None:
    """The method or function name a call invokes: `x.to(...)` -> "to"."""
    if isinstance(call.func, cst.Attribute):
        return call.func.attr.value
    if isinstance(call.func, cst.Name):
        return call.func.value
    return None


def keyword_arg(call: cst.Call, name: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


def has_star_kwargs(call: cst.Call) -> bool:
    return any(arg.star == "**" for arg in call.args)


def positional_args(call: cst.Call) -> list[cst.Arg]:
    return [a for a in call.args if a.keyword is None and not a.star]


def names_in(node: cst.CSTNode) -> set[str]:
    """Every bare Name read or written anywhere inside node."""
    collector = _NameCollector()
    walk.visit(node, collector)
    return collector.names


def target_names(target: cst.BaseExpression) -> set[str]:
    """Names bound by an assignment / for target (tuples unpacked; `a.b` -> "a.b")."""
    out: set[str] = set()
    if isinstance(target, cst.Name):
        out.add(target.value)
    elif isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            out |= target_names(el.value)
    elif isinstance(target, cst.StarredElement):
        out |= target_names(target.value)
    elif isinstance(target, cst.Attribute):
        dotted = dotted_name(target)
        if dotted:
            out.add(dotted)
    return out


class _NameCollector(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


class _BodyFacts(cst.CSTVisitor):
    """One walk over a loop to learn what it binds and whether it trains."""

    def __init__(self) -> None:
        self.assigned: set[str] = set()
        self.calls_backward = False
        self.calls_optimizer_step = False
        self.has_inner_loop = False
        self.inner_training_loop = False
        self._depth = 0

    def visit_Assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            self.assigned |= target_names(t.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.assigned |= target_names(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.assigned |= target_names(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self.assigned |= target_names(node.target)

    def visit_For(self, node: cst.For) -> None:
        self.assigned |= target_names(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self.assigned |= target_names(node.target)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self.assigned |= target_names(node.asname.name)

    def visit_Call(self, node: cst.Call) -> None:
        name = call_name(node)
        if name == "backward":
            self.calls_backward = True
        elif name == "step" and isinstance(node.func, cst.Attribute):
            receiver = dotted_name(node.func.value) or ""
            if _OPTIMIZER_NAME.search(receiver.split(".")[-1]) or receiver.endswith("scaler"):
                self.calls_optimizer_step = True
        # Mutating methods rebind the receiver's contents: treat as assigned.
        if name in {"append", "extend", "insert", "pop", "update", "add", "clear"}:
            if isinstance(node.func, cst.Attribute):
                dotted = dotted_name(node.func.value)
                if dotted:
                    self.assigned.add(dotted)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # a nested def's body does not run per iteration

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False


# ---------------------------------------------------------------- frames


@dataclass
class Binding:
    kind: str | None
    value: cst.BaseExpression | None = None
    grad: bool = False  # a tensor with autograd history (see Context.carries_grad)


@dataclass
class Scope:
    node: cst.CSTNode
    names: dict[str, Binding] = field(default_factory=dict)
    is_class: bool = False


@dataclass
class ClassInfo:
    name: str
    bases: list[str]  # qualified names where resolvable, else dotted text
    kind: str | None  # MODULE, DATASET, ITERABLE_DATASET or OTHER
    attributes: dict[str, str | None] = field(default_factory=dict)
    methods: dict[str, cst.FunctionDef] = field(default_factory=dict)


@dataclass
class LoopFrame:
    node: cst.CSTNode  # For, While, or a comprehension (ListComp, ...)
    targets: set[str]
    iter_expr: cst.BaseExpression | None
    iter_kind: str | None
    ctx: Context
    _facts: _BodyFacts | None = None

    @property
    def is_comprehension(self) -> bool:
        return not isinstance(self.node, (cst.For, cst.While))

    def facts(self) -> _BodyFacts:
        if self._facts is None:
            facts = _BodyFacts()
            if isinstance(self.node, (cst.For, cst.While)):
                walk.visit(self.node.body, facts)
                if isinstance(self.node, cst.While):
                    walk.visit(self.node.test, facts)
                for inner in _inner_loops(self.node.body):
                    facts.has_inner_loop = True
                    frame = self.ctx.frame_for(inner)
                    if frame.is_training_loop(shallow=True):
                        facts.inner_training_loop = True
            else:
                walk.visit(self.node, facts)
            self._facts = facts
        return self._facts

    def variant_names(self) -> set[str]:
        """Names (and dotted `self.x` names) that may change between iterations."""
        return self.targets | self.facts().assigned

    def is_invariant(self, expr: cst.BaseExpression) -> bool:
        """True when expr reads only names this loop does not rebind."""
        variant = self.variant_names()
        dotted = dotted_name(expr)
        if dotted is not None:
            parts = dotted.split(".")
            return not any(".".join(parts[: i + 1]) in variant for i in range(len(parts)))
        return not (names_in(expr) & variant)

    def iterates_loader(self) -> bool:
        if self.iter_kind == DATALOADER:
            return True
        if self.iter_expr is None:
            return False
        inner = _unwrap_iterable(self.iter_expr)
        if self.ctx.kind_of(inner) == DATALOADER:
            return True
        dotted = dotted_name(inner)
        return bool(dotted and _LOADER_NAME.search(dotted.split(".")[-1]))

    def is_training_loop(self, shallow: bool = False) -> bool:
        """A hot loop: iterates a DataLoader, or calls backward()/optimizer.step()."""
        if self.is_comprehension:
            return False
        if self.iterates_loader():
            return True
        facts = self.facts() if not shallow else _shallow_facts(self.node)
        return facts.calls_backward or facts.calls_optimizer_step

    def is_epoch_loop(self) -> bool:
        """A loop whose body contains a training/batch loop (runs once per epoch)."""
        return (not self.is_comprehension) and self.facts().inner_training_loop


def _shallow_facts(node: cst.CSTNode) -> _BodyFacts:
    facts = _BodyFacts()
    walk.visit(node, facts)
    return facts


def _inner_loops(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    finder = _LoopFinder()
    walk.visit(node, finder)
    return iter(finder.loops)


class _LoopFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.loops: list[cst.CSTNode] = []

    def visit_For(self, node: cst.For) -> None:
        self.loops.append(node)

    def visit_While(self, node: cst.While) -> None:
        self.loops.append(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False


def _unwrap_iterable(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`enumerate(x)`, `tqdm(x)`, `zip(x, y)` -> x (the thing really iterated)."""
    while isinstance(expr, cst.Call):
        name = call_name(expr)
        args = positional_args(expr)
        if name in {"enumerate", "tqdm", "zip", "iter", "track", "progress_bar"} and args:
            expr = args[0].value
        else:
            break
    return expr


@dataclass
class FunctionFrame:
    node: cst.FunctionDef | cst.Lambda
    name: str
    is_async: bool
    decorators: list[str]  # qualified (or dotted) names of decorator callables
    class_info: ClassInfo | None
    grad_off: bool = False

    @property
    def is_method(self) -> bool:
        return self.class_info is not None

    def has_decorator(self, qualified: Iterable[str]) -> bool:
        wanted = set(qualified)
        return any(d in wanted for d in self.decorators)

    def is_request_handler(self) -> bool:
        """A web/gRPC request handler: runs once per request."""
        for dec in self.decorators:
            last = dec.rsplit(".", 1)[-1]
            if "." in dec and last in _HANDLER_DECORATOR_ATTRS:
                return True
            if dec in _VIEW_DECORATORS:
                return True
        if self.class_info is not None and any(
            b.endswith("Servicer") for b in self.class_info.bases
        ):
            return not self.name.startswith("_")
        if self.class_info is not None and any(
            b.rsplit(".", 1)[-1] in _VIEW_BASES for b in self.class_info.bases
        ):
            # Django/DRF/Starlette class-based views: one method per HTTP verb
            return self.name in _HTTP_VERB_METHODS
        return False

    def is_inference_role(self) -> bool:
        return bool(_INFERENCE_NAME.search(self.name)) or self.is_request_handler()


@dataclass
class _GuardFrame:
    node: cst.If
    periodic: bool
    in_body: bool = True


# ---------------------------------------------------------------- context


class Context:
    """Per-file analysis state, shared by all rules of one traversal."""

    def __init__(
        self, module: cst.Module, path: str = "<string>", prelude: cst.Module | None = None
    ) -> None:
        self.module = module
        self.path = path
        self.imports: dict[str, str] = {}
        self.star_imports: list[str] = []
        self.imported_roots: set[str] = set()
        self.local_defs: set[str] = set()
        self.classes: dict[str, ClassInfo] = {}
        self.functions: dict[str, cst.FunctionDef] = {}
        self.scopes: list[Scope] = [Scope(module)]
        self.loops: list[LoopFrame] = []
        self.function_stack: list[FunctionFrame] = []
        self.class_stack: list[ClassInfo] = []
        self.guards: list[_GuardFrame] = []
        self.statements: list[cst.CSTNode] = []
        self.ancestors: list[cst.CSTNode] = []
        self.top_statement: cst.CSTNode | None = None  # the module-level statement being walked
        self.grad_off_depth = 0
        self.except_depth = 0
        self._loop_frames: dict[int, LoopFrame] = {}
        self._saved_loops: list[tuple[list[LoopFrame], list[_GuardFrame]]] = []
        self._with_flags: list[bool] = []
        self._module_facts: _ModuleFacts | None = None
        self._autograd_use: dict[int, bool] = {}
        if prelude is not None:  # a piece of a big file: the file's imports (see pieces.py)
            self._prescan(prelude)
        self._prescan(module)

    # ------------------------------------------------------------ prescan

    def _prescan(self, module: cst.Module) -> None:
        """Top-level imports, defs and classes, before any rule runs.

        Only module-level statements (and those nested in if/try blocks) are
        looked at: cheap, and it lets a rule resolve names used above the
        import or the def that binds them.
        """
        for stmt in _flatten_top_level(module.body):
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, (cst.Import, cst.ImportFrom)):
                        self._record_import(small)
            elif isinstance(stmt, cst.FunctionDef):
                self.local_defs.add(stmt.name.value)
                self.functions[stmt.name.value] = stmt
            elif isinstance(stmt, cst.ClassDef):
                self.local_defs.add(stmt.name.value)
        for stmt in _flatten_top_level(module.body):
            if isinstance(stmt, cst.ClassDef):
                self._record_class(stmt)

    def _record_import(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = dotted_name(alias.name) or ""
                self.imported_roots.add(full.split(".")[0])
                if alias.asname is not None:
                    local = dotted_name(alias.asname.name) or full
                    self.imports[local] = full
                else:
                    root = full.split(".")[0]
                    self.imports[root] = root
            return
        if node.relative:
            base = "." * len(node.relative) + (dotted_name(node.module) if node.module else "")
        else:
            base = dotted_name(node.module) if node.module else ""
        if not base:
            return
        self.imported_roots.add(base.split(".")[0])
        if isinstance(node.names, cst.ImportStar):
            self.star_imports.append(base)
            return
        for alias in node.names:
            name = dotted_name(alias.name) or ""
            local = dotted_name(alias.asname.name) if alias.asname else name
            self.imports[local or name] = f"{base}.{name}"

    def _record_class(self, node: cst.ClassDef) -> ClassInfo:
        name = node.name.value
        if name in self.classes:
            return self.classes[name]
        bases = [self.qualified_name(b.value) or dotted_name(b.value) or "" for b in node.bases]
        info = ClassInfo(name, bases, self._class_kind(bases))
        self.classes[name] = info
        for stmt in node.body.body:
            if isinstance(stmt, cst.FunctionDef):
                info.methods[stmt.name.value] = stmt
        return info

    def _class_kind(self, bases: list[str]) -> str:
        for base in bases:
            local = self.classes.get(base)
            if local is not None and local.kind != OTHER:
                return local.kind
            if base in {"torch.utils.data.IterableDataset"}:
                return ITERABLE_DATASET
            if base in {"torch.utils.data.Dataset"}:
                return DATASET
            if base == "torch.nn.Module" or (
                base.startswith("torch.nn.") and base[len("torch.nn.") :][:1].isupper()
            ):
                return MODULE
            if base.startswith(("pytorch_lightning.", "lightning.")) and base.endswith(
                "LightningModule"
            ):
                return MODULE
            if base.startswith("transformers.") and "Model" in base:
                return MODULE
        return OTHER

    # ------------------------------------------------------------ names

    def uses(self, root: str) -> bool:
        """Does the module import `root` (e.g. "pandas", "torch") anywhere at top level?"""
        return root in self.imported_roots

    def qualified_name(self, expr: cst.BaseExpression) -> str | None:
        dotted = dotted_name(expr)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        # Longest imported prefix wins: `import torch.nn as nn` binds "nn".
        if head in self.imports and not self._shadowed(head):
            full = self.imports[head] + ("." + rest if rest else "")
            return _CANONICAL.get(full, full)
        if self._shadowed(head) or head in self.local_defs:
            return None
        if head in _BUILTINS and not rest:
            return "builtins." + head
        return None

    def _shadowed(self, name: str) -> bool:
        """Is name bound by an enclosing function scope (not the module)?"""
        return any(name in scope.names for scope in self.scopes[1:])

    def binding(self, name: str) -> Binding | None:
        for scope in reversed(self.scopes):
            if scope.is_class and scope is not self.scopes[-1]:
                continue
            if name in scope.names:
                return scope.names[name]
        return None

    def bind(self, name: str, kind: str | None, value=None, grad: bool = False) -> None:
        self.scopes[-1].names[name] = Binding(kind, value, grad)

    # ------------------------------------------------------------ kinds

    def kind_of(self, expr: cst.BaseExpression | None) -> str | None:
        if expr is None:
            return None
        if isinstance(expr, cst.Name):
            return self._kind_of_name(expr.value)
        if isinstance(expr, cst.Attribute):
            return self._kind_of_attribute(expr)
        if isinstance(expr, cst.Call):
            return self._kind_of_call(expr)
        if isinstance(expr, cst.Subscript):
            return self._kind_of_subscript(expr)
        if isinstance(expr, cst.BinaryOperation):
            left, right = self.kind_of(expr.left), self.kind_of(expr.right)
            for k in (TENSOR, DATAFRAME, SERIES, NDARRAY):
                if k in (left, right):
                    return k
            if left == right == NUMBER:
                return NUMBER
            if left == LIST and right == LIST and isinstance(expr.operator, cst.Add):
                return LIST
            return None
        if isinstance(expr, cst.UnaryOperation):
            return self.kind_of(expr.expression)
        if isinstance(expr, (cst.List, cst.ListComp)):
            return LIST
        if isinstance(expr, (cst.Set, cst.SetComp)):
            return SET
        if isinstance(expr, (cst.Dict, cst.DictComp)):
            return DICT
        if isinstance(expr, cst.Tuple):
            return TUPLE
        if isinstance(expr, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
            return STR
        if isinstance(expr, (cst.Integer, cst.Float)):
            return NUMBER
        if isinstance(expr, (cst.Comparison,)):
            inner = self.kind_of(expr.left)
            return inner if inner in {TENSOR, NDARRAY, SERIES, DATAFRAME} else BOOL
        return None

    def _kind_of_name(self, name: str) -> str | None:
        binding = self.binding(name)
        if binding is not None:
            return binding.kind
        if name in self.classes:
            return "class"
        return None

    def _kind_of_attribute(self, expr: cst.Attribute) -> str | None:
        dotted = dotted_name(expr)
        if dotted and dotted.startswith("self.") and dotted.count(".") == 1:
            cls = self.current_class()
            if cls is not None:
                return cls.attributes.get(expr.attr.value)
        owner = self.kind_of(expr.value)
        attr = expr.attr.value
        if owner == DATAFRAME:
            if attr in {"values"}:
                return NDARRAY
            if attr in {"T"}:
                return DATAFRAME
            if attr in {"columns", "index", "shape", "dtypes", "loc", "iloc", "at", "iat"}:
                return None
            return SERIES  # df.colname
        if owner == TENSOR and attr in {"T", "data", "grad", "real", "imag", "mT"}:
            return TENSOR
        if owner == NDARRAY and attr in {"T", "real", "imag", "flat"}:
            return NDARRAY
        return None

    def _kind_of_call(self, call: cst.Call) -> str | None:
        qname = self.qualified_name(call.func)
        if qname is not None:
            kind = _kind_of_qualified_call(qname)
            if kind is not None:
                return kind
        if isinstance(call.func, cst.Name) and call.func.value in self.classes:
            return self.classes[call.func.value].kind
        if isinstance(call.func, cst.Attribute):
            method = call.func.attr.value
            if method == "from_pretrained" and qname and "Model" in qname:
                return MODULE
            owner = self.kind_of(call.func.value)
            return _kind_of_method(owner, method)
        return None

    def _kind_of_subscript(self, expr: cst.Subscript) -> str | None:
        owner_expr = expr.value
        if isinstance(owner_expr, cst.Attribute) and owner_expr.attr.value in {
            "loc",
            "iloc",
        }:
            return None  # row, cell or frame: depends on the indexer
        owner = self.kind_of(owner_expr)
        if owner == DATAFRAME:
            if len(expr.slice) == 1:
                index = expr.slice[0].slice
                if isinstance(index, cst.Index):
                    if isinstance(index.value, (cst.SimpleString, cst.FormattedString)):
                        return SERIES
                    if isinstance(index.value, cst.List):
                        return DATAFRAME
                    inner = self.kind_of(index.value)
                    if inner in {SERIES, NDARRAY}:  # boolean mask
                        return DATAFRAME
            return None
        if owner in {TENSOR, NDARRAY}:
            return owner
        return None

    def is_dataframe(self, expr: cst.BaseExpression) -> bool:
        return self.kind_of(expr) == DATAFRAME

    def is_maybe_dataframe(self, expr: cst.BaseExpression) -> bool:
        """Known DataFrame, or unknown in a module that imports pandas.

        Used for pandas-only method names (`iterrows`, `itertuples`): an
        unknown receiver in a pandas module is almost always a frame, while an
        object known to be something else (a local class, a list) never is.
        """
        kind = self.kind_of(expr)
        if kind == DATAFRAME:
            return True
        return kind is None and self.uses("pandas")

    def is_maybe_loader(self, expr: cst.BaseExpression) -> bool:
        """Known DataLoader, or of unknown kind and named like one (`loader`, `self.val_dl`)
        in a module that imports torch."""
        kind = self.kind_of(expr)
        if kind is not None:
            return kind == DATALOADER
        dotted = dotted_name(expr)
        return bool(dotted and self.uses("torch") and _LOADER_NAME.search(dotted.split(".")[-1]))

    def is_tensor(self, expr: cst.BaseExpression) -> bool:
        return self.kind_of(expr) == TENSOR

    def is_module(self, expr: cst.BaseExpression) -> bool:
        return self.kind_of(expr) == MODULE

    def is_model_call(self, call: cst.Call) -> bool:
        """A model forward/inference call.

        `model(x)` / `self.net(x)` on a Module, `model.generate(...)`, a called
        transformers `pipeline(...)` object, an onnxruntime session's `.run(...)`.
        A receiver of unknown kind counts when its name says model
        (`model`, `self.net`, `text_model`) in a module importing an ML library.
        """
        func = call.func
        kind = self.kind_of(func)
        if kind in {MODULE, PIPELINE}:
            return True
        if kind is None and self._model_named(func):
            return True
        if not isinstance(func, cst.Attribute):
            return False
        owner = self.kind_of(func.value)
        method = func.attr.value
        if owner == INFERENCE_SESSION:
            return method == "run"
        if method not in _MODEL_INFERENCE_METHODS:
            return False
        return owner == MODULE or (owner is None and self._model_named(func.value))

    def _model_named(self, expr: cst.BaseExpression) -> bool:
        dotted = dotted_name(expr)
        if dotted is None or self.qualified_name(expr) is not None:
            return False
        owner, _, last = dotted.rpartition(".")
        if owner and owner != "self":
            # `writer.generator(...)` is a method; `app.state.model(x)` is a model
            named = bool(_MODEL_ATTRIBUTE.search(last))
        else:
            cls = self.current_class()
            is_method = bool(owner) and cls is not None and last in cls.methods
            named = bool(_MODEL_NAME.search(last)) and not is_method
        return named and any(self.uses(root) for root in _ML_ROOTS)

    # ------------------------------------------------------------ traversal hooks

    def enter(self, node: cst.CSTNode) -> None:
        if len(self.ancestors) == 1:
            self.top_statement = node
        self.ancestors.append(node)
        handler = _ENTER.get(type(node))
        if handler is not None:
            handler(self, node)

    def leave(self, node: cst.CSTNode) -> None:
        handler = _LEAVE.get(type(node))
        if handler is not None:
            handler(self, node)
        self.ancestors.pop()

    def enter_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if attribute == "orelse" and isinstance(node, cst.If):
            if self.guards and self.guards[-1].node is node:
                self.guards[-1].in_body = False

    # ------------------------------------------------------------ queries

    def parent(self, levels: int = 1) -> cst.CSTNode | None:
        """The node `levels` above the one being visited."""
        index = -1 - levels
        return self.ancestors[index] if len(self.ancestors) >= -index else None

    def current_statement(self) -> cst.CSTNode | None:
        return self.statements[-1] if self.statements else None

    def current_loop(self) -> LoopFrame | None:
        return self.loops[-1] if self.loops else None

    def statement_loops(self) -> list[LoopFrame]:
        """Enclosing for/while loops of the current function (no comprehensions)."""
        return [f for f in self.loops if not f.is_comprehension]

    def in_loop(self) -> bool:
        return bool(self.loops)

    def in_hot_loop(self) -> bool:
        """Inside a training/inference loop body (iterates a loader or trains)."""
        return any(frame.is_training_loop() for frame in self.statement_loops())

    def hot_loop(self) -> LoopFrame | None:
        for frame in reversed(self.statement_loops()):
            if frame.is_training_loop():
                return frame
        return None

    def current_function(self) -> FunctionFrame | None:
        return self.function_stack[-1] if self.function_stack else None

    def current_class(self) -> ClassInfo | None:
        frame = self.current_function()
        if frame is not None:
            return frame.class_info
        return self.class_stack[-1] if self.class_stack else None

    def grad_disabled(self) -> bool:
        return self.grad_off_depth > 0

    def in_periodic_guard(self) -> bool:
        """Under `if step % N == 0:` (or similar) inside the innermost loop."""
        return any(g.periodic and g.in_body for g in self.guards)

    def in_except_handler(self) -> bool:
        return self.except_depth > 0

    def in_debug_branch(self) -> bool:
        """In the taken branch of `if args.debug:` / `if cfg.profile:` / `if not fast:`'s else,
        or in a def named for debugging or profiling (`debug_step`, `profile_epoch`)."""
        for index, node in enumerate(self.ancestors[:-1]):
            if isinstance(node, cst.If) and _mentions_debugging(node.test):
                negated = isinstance(node.test, cst.UnaryOperation) and isinstance(
                    node.test.operator, cst.Not
                )
                if (self.ancestors[index + 1] is node.body) != negated:
                    return True
        return any(_DEBUG_WORDS.search(frame.name) for frame in self.function_stack)

    def carries_grad(self, expr: cst.BaseExpression) -> bool:
        """Does expr evaluate to a tensor with autograd history, computed here with grad on?

        Sources: a loss (a call of `criterion`/`loss_fn`/`compute_loss`/a Module such as
        `nn.CrossEntropyLoss()`, or `F.*_loss`/`F.cross_entropy`) and a model forward
        (a Module, or a name like `model`/`self.net` in an ML file). Arithmetic,
        indexing, attributes (`out.loss`, `out.logits`) and tensor methods keep the
        history; `.detach()`, `.item()`, `.tolist()`, `.data`, comparisons and integer
        results end it. Names carry the fact from their assignment (`Binding.grad`).
        """
        if self.grad_disabled() or not self.uses("torch"):
            return False
        return self._grad_expr(expr)

    def _grad_expr(self, expr: cst.BaseExpression) -> bool:
        if isinstance(expr, cst.Name):
            binding = self.binding(expr.value)
            return binding is not None and binding.grad
        if isinstance(expr, cst.Attribute):
            return expr.attr.value not in _GRAD_ENDING_ATTRS and self._grad_expr(expr.value)
        if isinstance(expr, cst.Subscript):
            return self._grad_expr(expr.value)
        if isinstance(expr, cst.BinaryOperation):
            return self._grad_expr(expr.left) or self._grad_expr(expr.right)
        if isinstance(expr, cst.UnaryOperation):
            return not isinstance(expr.operator, cst.Not) and self._grad_expr(expr.expression)
        if isinstance(expr, cst.Call):
            return self._grad_call(expr)
        return False

    def _grad_call(self, call: cst.Call) -> bool:
        func = call.func
        if isinstance(func, cst.Attribute) and self._grad_expr(func.value):
            return func.attr.value not in _GRAD_ENDING_METHODS
        qname = self.qualified_name(func)
        if qname is not None:
            module, _, last = qname.rpartition(".")
            if module == "torch.nn.functional":
                return last.endswith("_loss") or last in _FUNCTIONAL_LOSSES
            return qname.startswith("torch.") and any(
                self._grad_expr(arg.value) for arg in call.args
            )
        if self.kind_of(call) not in {None, TENSOR}:
            return False  # `nn.CrossEntropyLoss()` builds a Module, not a loss value
        dotted = dotted_name(func)
        if dotted is not None and _LOSS_CALLEE.search(dotted.rsplit(".", 1)[-1]):
            return True
        # A forward: `model(x)`, `self.net(x)`, `model.forward(x)` (not `generate`: no_grad inside).
        if isinstance(func, cst.Attribute) and func.attr.value == "forward":
            func = func.value
        kind = self.kind_of(func)
        return kind == MODULE or (kind is None and self._model_named(func))

    def frame_for(self, loop: cst.CSTNode) -> LoopFrame:
        """A LoopFrame for any For/While node (used to inspect nested loops)."""
        frame = self._loop_frames.get(id(loop))
        if frame is None:
            if isinstance(loop, cst.For):
                frame = LoopFrame(
                    loop,
                    target_names(loop.target),
                    loop.iter,
                    self.kind_of(_unwrap_iterable(loop.iter)),
                    self,
                )
            else:
                frame = LoopFrame(loop, set(), None, None, self)
            self._loop_frames[id(loop)] = frame
        return frame

    def resolve_function(self, expr: cst.BaseExpression) -> cst.FunctionDef | None:
        """The same-module def a callee expression refers to (`f`, `self.m`)."""
        if isinstance(expr, cst.Name):
            # a parameter or local of the same name hides the module-level def
            return None if self._shadowed(expr.value) else self.functions.get(expr.value)
        dotted = dotted_name(expr)
        if dotted and dotted.startswith("self.") and dotted.count(".") == 1:
            cls = self.current_class()
            if cls is not None:
                return cls.methods.get(dotted.split(".")[1])
        return None

    def decorator_names(self, node: cst.FunctionDef) -> list[str]:
        out = []
        for dec in node.decorators:
            expr = dec.decorator
            if isinstance(expr, cst.Call):
                expr = expr.func
            out.append(self.qualified_name(expr) or dotted_name(expr) or "")
        return out

    # ------------------------------------------------------------ data pipeline

    def loader_call(self, call: cst.Call):
        """`dataloaders.LoaderCall` facts for a `torch.utils.data.DataLoader(...)` call, else None."""
        if self.qualified_name(call.func) != "torch.utils.data.DataLoader":
            return None
        from aiperf_lint.dataloaders import describe_call

        return describe_call(self, call)

    def pipeline(self):
        """Module-level loader facts (`dataloaders.PipelineFacts`): one lazy walk per file."""
        facts = self.__dict__.get("_pipeline")
        if facts is None:
            from aiperf_lint.dataloaders import scan_pipeline

            facts = self._pipeline = scan_pipeline(self, self.module)
        return facts

    # ------------------------------------------------------------ module-wide facts (lazy)

    def module_facts(self) -> _ModuleFacts:
        """One extra walk of the module, only when a rule asks (call sites, grad state)."""
        if self._module_facts is None:
            self._module_facts = _ModuleFacts(self)
            walk.visit(self.module, self._module_facts)
        return self._module_facts

    def call_sites(self, name: str) -> list[CallSite]:
        """Same-module calls of the function or method `name` (`name(...)`, `self.name(...)`)."""
        return self.module_facts().call_sites.get(name, [])

    def called_with_grad_disabled(self, name: str) -> bool:
        """Is `name` called somewhere in this module under no_grad/inference_mode?

        Followed through callers: `predict` called from `evaluate`, itself called
        inside `with torch.no_grad():`, counts.
        """
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            seen.add(current)
            for site in self.call_sites(current):
                if site.grad_off:
                    return True
                caller = site.function.name.value if site.function is not None else None
                if caller is not None and caller not in seen:
                    pending.append(caller)
        return False

    def disables_grad_globally(self) -> bool:
        """A statement `torch.set_grad_enabled(False)` somewhere in the module."""
        return self.module_facts().global_grad_off

    def mentions_accelerator(self) -> bool:
        """Does the module refer to a GPU at all (`.cuda`, `device`, "cuda"/"mps" strings)?"""
        return self.module_facts().accelerator

    def uses_autograd(self, node: cst.CSTNode) -> bool:
        """Does node (a def or the module) work with gradients?

        `backward()`, `torch.autograd.grad`, `requires_grad`/`requires_grad_()`,
        reading `.grad`, gradient hooks, `torch.enable_grad()`: Grad-CAM,
        adversarial examples, gradient penalties and frozen-parameter set-ups.
        """
        cached = self._autograd_use.get(id(node))
        if cached is None:
            finder = _AutogradUse()
            walk.visit(node, finder)
            cached = self._autograd_use[id(node)] = finder.found
        return cached


@dataclass(frozen=True)
class CallSite:
    function: cst.FunctionDef | None  # the def containing the call; None at module level
    grad_off: bool  # under no_grad / inference_mode / set_grad_enabled(False)


_ACCELERATOR_WORDS = ("cuda", "mps")


class _ModuleFacts(cst.CSTVisitor):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.call_sites: dict[str, list[CallSite]] = {}
        self.global_grad_off = False
        self.accelerator = False
        self._functions: list[cst.FunctionDef] = []
        self._grad_off: list[bool] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.append(node)
        self._grad_off.append(any(_grad_off_call(self.ctx, d.decorator) for d in node.decorators))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.pop()
        self._grad_off.pop()

    def visit_With(self, node: cst.With) -> None:
        self._grad_off.append(any(_grad_off_call(self.ctx, item.item) for item in node.items))

    def leave_With(self, node: cst.With) -> None:
        self._grad_off.pop()

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        name = None
        if isinstance(func, cst.Name):
            name = func.value
        elif isinstance(func, cst.Attribute) and dotted_name(func.value) in {"self", "cls"}:
            name = func.attr.value
        if name is not None:
            function = self._functions[-1] if self._functions else None
            site = CallSite(function, any(self._grad_off))
            self.call_sites.setdefault(name, []).append(site)

    def visit_Expr(self, node: cst.Expr) -> None:
        value = node.value
        if isinstance(value, cst.Call) and self.ctx.qualified_name(value.func) in {
            "torch.set_grad_enabled",
            "torch.autograd.set_grad_enabled",
        }:
            args = positional_args(value)
            if args and _is_false(args[0].value):
                self.global_grad_off = True

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value == "cuda" or node.attr.value == "device":
            self.accelerator = True

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == "device" or node.value.endswith("_device"):
            self.accelerator = True

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if any(word in node.value for word in _ACCELERATOR_WORDS):
            self.accelerator = True


_GRAD_METHODS = frozenset(
    {
        "backward",
        "requires_grad_",
        "retain_grad",
        "register_hook",
        "register_full_backward_hook",
        "register_backward_hook",
        "enable_grad",
    }
)


class _AutogradUse(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False

    def visit_Call(self, node: cst.Call) -> None:
        name = call_name(node)
        autograd_grad = name == "grad" and (dotted_name(node.func) or "").endswith("autograd.grad")
        if name in _GRAD_METHODS or autograd_grad or keyword_arg(node, "requires_grad") is not None:
            self.found = True

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value in {"grad", "requires_grad"}:
            self.found = True


def _kind_of_qualified_call(qname: str) -> str | None:
    if qname in _CALL_KINDS:
        return _CALL_KINDS[qname]
    module, _, last = qname.rpartition(".")
    if module == "pandas" and last.startswith("read_"):
        return DATAFRAME
    if module == "torch" and (last in TORCH_FACTORIES or last.endswith("Tensor")):
        return TENSOR
    if module in {"numpy", "numpy.random"} and (
        last in _NUMPY_ARRAY_FUNCS or module == "numpy.random"
    ):
        return NDARRAY
    if module.startswith("torch.nn") and last[:1].isupper() and "functional" not in module:
        return MODULE
    if module.startswith("torch.nn.functional"):
        return TENSOR
    if module.startswith("torch.optim") and last[:1].isupper() and "lr_scheduler" not in module:
        return OPTIMIZER
    if module.startswith("torchvision.models") and last[:1].islower():
        return MODULE
    if module == "torch.utils.data" and last.endswith("Dataset"):
        return DATASET
    return None


def _kind_of_method(owner: str | None, method: str) -> str | None:
    if owner == DATAFRAME:
        if method in _DATAFRAME_METHODS:
            return DATAFRAME
        if method in {"to_numpy"}:
            return NDARRAY
        return None
    if owner == SERIES:
        if method in _SERIES_METHODS:
            return SERIES
        if method in {"to_numpy"}:
            return NDARRAY
        if method == "tolist":
            return LIST
        return None
    if owner == TENSOR:
        if method in _TENSOR_TO_OTHER:
            return _TENSOR_TO_OTHER[method]
        if method in _TENSOR_NON_TENSOR:
            return NUMBER
        return TENSOR
    if owner == MODULE:
        if method in _MODULE_SELF_METHODS:
            return MODULE
        if method in {"parameters", "named_parameters", "state_dict", "modules", "children"}:
            return None
        return None
    if owner == NDARRAY:
        if method == "tolist":
            return LIST
        if method == "item":
            return NUMBER
        return NDARRAY
    if owner == FILE and method in {"readlines"}:
        return LIST
    if owner == FILE and method == "read":
        return STR
    if owner == STR and method in {"split", "splitlines"}:
        return LIST
    return None


def _flatten_top_level(body: Iterable[cst.CSTNode]) -> Iterator[cst.CSTNode]:
    """Module statements, descending into if/try blocks (guarded imports)."""
    for stmt in body:
        if isinstance(stmt, (cst.If, cst.Try)):
            yield from _flatten_top_level(stmt.body.body)
            if isinstance(stmt, cst.Try):
                for handler in stmt.handlers:
                    yield from _flatten_top_level(handler.body.body)
            orelse = getattr(stmt, "orelse", None)
            while orelse is not None:
                if isinstance(orelse, cst.If):
                    yield from _flatten_top_level(orelse.body.body)
                    orelse = orelse.orelse
                else:
                    yield from _flatten_top_level(orelse.body.body)
                    orelse = None
        else:
            yield stmt


# ---------------------------------------------------------------- handlers


def _mentions_debugging(test: cst.BaseExpression) -> bool:
    strings = walk.find_all(test, cst.SimpleString)
    words = list(names_in(test)) + [s.value for s in strings if isinstance(s, cst.SimpleString)]
    return any(_DEBUG_WORDS.search(word) for word in words)


def _is_false(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"


def _is_periodic_test(test: cst.BaseExpression) -> bool:
    """`step % 100 == 0`, `i % log_every == 0`, `not step % 10`, `(i + 1) % n == 0`."""
    return any(
        isinstance(node.operator, cst.Modulo) for node in walk.find_all(test, cst.BinaryOperation)
    )


def _grad_off_call(ctx: Context, expr: cst.BaseExpression) -> bool:
    """torch.no_grad(), torch.inference_mode(), torch.set_grad_enabled(False)."""
    if not isinstance(expr, cst.Call):
        qname = ctx.qualified_name(expr)
        return qname in _GRAD_OFF
    qname = ctx.qualified_name(expr.func)
    if qname in _GRAD_OFF:
        mode = positional_args(expr)
        if qname == "torch.inference_mode" and mode:
            return not _is_false(mode[0].value)
        return True
    if qname == "torch.set_grad_enabled":
        args = positional_args(expr)
        return bool(args) and _is_false(args[0].value)
    return False


def _enter_import(ctx: Context, node) -> None:
    ctx._record_import(node)


def _enter_statement(ctx: Context, node) -> None:
    ctx.statements.append(node)


def _leave_statement(ctx: Context, node) -> None:
    ctx.statements.pop()


def _enter_assign(ctx: Context, node: cst.Assign) -> None:
    kind = ctx.kind_of(node.value)
    grad = ctx.carries_grad(node.value)  # before rebinding: `loss = loss / n`
    for t in node.targets:
        _bind_target(ctx, t.target, kind, node.value, grad)


def _bind_target(ctx: Context, target, kind, value, grad: bool = False) -> None:
    if isinstance(target, cst.Name):
        ctx.bind(target.value, kind, value, grad)
    elif isinstance(target, cst.Attribute):
        dotted = dotted_name(target)
        cls = ctx.current_class()
        if dotted and dotted.startswith("self.") and dotted.count(".") == 1 and cls:
            # Several assignments of different kinds make the attribute unknown.
            previous = cls.attributes.get(target.attr.value, kind)
            cls.attributes[target.attr.value] = kind if previous == kind else None
    elif isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            _bind_target(ctx, el.value, None, None, grad)


def _enter_annassign(ctx: Context, node: cst.AnnAssign) -> None:
    kind = _annotation_kind(ctx, node.annotation.annotation)
    if kind is None and node.value is not None:
        kind = ctx.kind_of(node.value)
    _bind_target(ctx, node.target, kind, node.value)


def _enter_augassign(ctx: Context, node: cst.AugAssign) -> None:
    if isinstance(node.target, cst.Name):
        binding = ctx.binding(node.target.value)
        kind = binding.kind if binding else None
        grad = (binding is not None and binding.grad) or ctx.carries_grad(node.value)
        ctx.bind(node.target.value, kind, None, grad)


def _annotation_kind(ctx: Context, annotation: cst.BaseExpression) -> str | None:
    qname = ctx.qualified_name(annotation)
    if qname is None:
        return None
    return {
        "pandas.DataFrame": DATAFRAME,
        "pandas.Series": SERIES,
        "torch.Tensor": TENSOR,
        "torch.nn.Module": MODULE,
        "torch.utils.data.DataLoader": DATALOADER,
        "numpy.ndarray": NDARRAY,
        "builtins.list": LIST,
        "builtins.set": SET,
        "builtins.dict": DICT,
        "builtins.str": STR,
        "builtins.int": NUMBER,
        "builtins.float": NUMBER,
    }.get(qname)


def _enter_for(ctx: Context, node: cst.For) -> None:
    frame = ctx.frame_for(node)
    ctx.loops.append(frame)
    _bind_loop_target(ctx, node.target, node.iter)


def _bind_loop_target(ctx: Context, target, iterable) -> None:
    inner = _unwrap_iterable(iterable)
    source_kind = ctx.kind_of(inner)
    element_kind: str | None = None
    if source_kind in (DATALOADER, TENSOR):
        element_kind = TENSOR
    elif source_kind == "range":
        element_kind = NUMBER
    # `for i, row in df.iterrows()` binds row to a Series
    if isinstance(inner, cst.Call) and call_name(inner) == "iterrows":
        if isinstance(target, cst.Tuple) and len(target.elements) == 2:
            _bind_target(ctx, target.elements[0].value, None, None)
            value = target.elements[1].value
            if isinstance(value, cst.Name):
                ctx.bind(value.value, SERIES, None)
            return
    is_enumerate = isinstance(iterable, cst.Call) and call_name(iterable) == "enumerate"
    if is_enumerate and isinstance(target, cst.Tuple) and len(target.elements) == 2:
        _bind_target(ctx, target.elements[0].value, None, None)
        second = target.elements[1].value
        if isinstance(second, cst.Name):
            ctx.bind(second.value, element_kind, None)
        else:
            _bind_target(ctx, second, None, None)
        return
    if isinstance(target, cst.Name):
        ctx.bind(target.value, element_kind, None)
    else:
        _bind_target(ctx, target, None, None)


def _leave_loop(ctx: Context, node) -> None:
    ctx.loops.pop()


def _leave_comp(ctx: Context, node) -> None:
    ctx.loops.pop()
    ctx.scopes.pop()


def _enter_while(ctx: Context, node: cst.While) -> None:
    ctx.loops.append(ctx.frame_for(node))


def _enter_comp(ctx: Context, node) -> None:
    ctx.scopes.append(Scope(node))  # comprehension variables do not leak
    targets: set[str] = set()
    comp = node.for_in
    first_iter = comp.iter
    while comp is not None:
        targets |= target_names(comp.target)
        _bind_loop_target(ctx, comp.target, comp.iter)
        comp = comp.inner_for_in
    frame = LoopFrame(node, targets, first_iter, ctx.kind_of(first_iter), ctx)
    ctx.loops.append(frame)


def _enter_function(ctx: Context, node: cst.FunctionDef) -> None:
    name = node.name.value
    cls = ctx.class_stack[-1] if ctx.class_stack and _directly_in_class(ctx) else None
    decorators = ctx.decorator_names(node)
    frame = FunctionFrame(node, name, node.asynchronous is not None, decorators, cls)
    ctx.function_stack.append(frame)
    scope = Scope(node)
    ctx.scopes.append(scope)
    # Loops of the enclosing function do not run this body per iteration.
    ctx._saved_loops.append((ctx.loops, ctx.guards))
    ctx.loops, ctx.guards = [], []
    for param in _all_params(node.params):
        kind = _annotation_kind(ctx, param.annotation.annotation) if param.annotation else None
        if cls is not None and param is _first_param(node.params):
            kind = OTHER if cls.kind == OTHER else cls.kind
        scope.names[param.name.value] = Binding(kind, None)
    if any(_grad_off_decorator(ctx, d.decorator) for d in node.decorators):
        ctx.grad_off_depth += 1
        frame.grad_off = True


def _grad_off_decorator(ctx: Context, expr: cst.BaseExpression) -> bool:
    return _grad_off_call(ctx, expr)


def _leave_function(ctx: Context, node: cst.FunctionDef) -> None:
    frame = ctx.function_stack.pop()
    if frame.grad_off:
        ctx.grad_off_depth -= 1
    ctx.scopes.pop()
    ctx.loops, ctx.guards = ctx._saved_loops.pop()


def _directly_in_class(ctx: Context) -> bool:
    # ancestors: ..., ClassDef, IndentedBlock, FunctionDef(current)
    return len(ctx.ancestors) >= 3 and isinstance(ctx.ancestors[-3], cst.ClassDef)


def _all_params(params: cst.Parameters) -> list[cst.Param]:
    out = list(params.posonly_params) + list(params.params) + list(params.kwonly_params)
    return out


def _first_param(params: cst.Parameters) -> cst.Param | None:
    ordered = list(params.posonly_params) + list(params.params)
    return ordered[0] if ordered else None


def _enter_lambda(ctx: Context, node: cst.Lambda) -> None:
    scope = Scope(node)
    for param in _all_params(node.params):
        scope.names[param.name.value] = Binding(None, None)
    ctx.scopes.append(scope)


def _leave_lambda(ctx: Context, node) -> None:
    ctx.scopes.pop()


def _enter_class(ctx: Context, node: cst.ClassDef) -> None:
    ctx.class_stack.append(ctx._record_class(node))
    ctx.scopes.append(Scope(node, is_class=True))


def _leave_class(ctx: Context, node) -> None:
    ctx.class_stack.pop()
    ctx.scopes.pop()


def _enter_with(ctx: Context, node: cst.With) -> None:
    off = any(_grad_off_call(ctx, item.item) for item in node.items)
    ctx._with_flags.append(off)
    if off:
        ctx.grad_off_depth += 1
    for item in node.items:
        if item.asname is not None:
            _bind_target(ctx, item.asname.name, ctx.kind_of(item.item), item.item)


def _leave_with(ctx: Context, node) -> None:
    if ctx._with_flags.pop():
        ctx.grad_off_depth -= 1


def _enter_if(ctx: Context, node: cst.If) -> None:
    ctx.guards.append(_GuardFrame(node, _is_periodic_test(node.test)))


def _leave_if(ctx: Context, node) -> None:
    ctx.guards.pop()


def _enter_except(ctx: Context, node) -> None:
    ctx.except_depth += 1
    if getattr(node, "name", None) is not None:
        _bind_target(ctx, node.name.name, OTHER, None)


def _leave_except(ctx: Context, node) -> None:
    ctx.except_depth -= 1


_STATEMENT_TYPES = (
    cst.SimpleStatementLine,
    cst.For,
    cst.While,
    cst.If,
    cst.With,
    cst.Try,
    cst.FunctionDef,
    cst.ClassDef,
)

_ENTER = {
    cst.Import: _enter_import,
    cst.ImportFrom: _enter_import,
    cst.Assign: _enter_assign,
    cst.AnnAssign: _enter_annassign,
    cst.AugAssign: _enter_augassign,
    cst.For: _enter_for,
    cst.While: _enter_while,
    cst.ListComp: _enter_comp,
    cst.SetComp: _enter_comp,
    cst.DictComp: _enter_comp,
    cst.GeneratorExp: _enter_comp,
    cst.FunctionDef: _enter_function,
    cst.Lambda: _enter_lambda,
    cst.ClassDef: _enter_class,
    cst.With: _enter_with,
    cst.If: _enter_if,
    cst.ExceptHandler: _enter_except,
    cst.ExceptStarHandler: _enter_except,
}
_LEAVE = {
    cst.For: _leave_loop,
    cst.While: _leave_loop,
    cst.ListComp: _leave_comp,
    cst.SetComp: _leave_comp,
    cst.DictComp: _leave_comp,
    cst.GeneratorExp: _leave_comp,
    cst.FunctionDef: _leave_function,
    cst.Lambda: _leave_lambda,
    cst.ClassDef: _leave_class,
    cst.With: _leave_with,
    cst.If: _leave_if,
    cst.ExceptHandler: _leave_except,
    cst.ExceptStarHandler: _leave_except,
}


def _chain(first, second):
    def both(ctx, node):
        first(ctx, node)
        second(ctx, node)

    return both


for _stmt_type in _STATEMENT_TYPES:
    _ENTER[_stmt_type] = (
        _chain(_enter_statement, _ENTER[_stmt_type]) if _stmt_type in _ENTER else _enter_statement
    )
    _LEAVE[_stmt_type] = (
        _chain(_LEAVE[_stmt_type], _leave_statement) if _stmt_type in _LEAVE else _leave_statement
    )
