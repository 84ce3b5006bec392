"""AIP501 threads-for-cpu-bound-work."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from aiperf_lint.model import Fix, ImportSpec
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import (
    THREAD_POOL,
    call_name,
    dotted_name,
    keyword_arg,
    positional_args,
    target_names,
)

_MAP_METHODS = frozenset({"map", "imap", "imap_unordered", "starmap", "map_async", "starmap_async"})
_SUBMIT_METHODS = frozenset({"submit", "apply", "apply_async"})

# What "provably pure-Python CPU work" may call: builtins and stdlib modules
# that compute in the interpreter holding the GIL (no I/O, no sleeping, no
# C extension that releases the GIL while it works).
_PURE_BUILTINS = frozenset(
    [
        "abs",
        "all",
        "any",
        "bool",
        "chr",
        "complex",
        "dict",
        "divmod",
        "enumerate",
        "filter",
        "float",
        "frozenset",
        "hash",
        "int",
        "isinstance",
        "iter",
        "len",
        "list",
        "map",
        "max",
        "min",
        "next",
        "ord",
        "pow",
        "range",
        "reversed",
        "round",
        "set",
        "sorted",
        "str",
        "sum",
        "tuple",
        "zip",
    ]
)
_PURE_MODULES = frozenset(
    [
        "math",
        "cmath",
        "operator",
        "itertools",
        "heapq",
        "bisect",
        "statistics",
        "fractions",
        "random",
        "functools",
        "collections",
    ]
)
_PURE_METHODS = frozenset(
    [
        "append",
        "extend",
        "insert",
        "add",
        "discard",
        "remove",
        "pop",
        "popleft",
        "appendleft",
        "count",
        "index",
        "sort",
        "reverse",
        "copy",
        "keys",
        "values",
        "items",
        "update",
        "setdefault",
        "split",
        "strip",
        "lower",
        "upper",
        "replace",
        "startswith",
        "endswith",
        "is_integer",
        "bit_length",
        "conjugate",
    ]
)
_MUTATING_METHODS = frozenset(
    [
        "append",
        "extend",
        "insert",
        "add",
        "discard",
        "remove",
        "pop",
        "popleft",
        "appendleft",
        "sort",
        "reverse",
        "update",
        "setdefault",
        "clear",
    ]
)
_ARITHMETIC = (
    cst.Add,
    cst.Subtract,
    cst.Multiply,
    cst.Divide,
    cst.FloorDivide,
    cst.Modulo,
    cst.Power,
    cst.LeftShift,
    cst.RightShift,
    cst.BitXor,
    cst.BitAnd,
    cst.BitOr,
    cst.AddAssign,
    cst.SubtractAssign,
    cst.MultiplyAssign,
    cst.DivideAssign,
    cst.FloorDivideAssign,
    cst.ModuloAssign,
    cst.PowerAssign,
    cst.LeftShiftAssign,
    cst.RightShiftAssign,
    cst.BitXorAssign,
    cst.BitAndAssign,
    cst.BitOrAssign,
)
_MAX_DEPTH = 4
_ARRAY_LIBRARIES = ("numpy", "torch", "pandas", "cupy", "jax", "tensorflow", "cv2", "PIL", "scipy")
_IN_PROGRESS = object()

_POOL_MESSAGE = (
    "`{target}` is pure-Python CPU work: the threads of this pool run it one at a time "
    "under the GIL; use `concurrent.futures.ProcessPoolExecutor` (or `multiprocessing.Pool`)"
)
_THREAD_MESSAGE = (
    "`{target}` is pure-Python CPU work: these threads run it one at a time under the GIL; "
    "use processes (`concurrent.futures.ProcessPoolExecutor`, `multiprocessing.Process`)"
)


@dataclass
class _Verdict:
    cpu_bound: bool  # pure-Python computation with arithmetic in a loop (or recursion)
    mutates_outside: bool  # writes to objects it did not create (lost in a child process)


class ThreadsForCpuBoundWork(Rule):
    """
    ## What it does
    Finds threads started for pure-Python CPU work: several
    `threading.Thread(target=f)`, `ThreadPoolExecutor().map(f, ...)` or
    `.submit(f, ...)` in a loop, `multiprocessing.dummy.Pool().map(f, ...)`,
    where `f` (a function or method of this module, or a lambda) only loops
    over arithmetic in the interpreter: no I/O, no sleeping, no call into
    NumPy/torch/pandas/OpenCV or any library that releases the GIL.

    ## Why is this bad
    CPython's GIL lets one thread execute Python bytecode at a time, so
    threads add no speed to pure-Python computation; they add switching
    overhead. Measured on a 2-core CPU (`../shared/notes/speedups-cpu.md`,
    pair 7): 4 tasks of a pure-Python integer loop took 1.11 s in a
    `ThreadPoolExecutor(4)` (0.98x of running them one after another) and
    0.56 s in a `ProcessPoolExecutor` (2.0x; the ceiling is the core count).

    Thread targets that do I/O, sleep, or call NumPy/torch/OpenCV (which
    release the GIL) are what threads are for and are not reported; neither
    is a target this rule cannot see (imported, or calling unknown code).

    ## Example
    ```python
    from concurrent.futures import ThreadPoolExecutor

    def count_primes(n):
        return sum(1 for k in range(2, n) if all(k % d for d in range(2, int(k**0.5) + 1)))

    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(count_primes, limits))
    ```

    ## Use instead
    ```python
    from concurrent.futures import ProcessPoolExecutor

    if __name__ == "__main__":
        with ProcessPoolExecutor(4) as pool:
            counts = list(pool.map(count_primes, limits))
    ```

    ## Fix safety
    Unsafe, and offered only for a `ThreadPoolExecutor(max_workers)` used
    exclusively through `submit`/`map` with functions defined at module level
    (so they can be pickled): the fix swaps in
    `concurrent.futures.ProcessPoolExecutor`. Arguments and results must then
    be picklable, workers no longer share memory with the caller (a target
    that writes to global or passed-in objects gets no fix), and process
    start-up costs tens of milliseconds. With the `spawn` or `forkserver`
    start method (macOS, Windows, Python 3.14 on Linux) the script must guard
    its entry point with `if __name__ == "__main__":`, and the target must be
    importable from its module.

    ## References
    - Python docs, `concurrent.futures.ProcessPoolExecutor`:
      https://docs.python.org/3/library/concurrent.futures.html#processpoolexecutor
    - Python docs, multiprocessing start methods:
      https://docs.python.org/3/library/multiprocessing.html#contexts-and-start-methods
    - No ruff rule reports CPU-bound thread targets.
    """

    code = "AIP501"
    name = "threads-for-cpu-bound-work"
    message = (
        "pure-Python CPU work in threads runs one thread at a time under the GIL; use processes"
    )
    fix_kind = "sometimes"
    triggers = (b"Thread", b"multiprocessing.dummy")

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._verdicts: dict[int, _Verdict | None] = {}

    def visit_Call(self, node: cst.Call) -> None:
        qname = self.ctx.qualified_name(node.func)
        if qname == "threading.Thread":
            self._check_thread(node)
        elif (
            isinstance(node.func, cst.Attribute)
            and self.ctx.kind_of(node.func.value) == THREAD_POOL
        ):
            self._check_pool_call(node)

    def _check_thread(self, node: cst.Call) -> None:
        target = keyword_arg(node, "target")
        positional = positional_args(node)
        expr = target.value if target else (positional[1].value if len(positional) > 1 else None)
        if expr is None or not self.ctx.in_loop():
            return  # one background thread is for responsiveness, not speed
        verdict = self._target_verdict(expr)
        if verdict is not None and verdict.cpu_bound:
            self.report(node, _THREAD_MESSAGE.format(target=_describe(expr)))

    def _check_pool_call(self, node: cst.Call) -> None:
        method = node.func.attr.value
        if method in _SUBMIT_METHODS and not self.ctx.in_loop():
            return
        if method not in _MAP_METHODS | _SUBMIT_METHODS:
            return
        args = positional_args(node)
        if not args:
            return
        verdict = self._target_verdict(args[0].value)
        if verdict is None or not verdict.cpu_bound:
            return
        fix = None
        if method in {"map", "submit"} and not verdict.mutates_outside:
            fix = self._process_pool_fix(node.func.value)
        self.report(node, _POOL_MESSAGE.format(target=_describe(args[0].value)), fix)

    # ------------------------------------------------------------ target analysis

    def _target_verdict(self, expr: cst.BaseExpression) -> _Verdict | None:
        expr = self._unwrap_partial(expr)
        if isinstance(expr, cst.Lambda):
            arrays = _array_inputs(self.ctx, expr.params, expr.body, skip_first=False)
            return _analyse(self.ctx, expr.body, set(), None, self._verdicts, 0, None, arrays)
        function = self.ctx.resolve_function(expr)
        if function is None:
            return None
        return _function_verdict(self.ctx, function, self._class_methods(expr), self._verdicts, 0)

    def _unwrap_partial(self, expr: cst.BaseExpression) -> cst.BaseExpression:
        if isinstance(expr, cst.Call) and self.ctx.qualified_name(expr.func) == "functools.partial":
            args = positional_args(expr)
            return args[0].value if args else expr
        return expr

    def _class_methods(self, expr: cst.BaseExpression) -> dict | None:
        cls = self.ctx.current_class()
        if cls is not None and (dotted_name(expr) or "").startswith("self."):
            return cls.methods
        return None

    # ------------------------------------------------------------ the fix

    def _process_pool_fix(self, receiver: cst.BaseExpression) -> Fix | None:
        """ThreadPoolExecutor -> ProcessPoolExecutor when the pool only runs module-level functions."""
        constructor, name = receiver, None
        if isinstance(receiver, cst.Name):
            binding = self.ctx.binding(receiver.value)
            constructor, name = (binding.value if binding else None), receiver.value
        if not isinstance(constructor, cst.Call):
            return None
        if self.ctx.qualified_name(constructor.func) != "concurrent.futures.ThreadPoolExecutor":
            return None
        if any(arg.keyword and arg.keyword.value != "max_workers" for arg in constructor.args):
            return None
        if len(positional_args(constructor)) > 1 or any(arg.star for arg in constructor.args):
            return None
        if name is not None and not self._pool_only_maps_module_functions(name):
            return None
        return self._swap_constructor(constructor.func)

    def _pool_only_maps_module_functions(self, name: str) -> bool:
        frame = self.ctx.current_function()
        scope = frame.node if frame is not None else self.ctx.module
        uses = _PoolUses(name, self.ctx)
        scope.visit(uses)
        return uses.bindings == 1 and uses.other_uses == 0

    def _swap_constructor(self, func: cst.BaseExpression) -> Fix | None:
        new_name = cst.Name("ProcessPoolExecutor")
        if isinstance(func, cst.Attribute):
            if self.ctx.qualified_name(func.value) != "concurrent.futures":
                return None
            return Fix(
                "unsafe", {func: func.with_changes(attr=new_name)}, description="use processes"
            )
        bound = self.ctx.imports.get("ProcessPoolExecutor")
        if (
            bound not in {None, "concurrent.futures.ProcessPoolExecutor"}
            or "ProcessPoolExecutor" in self.ctx.local_defs
        ):
            return None
        return Fix(
            "unsafe",
            {func: new_name},
            imports=[ImportSpec("concurrent.futures", "ProcessPoolExecutor")],
            description="use processes",
        )


def _describe(expr: cst.BaseExpression) -> str:
    if isinstance(expr, cst.Lambda):
        return "lambda"
    if isinstance(expr, cst.Call):
        expr = positional_args(expr)[0].value if positional_args(expr) else expr.func
    return dotted_name(expr) or "target"


class _PoolUses(cst.CSTVisitor):
    """Counts how a pool variable is used: bound once, then only `.submit`/`.map` of module functions."""

    def __init__(self, name: str, ctx) -> None:
        self.name = name
        self.ctx = ctx
        self.bindings = 0
        self.other_uses = 0
        self._accounted: set[int] = set()

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None and self._is_name(node.asname.name):
            self.bindings += 1
            self._accounted.add(id(node.asname.name))

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        if self._is_name(node.target):
            self.bindings += 1
            self._accounted.add(id(node.target))

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if (
            isinstance(func, cst.Attribute)
            and self._is_name(func.value)
            and func.attr.value in {"map", "submit"}
        ):
            args = positional_args(node)
            if (
                args
                and isinstance(args[0].value, cst.Name)
                and args[0].value.value in self.ctx.functions
            ):
                self._accounted.add(id(func.value))

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name and id(node) not in self._accounted:
            self.other_uses += 1

    def _is_name(self, node: cst.CSTNode) -> bool:
        return isinstance(node, cst.Name) and node.value == self.name


def _function_verdict(ctx, function, methods, cache, depth) -> _Verdict | None:
    key = id(function)
    if key in cache:
        verdict = cache[key]
        # mutual recursion reaches a function still being analysed: computation
        return _Verdict(True, False) if verdict is _IN_PROGRESS else verdict
    if function.asynchronous is not None or depth > _MAX_DEPTH:
        return None
    cache[key] = _IN_PROGRESS
    arrays = _array_inputs(ctx, function.params, function.body, skip_first=methods is not None)
    verdict = _analyse(
        ctx, function.body, _local_names(function.body), methods, cache, depth, function, arrays
    )
    cache[key] = verdict
    return verdict


def _analyse(ctx, body, local_names, methods, cache, depth, function=None, arrays=frozenset()):
    work = _CpuWork(ctx, local_names, methods, cache, depth, function, arrays)
    body.visit(work)
    if work.impure:
        return None
    return _Verdict(work.computes, work.mutates_outside)


def _array_inputs(ctx, params: cst.Parameters, body: cst.CSTNode, skip_first: bool) -> set[str]:
    """Names that may hold arrays: parameters (and what is derived from them) in a module using an array library.

    Arithmetic on a NumPy/torch array runs in C and releases the GIL, so in
    such a module arithmetic on inputs of unknown type proves nothing.
    """
    if not any(ctx.uses(root) for root in _ARRAY_LIBRARIES):
        return set()
    ordered = list(params.posonly_params) + list(params.params) + list(params.kwonly_params)
    if skip_first and ordered:
        ordered = ordered[1:]  # self
    tainted = {p.name.value for p in ordered if not _scalar_annotation(p)}
    if tainted:
        body.visit(_Taint(tainted))
    return tainted


def _scalar_annotation(param: cst.Param) -> bool:
    annotation = param.annotation.annotation if param.annotation else None
    return isinstance(annotation, cst.Name) and annotation.value in {
        "int",
        "float",
        "bool",
        "complex",
        "str",
    }


class _Taint(cst.CSTVisitor):
    """Spreads "may be an array" from inputs to names assigned from them (in source order)."""

    def __init__(self, tainted: set[str]) -> None:
        self.tainted = tainted

    def _spread(self, value: cst.CSTNode, target: cst.BaseExpression) -> None:
        if _reads_as_data(value, self.tainted):
            self.tainted |= target_names(target)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._spread(node.value, target.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._spread(node.value, node.target)

    def visit_For(self, node: cst.For) -> None:
        self._spread(node.iter, node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._spread(node.iter, node.target)


def _reads_as_data(node: cst.CSTNode, tainted: set[str]) -> bool:
    """Does node use a tainted name other than as a count (`range(n)`, `len(a)`)?"""
    if isinstance(node, cst.Call) and call_name(node) in {"range", "len", "int"}:
        return False
    if isinstance(node, cst.Name):
        return node.value in tainted
    return any(_reads_as_data(child, tainted) for child in node.children)


def _local_names(body: cst.CSTNode) -> set[str]:
    collector = _Bound()
    body.visit(collector)
    return collector.names


class _Bound(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self.names |= target_names(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.names |= target_names(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.names |= target_names(node.target)

    def visit_For(self, node: cst.For) -> None:
        self.names |= target_names(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self.names |= target_names(node.target)


class _CpuWork(cst.CSTVisitor):
    """Pure-Python computation? Any call or name this cannot vouch for makes it impure."""

    def __init__(self, ctx, local_names, methods, cache, depth, function, arrays) -> None:
        self.ctx = ctx
        self.arrays = arrays
        self.local_names = local_names
        self.methods = methods
        self.cache = cache
        self.depth = depth
        self.function = function
        self.loop_depth = 0
        self.computes = False
        self.impure = False
        self.mutates_outside = False

    # loops and arithmetic
    def _enter_loop(self, node) -> None:
        self.loop_depth += 1

    def _leave_loop(self, node) -> None:
        self.loop_depth -= 1

    visit_For = visit_While = visit_ListComp = visit_SetComp = visit_DictComp = (
        visit_GeneratorExp
    ) = _enter_loop
    leave_For = leave_While = leave_ListComp = leave_SetComp = leave_DictComp = (
        leave_GeneratorExp
    ) = _leave_loop

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        self._arithmetic(node, node.operator)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._arithmetic(node, node.operator)
        self._note_write(node.target)

    def _arithmetic(self, node, operator) -> None:
        if not isinstance(operator, _ARITHMETIC):
            return
        if self.arrays and _reads_as_data(node, self.arrays):
            self.impure = True  # may be array arithmetic, which releases the GIL
        elif self.loop_depth:
            self.computes = True

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._note_write(node.target)

    def _note_write(self, target: cst.BaseExpression) -> None:
        if isinstance(target, (cst.Subscript, cst.Attribute)) and not self._is_local(target.value):
            self.mutates_outside = True

    def _is_local(self, expr: cst.BaseExpression) -> bool:
        while isinstance(expr, (cst.Attribute, cst.Subscript)):
            expr = expr.value
        return isinstance(expr, cst.Name) and expr.value in self.local_names

    # anything that may wait, do I/O or share state
    def _impure(self, node) -> bool:
        self.impure = True
        return False

    visit_Await = visit_Yield = visit_With = visit_Import = visit_ImportFrom = _impure
    visit_Global = visit_Nonlocal = _impure

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # a nested def does not run here

    def visit_Name(self, node: cst.Name) -> None:
        qualified = self.ctx.imports.get(node.value)
        if qualified is not None and node.value not in self.local_names:
            if qualified.split(".")[0] not in _PURE_MODULES:
                self.impure = True

    def visit_Call(self, node: cst.Call) -> None:
        if not self._vouch_for_call(node):
            self.impure = True

    def _vouch_for_call(self, node: cst.Call) -> bool:
        func = node.func
        if isinstance(func, cst.Name):
            return self._vouch_for_name_call(func.value)
        if not isinstance(func, cst.Attribute):
            return False
        head = dotted_name(func)
        root = head.split(".")[0] if head else None
        if root in self.ctx.imports and root not in self.local_names:
            return self.ctx.imports[root].split(".")[0] in _PURE_MODULES
        if head and head.startswith("self.") and head.count(".") == 1 and self.methods:
            method = self.methods.get(func.attr.value)
            return method is not None and self._callee_is_pure(method, self.methods)
        method = func.attr.value
        if method in _MUTATING_METHODS and not self._is_local(func.value):
            self.mutates_outside = True
        if method in {"join", "format"} and isinstance(func.value, cst.SimpleString):
            return True
        return method in _PURE_METHODS

    def _vouch_for_name_call(self, name: str) -> bool:
        if name in self.local_names:
            return False  # a callable built at run time: unknown
        if name in self.ctx.imports:
            return self.ctx.imports[name].split(".")[0] in _PURE_MODULES
        if self.function is not None and name == self.function.name.value:
            self.computes = True  # recursion
            return True
        callee = self.ctx.functions.get(name)
        if callee is not None:
            return self._callee_is_pure(callee, None)
        return name in _PURE_BUILTINS

    def _callee_is_pure(self, callee: cst.FunctionDef, methods) -> bool:
        verdict = _function_verdict(self.ctx, callee, methods, self.cache, self.depth + 1)
        if verdict is None:
            return False
        self.computes = self.computes or verdict.cpu_bound
        self.mutates_outside = self.mutates_outside or verdict.mutates_outside
        return True


VALID = [
    # I/O-bound thread targets: HTTP, file reads, sleeping
    """
import threading, requests, time
def fetch(url):
    for attempt in range(3):
        r = requests.get(url)
        time.sleep(2 ** attempt)
    return r
threads = [threading.Thread(target=fetch, args=(u,)) for u in urls]
""",
    """
from concurrent.futures import ThreadPoolExecutor
def load(path):
    with open(path) as f:
        return sum(len(line) * 2 for line in f)
with ThreadPoolExecutor(8) as pool:
    sizes = list(pool.map(load, paths))
""",
    # NumPy / torch / OpenCV work releases the GIL: threads do run in parallel
    """
import numpy as np
from concurrent.futures import ThreadPoolExecutor
def work(a):
    total = 0.0
    for i in range(10):
        total += np.linalg.norm(a * i)
    return total
with ThreadPoolExecutor(4) as pool:
    out = list(pool.map(work, arrays))
""",
    """
import cv2
from concurrent.futures import ThreadPoolExecutor
def resize_all(paths):
    return [cv2.resize(cv2.imread(p), (224, 224)) for p in paths]
pool = ThreadPoolExecutor(4)
futures = [pool.submit(resize_all, chunk) for chunk in chunks]
""",
    # plain arithmetic on inputs that may be arrays, in a module using NumPy/torch
    """
import torch
from concurrent.futures import ThreadPoolExecutor
def blend(a, b):
    out = a
    for w in range(1, 8):
        out = out * 0.5 + b / w
    return out
with ThreadPoolExecutor(4) as pool:
    outs = list(pool.map(blend, xs, ys))
""",
    """
import numpy as np
import threading
def accumulate(rows):
    total = 0
    for row in rows:
        total += row * 2
    return total
threads = [threading.Thread(target=accumulate, args=(c,)) for c in chunks]
""",
    # a target this module cannot see, and one calling unknown code
    """
from concurrent.futures import ThreadPoolExecutor
from mylib import heavy
def step(x):
    out = 0
    for i in range(x):
        out += transform(i) * 2
    return out
with ThreadPoolExecutor(4) as pool:
    a = list(pool.map(heavy, xs))
    b = list(pool.map(step, xs))
""",
    # a queue-draining worker: blocks on the queue
    """
import threading, queue
q = queue.Queue()
def worker():
    while True:
        item = q.get()
        total = item * item + 1
        q.task_done()
for _ in range(4):
    threading.Thread(target=worker, daemon=True).start()
""",
    # one background thread (responsiveness), not several for speed
    """
import threading
def crunch(n):
    return sum(i * i for i in range(n))
threading.Thread(target=crunch, args=(10**7,)).start()
""",
    # same method name on something that is not a thread pool
    """
def square(n):
    return sum(i * i for i in range(n))
results = list(map(square, range(10)))
import multiprocessing
with multiprocessing.Pool(4) as pool:
    out = pool.map(square, range(10))
""",
    # no loop: trivial work
    """
from concurrent.futures import ThreadPoolExecutor
def double(x):
    return x * 2
with ThreadPoolExecutor(4) as pool:
    out = list(pool.map(double, xs))
""",
]

INVALID = [
    Invalid(
        """
from concurrent.futures import ThreadPoolExecutor

def count_primes(n):
    count = 0
    for k in range(2, n):
        if all(k % d for d in range(2, int(k ** 0.5) + 1)):
            count += 1
    return count

def main(limits):
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(count_primes, limits))
""",
        fixed="""
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import ProcessPoolExecutor

def count_primes(n):
    count = 0
    for k in range(2, n):
        if all(k % d for d in range(2, int(k ** 0.5) + 1)):
            count += 1
    return count

def main(limits):
    with ProcessPoolExecutor(4) as pool:
        return list(pool.map(count_primes, limits))
""",
        unsafe=True,
    ),
    # dotted constructor, submit in a loop, helper function followed
    Invalid(
        """
import concurrent.futures
import math

def norm(v):
    return math.sqrt(sum(x * x for x in v))

def score(rows):
    return [norm(r) / len(r) for r in rows]

ex = concurrent.futures.ThreadPoolExecutor(max_workers=4)
futs = [ex.submit(score, chunk) for chunk in chunks]
""",
        fixed="""
import concurrent.futures
import math

def norm(v):
    return math.sqrt(sum(x * x for x in v))

def score(rows):
    return [norm(r) / len(r) for r in rows]

ex = concurrent.futures.ProcessPoolExecutor(max_workers=4)
futs = [ex.submit(score, chunk) for chunk in chunks]
""",
        unsafe=True,
    ),
    # threading.Thread in a loop writing into a shared list: report only
    Invalid(
        """
import threading

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def work(n, out):
    out.append(fib(n))

out = []
threads = []
for n in [25, 26, 27, 28]:
    t = threading.Thread(target=work, args=(n, out))
    t.start()
    threads.append(t)
"""
    ),
    # a lambda target and a method target; multiprocessing.dummy pool: report only
    Invalid(
        """
from multiprocessing.dummy import Pool
from concurrent.futures import ThreadPoolExecutor

class Sim:
    def step(self, n):
        acc = 0
        for i in range(n):
            acc = (acc * 31 + i) % 1000003
        return acc

    def run(self, sizes):
        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(self.step, sizes))

with Pool(4) as pool:
    squares = pool.map(lambda n: sum(i * i for i in range(n)), sizes)
""",
        count=2,
    ),
    # a NumPy module, but the target only counts with Python ints
    Invalid(
        """
import numpy as np
from concurrent.futures import ThreadPoolExecutor
def collatz_steps(limit: int):
    best = 0
    for start in range(1, limit):
        n, steps = start, 0
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        best = max(best, steps)
    return best
with ThreadPoolExecutor(4) as pool:
    res = np.array(list(pool.map(collatz_steps, [10_000] * 4)))
""",
        fixed="""
import numpy as np
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import ProcessPoolExecutor
def collatz_steps(limit: int):
    best = 0
    for start in range(1, limit):
        n, steps = start, 0
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        best = max(best, steps)
    return best
with ProcessPoolExecutor(4) as pool:
    res = np.array(list(pool.map(collatz_steps, [10_000] * 4)))
""",
        unsafe=True,
    ),
    # pool used for something else too (shutdown): reported, no fix
    Invalid(
        """
from concurrent.futures import ThreadPoolExecutor
def work(n):
    return sum(i ** 2 for i in range(n))
pool = ThreadPoolExecutor(4)
results = list(pool.map(work, sizes))
pool.shutdown()
"""
    ),
]
