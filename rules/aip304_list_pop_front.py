"""AIP304 list-pop-front-queue."""

from __future__ import annotations

import libcst as cst

from aiperf_lint import walk
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import LIST, dotted_name, positional_args

# A list kept at most this long (`if len(w) > 5: w.pop(0)`) is tiny: pop(0) is cheap.
_TINY = 64
_GROW_METHODS = frozenset({"append", "extend", "insert"})


class ListPopFront(Rule):
    """
    ## What it does
    Finds `list.pop(0)` used as a queue: inside a loop that refills the list
    as it drains it (`node = queue.pop(0)` ... `queue.append(child)`), or in a method of a buffer
    class that also appends to the same `self.` list (a `push()` called from a
    loop elsewhere).

    ## Why is this bad
    `pop(0)` moves every remaining element one slot left: O(n) per pop, so
    draining a queue of n items is O(n^2). `collections.deque.popleft()` is
    O(1). The fixture pair (breadth-first order over a wide tree of 30,000
    nodes) measured the deque at 3.8x faster on a CPU (AMD EPYC,
    `aiperf-lint verify fixtures/AIP304_list_pop_front --device cpu`).

    Not reported: lists that stay tiny (a size guard such as
    `if len(window) > 5: window.pop(0)`), lists that are only drained and never
    refilled (`while todo: step = todo.pop(0)`: usually a short work list),
    rotations (`x.append(x.pop(0))`), names not known to hold a list
    (`dict.pop(0)` removes key `0`), and `pop()` from the end.

    ## Example
    ```python
    queue = [root]
    while queue:
        node = queue.pop(0)
        queue.extend(node.children)
    ```

    ## Use instead
    ```python
    from collections import deque

    queue = deque([root])
    while queue:
        node = queue.popleft()
        queue.extend(node.children)
    ```

    ## Fix safety
    No fix: the list is usually indexed, sliced or passed elsewhere, which a
    deque does not support in the same way.

    ## References
    - Python docs, `collections.deque`: https://docs.python.org/3/library/collections.html#collections.deque
    - Python wiki, TimeComplexity: https://wiki.python.org/moin/TimeComplexity
    - No ruff rule reports this (PERF has none for `pop(0)`).
    """

    code = "AIP304"
    name = "list-pop-front-queue"
    message = (
        "`{name}.pop(0)` shifts the whole list on every call (O(n)); use a "
        "`collections.deque` and `popleft()`"
    )
    triggers = (b".pop(0)",)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._growth: dict[int, set[str]] = {}

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "pop"):
            return
        args = positional_args(node)
        if len(node.args) != 1 or len(args) != 1 or not _is_zero(args[0].value):
            return
        name = dotted_name(func.value)
        if name is None or self._kept_tiny(name):
            return
        if self._queue_in_loop(func.value, name) or self._buffer_method(name):
            self.report(node, self.message.format(name=name))

    def _queue_in_loop(self, receiver, name: str) -> bool:
        loops = self.ctx.statement_loops()
        if not loops or self.ctx.kind_of(receiver) != LIST:
            return False
        # Refilled while it is drained: a queue. A list only drained (`while todo:`)
        # is usually a short work list, and a rotation (`x.append(x.pop(0))`)
        # keeps its size: neither is reported.
        return any(name in self._grown_in(loop.node.body) for loop in loops)

    def _buffer_method(self, name: str) -> bool:
        """`self.buf.pop(0)` in a method of a class that appends to `self.buf`."""
        if not name.startswith("self.") or name.count(".") != 1:
            return False
        cls = self.ctx.current_class()
        if cls is None or cls.attributes.get(name[5:]) != LIST:
            return False
        return any(name in self._grown_in(method) for method in cls.methods.values())

    def _kept_tiny(self, name: str) -> bool:
        """Under `if len(name) > K` / `while len(name) >= K` with a small literal K."""
        for ancestor in reversed(self.ctx.ancestors):
            if isinstance(ancestor, (cst.If, cst.While)) and _small_size_guard(ancestor.test, name):
                return True
            if isinstance(ancestor, cst.FunctionDef):
                return False
        return False

    def _grown_in(self, node: cst.CSTNode) -> set[str]:
        key = id(node)
        if key not in self._growth:
            finder = _Growth()
            walk.visit(node, finder)
            self._growth[key] = finder.grown
        return self._growth[key]


def _is_zero(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Integer) and int(expr.value, 0) == 0


def _small_size_guard(test: cst.BaseExpression, name: str) -> bool:
    if isinstance(test, cst.BooleanOperation):
        return _small_size_guard(test.left, name) or _small_size_guard(test.right, name)
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1):
        return False
    left, right = test.left, test.comparisons[0].comparator
    for size, bound in ((left, right), (right, left)):
        if (
            isinstance(size, cst.Call)
            and isinstance(size.func, cst.Name)
            and size.func.value == "len"
            and size.args
            and dotted_name(size.args[0].value) == name
            and isinstance(bound, cst.Integer)
        ):
            return int(bound.value, 0) <= _TINY
    return False


def _re_appends_own_pop(call: cst.Call, name: str) -> bool:
    """`x.append(x.pop(0))`: a rotation, the list keeps its size."""
    args = positional_args(call)
    if not args or not isinstance(args[-1].value, cst.Call):
        return False
    inner = args[-1].value
    return (
        isinstance(inner.func, cst.Attribute)
        and inner.func.attr.value == "pop"
        and dotted_name(inner.func.value) == name
    )


class _Growth(cst.CSTVisitor):
    """Dotted names that grow: `x.append(...)`, `x.extend(...)`, `x += [...]`."""

    def __init__(self) -> None:
        self.grown: set[str] = set()

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _GROW_METHODS:
            dotted = dotted_name(func.value)
            if dotted and not _re_appends_own_pop(node, dotted):
                self.grown.add(dotted)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        dotted = dotted_name(node.target)
        if dotted and isinstance(node.operator, cst.AddAssign):
            self.grown.add(dotted)


VALID = [
    # the deque idiom
    """
from collections import deque
queue = deque([0])
while queue:
    node = queue.popleft()
    queue.extend(graph[node])
""",
    # a sliding window kept tiny by a literal size guard
    """
window = []
for x in stream:
    window.append(x)
    if len(window) > 5:
        window.pop(0)
""",
    # dict.pop(0) removes key 0; an unknown object's pop(0)
    """
cache = {0: "a", 1: "b"}
for _ in range(3):
    cache.pop(0, None)
def drain(q):
    while q:
        q.pop(0)
""",
    # pop() from the end is O(1)
    """
stack = [root]
while stack:
    node = stack.pop()
    stack.extend(children(node))
""",
    # a list that is only drained, never refilled; a rotation of a few axes
    """
todo = ["download", "extract", "train"]
while todo:
    step = todo.pop(0)
    run(step)
levels = [names.index(n) for n in wanted]
while levels:
    level = levels.pop(0)
axes = [0, 1, 2]
for _ in range(100):
    axes.append(axes.pop(0))
""",
    # pop(0) outside any loop or buffer class
    """
args = list(names)
first = args.pop(0)
""",
    # a class that pops from a list it never appends to
    """
class Schedule:
    def __init__(self, rates):
        self.rates = list(rates)
    def next_rate(self):
        return self.rates.pop(0)
""",
]

INVALID = [
    # breadth-first search
    Invalid(
        """
def bfs(graph, start):
    queue = [start]
    seen = {start}
    while queue:
        node = queue.pop(0)
        for nxt in graph[node]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen
"""
    ),
    # a replay buffer whose push() is called from a training loop elsewhere
    Invalid(
        """
class ReplayBuffer:
    def __init__(self, capacity):
        self.capacity = capacity
        self.memory = []

    def push(self, transition):
        self.memory.append(transition)
        if len(self.memory) > self.capacity:
            self.memory.pop(0)
"""
    ),
    # a work list built from data, in a for loop that refills it
    Invalid(
        """
pending = list(range(100000))
for step in range(100000):
    item = pending.pop(0)
    if item % 2:
        pending.append(item // 2)
"""
    ),
]
