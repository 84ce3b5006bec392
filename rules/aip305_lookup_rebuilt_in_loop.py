"""AIP305 lookup-rebuilt-in-loop."""

from __future__ import annotations

import libcst as cst

from aiperf_lint import walk
from aiperf_lint.model import Fix
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import call_name, dotted_name, names_in, positional_args, target_names

_BUILDERS = frozenset({"set", "frozenset", "list", "tuple", "sorted"})
_PANDAS_BUILDERS = frozenset({"unique", "tolist"})
# Callers that run a function once per element / row.
_PER_ITEM_METHODS = frozenset(
    {"apply", "map", "applymap", "progress_apply", "progress_map", "transform", "agg"}
)
_PER_ITEM_BUILTINS = frozenset({"map", "filter", "sorted", "max", "min"})
_FEW = 8


class LookupRebuiltInLoop(Rule):
    """
    ## What it does
    Finds a lookup collection rebuilt from unchanged data on every iteration
    of a loop, or on every call of a function applied once per item:
    `x in set(stops)`, `w in stopwords.words("english")`, `x in df[c].unique()`,
    `list(d.keys())[i]`, `sorted(labels).index(v)`.

    ## Why is this bad
    Each evaluation copies (and for `sorted`, sorts; for NLTK's
    `stopwords.words`, reads a file) the whole collection to answer one
    question. Built once before the loop, each look-up costs only the look-up.
    The fixture pair (`w not in set(stops)` rebuilt per word, 50,000
    words, 200 stop words) measured 79x faster with the set hoisted on a CPU (AMD EPYC,
    `aiperf-lint verify fixtures/AIP305_lookup_rebuilt_in_loop --device cpu`).

    The rebuilt lookup often hides in a function applied per row
    (`df["text"].apply(clean)` where `clean` calls `stopwords.words(...)`):
    those are reported too. Not reported: `x in d.keys()` (a view, nothing is
    built), lookups built from the loop's own item (`set(row_words)`),
    literal collections, and loops over a few literal items.

    ## Example
    ```python
    for w in words:
        if w not in set(stops):
            kept.append(w)
    ```

    ## Use instead
    ```python
    stops_set = set(stops)
    for w in words:
        if w not in stops_set:
            kept.append(w)
    ```

    ## Fix safety
    Unsafe, offered inside a `for`/`while` loop when nothing the lookup reads
    is rebound or mutated in the loop: the collection is built once before
    the loop under a new name. It is then built even when the loop runs zero
    times, and a loop body that changes the data through another name (an
    alias) would see the stale copy.

    ## References
    - Python wiki, TimeComplexity: https://wiki.python.org/moin/TimeComplexity
    - ruff PERF401/PLR6201 do not cover rebuilt lookups; AIP303 reports a
      *named* list searched in a loop.
    """

    code = "AIP305"
    name = "lookup-rebuilt-in-loop"
    message = (
        "`{lookup}` is rebuilt {where}; build it once (before the loop or at module level) "
        "and reuse it"
    )
    fix_kind = "sometimes"
    triggers = (b"set(", b"list(", b"sorted(", b"tuple(", b"stopwords", b".unique()", b".tolist()")

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._per_item: set[str] | None = None
        self._locals: dict[int, set[str]] = {}

    def visit_Comparison(self, node: cst.Comparison) -> None:
        for target in node.comparisons:
            if isinstance(target.operator, (cst.In, cst.NotIn)):
                builder = self._builder(target.comparator, membership=True)
                if builder is not None:
                    self._check(target.comparator, builder)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if isinstance(node.value, cst.Call) and call_name(node.value) in {
            "list",
            "sorted",
            "tuple",
        }:
            if self._builder(node.value, membership=False) is not None:
                self._check(node.value, call_name(node.value))

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "index" and len(node.args) == 1:
            receiver = func.value
            if isinstance(receiver, cst.Call) and call_name(receiver) in {"list", "sorted"}:
                if self._builder(receiver, membership=False) is not None:
                    self._check(receiver, call_name(receiver))

    # ------------------------------------------------------------ what is a rebuilt lookup

    def _builder(self, expr: cst.BaseExpression, membership: bool) -> str | None:
        if not isinstance(expr, cst.Call) or any(a.star for a in expr.args):
            return None
        qname = self.ctx.qualified_name(expr.func) or ""
        if qname.endswith("stopwords.words") or dotted_name(expr.func) == "stopwords.words":
            return "stopwords"
        if qname.startswith("builtins.") and qname[9:] in _BUILDERS:
            args = positional_args(expr)
            if len(args) != 1 or len(expr.args) != 1:
                return None
            source = args[0].value
            if isinstance(source, (cst.List, cst.Tuple, cst.Set, cst.SimpleString)):
                return None  # a literal: small and cheap
            if membership and isinstance(source, (cst.ListComp, cst.GeneratorExp)):
                return None
            return qname[9:]
        if membership and isinstance(expr.func, cst.Attribute) and not expr.args:
            method = expr.func.attr.value
            if method in _PANDAS_BUILDERS and self.ctx.uses("pandas"):
                return method
        return None

    # ------------------------------------------------------------ where

    def _check(self, lookup: cst.Call, builder: str) -> None:
        loop = self._repeating_loop()
        if loop is not None:
            if loop.is_invariant(lookup) and not _reads_targets(lookup, loop.targets):
                self._report(lookup, "on every iteration", self._hoist_fix(lookup, builder, loop))
            return
        where = self._per_item_function(lookup)
        if where is not None:
            self._report(lookup, where, None)

    def _report(self, lookup: cst.Call, where: str, fix: Fix | None) -> None:
        text = cst.Module([]).code_for_node(lookup)
        self.report(lookup, self.message.format(lookup=text, where=where), fix)

    def _repeating_loop(self):
        for frame in reversed(self.ctx.loops):
            if _in_repeated_part(self.ctx, frame):
                return None if _few_iterations(frame) else frame
        return None

    def _per_item_function(self, lookup: cst.Call) -> str | None:
        """A def or lambda run once per element; the lookup reads nothing of its own."""
        for index in range(len(self.ctx.ancestors) - 1, -1, -1):
            node = self.ctx.ancestors[index]
            if isinstance(node, cst.Lambda):
                if names_in(lookup) & _params(node.params):
                    return None
                parent = self.ctx.ancestors[index - 2] if index >= 2 else None
                if isinstance(parent, cst.Call) and _per_item_caller(parent):
                    return f"for every element passed to `{call_name(parent)}`"
                return None
            if isinstance(node, cst.FunctionDef):
                name = node.name.value
                if names_in(lookup) & self._local_names(node):
                    return None
                if name in self._per_item_functions():
                    return f"on every call of `{name}`, which runs once per item"
                return None
        return None

    def _local_names(self, function: cst.FunctionDef) -> set[str]:
        key = id(function)
        if key not in self._locals:
            finder = _Assigned()
            walk.visit(function.body, finder)
            self._locals[key] = finder.names | _params(function.params)
        return self._locals[key]

    def _per_item_functions(self) -> set[str]:
        if self._per_item is None:
            finder = _PerItemUse()
            walk.visit(self.ctx.module, finder)
            self._per_item = finder.names
        return self._per_item

    # ------------------------------------------------------------ fix

    def _hoist_fix(self, lookup: cst.Call, builder: str, loop) -> Fix | None:
        node = loop.node
        if not isinstance(node, (cst.For, cst.While)) or not _inside(self.ctx, node.body):
            return None
        if not self._directly_in_block(node):
            return None
        name = _fresh_name(lookup, builder)
        if name is None or name in self._module_names():
            return None
        value = lookup
        if builder == "stopwords" and isinstance(self.ctx.parent(), cst.ComparisonTarget):
            value = cst.Call(cst.Name("set"), args=[cst.Arg(lookup)])
        hoisted = cst.SimpleStatementLine(
            body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=value)],
            leading_lines=node.leading_lines,
        )
        new_loop = node.deep_replace(lookup, cst.Name(name)).with_changes(leading_lines=())
        return Fix(
            "unsafe",
            {node: cst.FlattenSentinel([hoisted, new_loop])},
            description="hoist the lookup",
        )

    def _directly_in_block(self, node: cst.CSTNode) -> bool:
        chain = self.ctx.ancestors
        for index, ancestor in enumerate(chain):
            if ancestor is node and index:
                return isinstance(chain[index - 1], (cst.IndentedBlock, cst.Module))
        return False

    def _module_names(self) -> set[str]:
        names = self.__dict__.get("_names")
        if names is None:
            names = self._names = names_in(self.ctx.module)
        return names


def _in_repeated_part(ctx, frame) -> bool:
    """False for what runs once: a for loop's iterable, a comprehension's first iterable."""
    node = frame.node
    if isinstance(node, cst.While):
        return True
    once = node.iter if isinstance(node, cst.For) else node.for_in.iter
    return not any(ancestor is once for ancestor in ctx.ancestors)


def _few_iterations(frame) -> bool:
    iterable = frame.iter_expr
    if isinstance(iterable, (cst.List, cst.Tuple, cst.Set)):
        return len(iterable.elements) <= _FEW
    if isinstance(iterable, cst.Call) and call_name(iterable) == "range":
        args = positional_args(iterable)
        if len(args) == 1 and isinstance(args[0].value, cst.Integer):
            return int(args[0].value.value, 0) <= _FEW
    return False


def _reads_targets(lookup: cst.CSTNode, targets: set[str]) -> bool:
    return bool(names_in(lookup) & targets)


def _inside(ctx, block: cst.CSTNode) -> bool:
    return any(ancestor is block for ancestor in ctx.ancestors)


def _params(params: cst.Parameters) -> set[str]:
    found = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    for extra in (params.star_arg, params.star_kwarg):
        if isinstance(extra, cst.Param):
            found.add(extra.name.value)
    return found


def _fresh_name(lookup: cst.Call, builder: str) -> str | None:
    if builder == "stopwords":
        return "stop_words"
    args = positional_args(lookup)
    source = args[0].value if args else lookup.func
    if isinstance(source, cst.Call) and isinstance(source.func, cst.Attribute):
        source = source.func  # list(d.keys()) -> d_keys
    if isinstance(lookup.func, cst.Attribute):
        source = lookup.func.value
    dotted = dotted_name(source)
    if dotted is None:
        return None
    return f"{dotted.replace('.', '_')}_{builder}"


def _per_item_caller(call: cst.Call) -> bool:
    name = call_name(call)
    if isinstance(call.func, cst.Attribute):
        return name in _PER_ITEM_METHODS
    return name in _PER_ITEM_BUILTINS


class _Assigned(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self.names |= target_names(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.names |= target_names(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.names |= target_names(node.target)

    def visit_For(self, node: cst.For) -> None:
        self.names |= target_names(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self.names |= target_names(node.target)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self.names |= target_names(node.asname.name)


class _PerItemUse(cst.CSTVisitor):
    """Names of functions passed to apply/map, or called inside a loop or comprehension."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self._loops = 0

    def visit_Call(self, node: cst.Call) -> None:
        if _per_item_caller(node):
            args = positional_args(node)
            if args and isinstance(args[0].value, cst.Name):
                self.names.add(args[0].value.value)
        if self._loops and isinstance(node.func, cst.Name):
            self.names.add(node.func.value)

    def visit_For(self, node: cst.For) -> None:
        self._loops += 1

    def leave_For(self, node: cst.For) -> None:
        self._loops -= 1

    def visit_While(self, node: cst.While) -> None:
        self._loops += 1

    def leave_While(self, node: cst.While) -> None:
        self._loops -= 1

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._loops += 1

    def leave_CompFor(self, node: cst.CompFor) -> None:
        self._loops -= 1


VALID = [
    # built once before the loop
    """
stops_set = set(stops)
kept = [w for w in words if w not in stops_set]
""",
    # a view: nothing is built
    """
for k in keys:
    if k in d.keys():
        print(k)
""",
    # the set depends on the row: nothing to hoist
    """
for row in rows:
    row_words = row.split()
    if "x" in set(row_words):
        print(row)
""",
    # literal collections and loops over a few items
    """
for c in text:
    if c in set("aeiou"):
        n += 1
for split in ["train", "valid"]:
    if split in set(names):
        print(split)
""",
    # the data changes in the loop
    """
for x in stream:
    if x not in set(seen):
        seen.append(x)
""",
    # the loop's iterable is evaluated once
    """
for w in sorted(set(words)):
    print(w)
""",
    # a helper that is not run per item, and one that builds from its own argument
    """
from nltk.corpus import stopwords
def report():
    return len(stopwords.words("english"))
def keep(token, vocab):
    return token in set(vocab)
flags = [keep(t, v) for t, v in pairs]
""",
]

INVALID = [
    Invalid(
        """
kept = []
for w in words:
    if w not in set(stops):
        kept.append(w)
""",
        fixed="""
kept = []
stops_set = set(stops)
for w in words:
    if w not in stops_set:
        kept.append(w)
""",
        unsafe=True,
    ),
    # stopwords read per word in a comprehension
    Invalid(
        """
from nltk.corpus import stopwords
tokens = [w for w in text.split() if w not in stopwords.words("english")]
"""
    ),
    # a function applied once per row rebuilds the stopword list
    Invalid(
        """
import pandas as pd
from nltk.corpus import stopwords
def clean(text):
    return " ".join(w for w in text.split() if w not in stopwords.words("english"))
df = pd.read_csv("x.csv")
df["clean"] = df["text"].apply(clean)
"""
    ),
    # list(d.keys())[i] and sorted(labels).index(v) in loops
    Invalid(
        """
for i in range(len(preds)):
    name = list(class_map.keys())[preds[i]]
    idx = sorted(labels).index(targets[i])
""",
        count=2,
    ),
    # membership in a unique() array, in a lambda applied per element
    Invalid(
        """
import pandas as pd
df = pd.read_csv("x.csv")
seen = pd.read_csv("y.csv")
df["known"] = df["id"].map(lambda v: v in seen["id"].unique())
"""
    ),
]
