"""AIP303 list-membership-in-loop."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import (
    LIST,
    Context,
    LoopFrame,
    dotted_name,
    names_in,
    positional_args,
    target_names,
)

# Literal lists/tuples up to this size are as fast to scan as to hash, and a
# loop over that many literal items does only a handful of look-ups.
_SMALL = 8


class ListMembershipInLoop(Rule):
    """
    ## What it does
    Finds `x in names`, `x not in names` and `names.index(x)` inside a loop or
    comprehension, where `names` is a list that the loop does not change.

    ## Why is this bad
    A list is searched element by element, so every look-up costs O(len(names))
    and the loop O(n * len(names)); a set or dict answers in O(1). Measured on
    a 2-core CPU (`../shared/notes/speedups-cpu.md`, pair 10): 1,000 look-ups
    into 1,000 items run about 130x faster with the set built inside the timed
    code, 10,000 into 10,000 about 1,400x. For a handful of look-ups the set
    does not pay for itself (3 look-ups into 10,000 items: 0.86x, slower), so
    only tests that repeat in a loop are reported.

    Typical case: label encoding with `[classes.index(c) for c in labels]`.

    Not reported: sets, dicts, `x in d.keys()` (a view, no list is built),
    literal lists and tuples of a few items, loops over a few literal items,
    one-off tests outside loops, and lists that change inside the loop (a
    `seen` list that grows as the loop runs is not loop-invariant).

    ## Example
    ```python
    stop = list(load_stopwords())
    kept = [w for w in words if w not in stop]
    ```

    ## Use instead
    ```python
    stop = list(load_stopwords())
    stop_set = set(stop)
    kept = [w for w in words if w not in stop_set]
    ```
    and for `.index`: `position = {c: i for i, c in reversed(list(enumerate(classes)))}`
    once, then `position[c]` (reversed keeps the first index of duplicates, as
    `.index` does).

    ## Fix safety
    Unsafe, for the `in` / `not in` form when the list is a plain name: a set
    `<name>_set = set(<name>)` is built once before the outermost enclosing loop
    in which the list does not change, and every `in <name>` test in that loop
    uses it. The elements must be hashable (a list of lists or of ndarrays
    raises `TypeError` in `set()`), and equality becomes hash-then-equality:
    objects whose `__eq__` disagrees with their `__hash__` behave differently.
    The set is built even when the loop runs zero times. `.index` is reported
    without a fix (a dict of positions changes what a missing item raises).

    ## References
    - Python wiki, "TimeComplexity" (list `x in s` is O(n), set O(1)):
      https://wiki.python.org/moin/TimeComplexity
    - ruff PLR6201 (`literal-membership`) covers membership in *literal*
      collections; this rule covers named lists searched in a loop.
    """

    code = "AIP303"
    name = "list-membership-in-loop"
    message = (
        "`{op}` searches the list `{name}` element by element on every iteration; "
        "build a set once before the loop and test against it"
    )
    index_message = (
        "`{name}.index(...)` scans the list `{name}` on every iteration; "
        "build a `{{item: position}}` dict once before the loop"
    )
    fix_kind = "unsafe"
    triggers = (b" in ", b".index(")

    def visit_Comparison(self, node: cst.Comparison) -> None:
        for target in node.comparisons:
            if not isinstance(target.operator, (cst.In, cst.NotIn)):
                continue
            loop = self._repeating_loop()
            haystack = target.comparator
            if loop is None or not self._invariant_list(haystack, loop):
                continue
            op = "in" if isinstance(target.operator, cst.In) else "not in"
            name = dotted_name(haystack)
            fix = _set_fix(self.ctx, haystack)
            self.report(node, self.message.format(op=op, name=name), fix)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "index":
            return
        if len(positional_args(node)) != 1 or len(node.args) != 1:
            return  # `.index(x, start)`: a windowed search
        loop = self._repeating_loop()
        if loop is None or not self._invariant_list(func.value, loop):
            return
        self.report(node, self.index_message.format(name=dotted_name(func.value)))

    def _repeating_loop(self) -> LoopFrame | None:
        """The innermost loop whose repeated part holds the current node."""
        ctx = self.ctx
        for frame in reversed(ctx.loops):
            if _in_repeated_part(ctx, frame):
                return None if _few_iterations(ctx, frame) else frame
        return None

    def _invariant_list(self, expr: cst.BaseExpression, loop: LoopFrame) -> bool:
        name = dotted_name(expr)
        if name is None or self.ctx.kind_of(expr) != LIST:
            return False
        if _small_literal(self.ctx, expr) or _rebound_here(self.ctx, name):
            return False
        return loop.is_invariant(expr)


def _in_repeated_part(ctx: Context, frame: LoopFrame) -> bool:
    """False for the part evaluated once: a for-loop's iterable, a comprehension's first one."""
    node = frame.node
    once = node.iter if isinstance(node, cst.For) else None
    if once is None and not frame.is_comprehension:
        return True
    if frame.is_comprehension:
        once = node.for_in.iter
    return not any(ancestor is once for ancestor in ctx.ancestors)


def _few_iterations(ctx: Context, frame: LoopFrame) -> bool:
    iterable = frame.iter_expr
    if isinstance(iterable, (cst.List, cst.Tuple, cst.Set)):
        return len(iterable.elements) <= _SMALL
    if isinstance(iterable, cst.Call) and ctx.qualified_name(iterable.func) == "builtins.range":
        args = positional_args(iterable)
        if len(args) == 1 and isinstance(args[0].value, cst.Integer):
            return int(args[0].value.value, 0) <= _SMALL
    return False


def _rebound_here(ctx: Context, name: str) -> bool:
    """`xs = [x for x in ys if x in xs]`: the test reads the *previous* `xs`, of unknown kind."""
    statement = ctx.current_statement()
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    return any(
        isinstance(small, cst.Assign) and any(name in target_names(t.target) for t in small.targets)
        for small in statement.body
    )


def _small_literal(ctx: Context, expr: cst.BaseExpression) -> bool:
    if not isinstance(expr, cst.Name):
        return False
    binding = ctx.binding(expr.value)
    value = binding.value if binding is not None else None
    return isinstance(value, (cst.List, cst.Tuple)) and len(value.elements) <= _SMALL


# ---------------------------------------------------------------- the fix


def _set_fix(ctx: Context, haystack: cst.BaseExpression) -> Fix | None:
    """Hoist `<name>_set = set(<name>)` before the outermost loop where the list is invariant."""
    if not isinstance(haystack, cst.Name):
        return None
    name = haystack.value
    anchor = _hoist_anchor(ctx, haystack)
    if anchor is None:
        return None
    statement = anchor
    set_name = f"{name}_set"
    if set_name in names_in(ctx.module):
        return None
    rewritten = statement.visit(_UseSet(name, set_name))
    hoisted = cst.SimpleStatementLine(
        body=[
            cst.Assign(
                targets=[cst.AssignTarget(cst.Name(set_name))],
                value=cst.Call(cst.Name("set"), args=[cst.Arg(cst.Name(name))]),
            )
        ],
        leading_lines=statement.leading_lines,
    )
    replacement = cst.FlattenSentinel([hoisted, rewritten.with_changes(leading_lines=())])
    return Fix("unsafe", {statement: replacement}, description=f"test against set({name})")


def _hoist_anchor(ctx: Context, haystack: cst.Name) -> cst.BaseStatement | None:
    """The statement to put the set before (a statement of a block).

    The outermost of the enclosing statement loops, counted from the innermost
    outwards, in which the list does not change; for a comprehension outside
    any such loop, the statement holding it.
    """
    if ctx.qualified_name(cst.Name("set")) != "builtins.set":
        return None  # `set` is shadowed
    statement: cst.CSTNode | None = None
    for frame in reversed(ctx.statement_loops()):
        if not frame.is_invariant(haystack):
            break
        statement = frame.node
    if statement is None:
        statement = ctx.current_statement()
    if statement is None:
        return None
    chain = ctx.ancestors
    for index, node in enumerate(chain):
        if node is statement and index:
            parent = chain[index - 1]
            return statement if isinstance(parent, (cst.IndentedBlock, cst.Module)) else None
    return None


class _UseSet(cst.CSTTransformer):
    """`x in name` / `x not in name` -> `... name_set`, outside nested scopes."""

    def __init__(self, name: str, set_name: str) -> None:
        self.name = name
        self.set_name = set_name

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_ComparisonTarget(
        self, original: cst.ComparisonTarget, updated: cst.ComparisonTarget
    ) -> cst.ComparisonTarget:
        if not isinstance(updated.operator, (cst.In, cst.NotIn)):
            return updated
        comparator = updated.comparator
        if isinstance(comparator, cst.Name) and comparator.value == self.name:
            return updated.with_changes(comparator=comparator.with_changes(value=self.set_name))
        return updated


VALID = [
    # sets and dicts
    """
vocab = set(words)
ids = [w for w in tokens if w in vocab]
""",
    """
index = {c: i for i, c in enumerate(classes)}
ids = [index[c] for c in labels]
""",
    # a dict view builds nothing
    """
d = dict(pairs)
for k in keys:
    if k in d.keys():
        hits += 1
""",
    # a small literal tuple / list
    """
for tok in tokens:
    if tok in ("a", "an", "the"):
        continue
""",
    """
punct = [".", ",", "!"]
for ch in text:
    if ch in punct:
        n += 1
""",
    # a seen-list that grows inside the loop is not loop-invariant
    """
seen = []
for item in items:
    if item not in seen:
        seen.append(item)
""",
    """
order = list(first)
for x in stream:
    if x in order:
        order.remove(x)
    order = order + [x]
""",
    # one-off tests: no loop
    """
names = list(load())
if "alice" in names and "bob" in names and "carol" in names:
    print("all here")
""",
    # the list is the loop's own iterable / a comprehension's first iterable (evaluated once)
    """
names = list(load())
firsts = [n for n in (names if "x" in names else [])]
""",
    """
names = list(load())
for n in (names if "x" in names else []):
    print(n)
""",
    # a loop over a few literal items
    """
names = list(load())
for who in ["alice", "bob"]:
    if who in names:
        print(who)
""",
    # substring search in a string
    """
text = open("f.txt").read()
for w in words:
    if w in text:
        found += 1
""",
    # the right-hand side reads the previous binding (a set), not the new list
    """
singletons = set(found)
singletons = [ix for ix in out if ix in singletons]
""",
    # unknown kind: could be a set
    """
def count(xs, allowed):
    return sum(1 for x in xs if x in allowed)
""",
    # .index with a start position
    """
names = list(load())
for n in queries:
    pos = names.index(n, 10)
""",
]

INVALID = [
    Invalid(
        """
def count_hits(needles, haystack_source):
    haystack = list(haystack_source)
    hits = 0
    for n in needles:
        if n in haystack:
            hits += 1
    return hits
""",
        fixed="""
def count_hits(needles, haystack_source):
    haystack = list(haystack_source)
    hits = 0
    haystack_set = set(haystack)
    for n in needles:
        if n in haystack_set:
            hits += 1
    return hits
""",
        unsafe=True,
    ),
    # comprehension at statement level, `not in`
    Invalid(
        """
stop = [w.strip() for w in open("stop.txt")]
kept = [w for w in words if w not in stop]
""",
        fixed="""
stop = [w.strip() for w in open("stop.txt")]
stop_set = set(stop)
kept = [w for w in words if w not in stop_set]
""",
        unsafe=True,
    ),
    # .tolist() source, nested loops: the set goes before the outer loop, both tests use it
    Invalid(
        """
import numpy as np
valid = np.unique(ids).tolist()
for batch in batches:
    for x in batch:
        if x in valid and x not in valid[:0]:
            keep(x)
    flag = batch[0] in valid
""",
        fixed="""
import numpy as np
valid = np.unique(ids).tolist()
valid_set = set(valid)
for batch in batches:
    for x in batch:
        if x in valid_set and x not in valid[:0]:
            keep(x)
    flag = batch[0] in valid_set
""",
        unsafe=True,
        count=2,
    ),
    # label encoding with .index: reported, no fix
    Invalid(
        """
classes = sorted(set(labels))
encoded = [classes.index(c) for c in labels]
"""
    ),
    # a list attribute of the class
    Invalid(
        """
class Vocab:
    def __init__(self, words):
        self.words = list(words)

    def encode(self, tokens):
        return [t for t in tokens if t in self.words]
"""
    ),
    # rebuilt per document, invariant in the inner loop: the set goes before the inner loop
    Invalid(
        """
for doc in docs:
    vocab = list(doc.words)
    for q in queries:
        if q in vocab:
            doc.hits += 1
""",
        fixed="""
for doc in docs:
    vocab = list(doc.words)
    vocab_set = set(vocab)
    for q in queries:
        if q in vocab_set:
            doc.hits += 1
""",
        unsafe=True,
    ),
    # a while loop, large literal list
    Invalid(
        """
allowed = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
while queue:
    x = queue.pop()
    if x in allowed:
        out.append(x)
""",
        fixed="""
allowed = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
allowed_set = set(allowed)
while queue:
    x = queue.pop()
    if x in allowed_set:
        out.append(x)
""",
        unsafe=True,
    ),
]
