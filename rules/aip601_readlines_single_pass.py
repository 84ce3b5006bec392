"""AIP601 file-materialised-to-iterate."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.patterns import is_simple_reference
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import FILE, call_name, names_in, positional_args

# Receivers of `.readlines()` that are surely not file-like.
_NOT_FILES = frozenset(
    [
        "DataFrame",
        "Series",
        "Tensor",
        "Module",
        "ndarray",
        "list",
        "tuple",
        "set",
        "dict",
        "str",
        "number",
        "other",
    ]
)


class FileMaterialisedToIterate(Rule):
    """
    ## What it does
    Finds files read whole into a list of lines only to be iterated once:
    `for line in f.readlines():`, `lines = f.readlines()` whose only use is
    one `for` loop or comprehension over `lines`, and the same with
    `f.read().splitlines()` / `f.read().split("\\n")`.

    ## Why is this bad
    The list holds every line of the file at once, so peak memory grows with
    the file size; iterating the file object reads it in buffered chunks and
    keeps memory flat. Measured on a 200 MiB, 2.69M-line file on a 2-core CPU
    (`../shared/notes/speedups-cpu.md`, pair 11): peak memory 364 MB with
    `readlines()` against about 22 kB iterating the file (tracemalloc), and
    1.39x faster. The memory is the main win.

    Not reported: `readlines(hint)` (reads only the first lines), lists used
    for anything besides one pass — `len(lines)`,
    indexing, slicing, sorting, returning or storing them, a second loop, or a
    loop nested in another loop (which iterates the list many times); and
    `.read().splitlines()` on objects not known to be files.

    ruff's FURB129 (`readlines-in-for`) already reports the exact form
    `for line in f.readlines():`; this rule reports it too (for users without
    ruff) and adds the assigned-then-iterated and the splitting forms.

    ## Example
    ```python
    with open(path) as f:
        lines = f.readlines()
        for line in lines:
            process(line)
    ```

    ## Use instead
    ```python
    with open(path) as f:
        for line in f:
            process(line)
    ```

    ## Fix safety
    Safe for the `readlines()` forms, which yield the same lines (line endings
    included) in the same order: `for line in f.readlines():` becomes
    `for line in f:`, and `lines = f.readlines()` directly followed by the one
    statement iterating `lines` loses the assignment and iterates the file.
    No fix when the file object is used inside the loop, when the iterating statement is not the next one in
    the same block (e.g. after the `with` block closed the file: move the loop
    into the block by hand), or when a comment would be lost. If the loop
    `break`s early, the file position afterwards differs (`readlines()` had
    read to the end). The splitting forms are reported without a fix: they
    drop the line endings and `splitlines()` also splits on other separators,
    so `for line in f:` yields different strings (use `line.rstrip("\\n")`).

    ## References
    - Python tutorial, "Methods of File Objects" ("for reading lines from a
      file, you can loop over the file object. This is memory efficient, fast"):
      https://docs.python.org/3/tutorial/inputoutput.html#methods-of-file-objects
    - ruff FURB129 `readlines-in-for`: https://docs.astral.sh/ruff/rules/readlines-in-for/
    """

    code = "AIP601"
    name = "file-materialised-to-iterate"
    message = (
        "`{call}` builds a list of every line only to iterate it once; "
        "iterate the file object (`for line in f:`) to keep memory flat"
    )
    fix_kind = "sometimes"
    triggers = (b"readlines", b"splitlines", b".split(")

    def visit_For(self, node: cst.For) -> None:
        self._check_iterable(node.iter, node.body)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._check_iterable(node.iter, self.ctx.parent())

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return
        read = self._line_list_call(node.value)
        if read is None:
            return
        name = node.targets[0].target.value
        scope = self._scope_node()
        if scope is None:
            return
        use = _single_pass_use(scope, node, name)
        if use is None:
            return
        fix = self._assigned_fix(node, read, use) if read[1] else None
        self.report(node.value, self.message.format(call=read[2]), fix)

    # ------------------------------------------------------------ shapes

    def _line_list_call(self, expr: cst.BaseExpression):
        """(file expression, is-readlines, text) for `F.readlines()` / `F.read().splitlines()`."""
        if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Attribute):
            return None
        method = expr.func.attr.value
        receiver = expr.func.value
        if method == "readlines":
            if expr.args or self.ctx.kind_of(receiver) in _NOT_FILES:
                return None
            return receiver, True, "readlines()"
        if method not in {"splitlines", "split"} or not _splits_lines(expr):
            return None
        if not (isinstance(receiver, cst.Call) and call_name(receiver) == "read"):
            return None
        if receiver.args or not isinstance(receiver.func, cst.Attribute):
            return None
        file = receiver.func.value
        if self.ctx.kind_of(file) != FILE:
            return None
        return file, False, f"read().{method}(...)"

    def _check_iterable(self, iterable: cst.BaseExpression, body: cst.CSTNode) -> None:
        """`for line in F.readlines():` (body: what runs per line)."""
        read = self._line_list_call(iterable)
        if read is None:
            return
        file, is_readlines, text = read
        fix = None
        if is_readlines and self._fixable_file(file):
            # the file itself used per line (tell, seek, another read): keep the list
            if not _mentions(body, _file_names(file), skip=iterable):
                fix = Fix("safe", {iterable: file}, description="iterate the file object")
        self.report(iterable, self.message.format(call=text), fix)

    def _fixable_file(self, file: cst.BaseExpression) -> bool:
        return is_simple_reference(file) or (
            isinstance(file, cst.Call) and self.ctx.qualified_name(file.func) == "builtins.open"
        )

    def _scope_node(self) -> cst.CSTNode | None:
        frame = self.ctx.current_function()
        if frame is not None:
            return frame.node.body
        if self.ctx.current_class() is not None:
            return None
        return self.ctx.module

    def _assigned_fix(self, assign: cst.Assign, read, use: cst.CSTNode) -> Fix | None:
        """`lines = f.readlines()` + next statement iterating `lines` -> iterate `f`."""
        file = read[0]
        if not self._fixable_file(file):
            return None
        chain = self.ctx.ancestors
        line = chain[-2] if len(chain) >= 2 else None
        block = chain[-3] if len(chain) >= 3 else None
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return None
        if not isinstance(block, (cst.IndentedBlock, cst.Module)):
            return None
        statements = list(block.body)
        index = next(i for i, stmt in enumerate(statements) if stmt is line)
        following = statements[index + 1] if index + 1 < len(statements) else None
        if following is None or not _contains(following, use):
            return None
        if _has_comment(line) or names_in(following) & _file_names(file):
            return None
        new_following = following.deep_replace(use, file)
        new_following = new_following.with_changes(
            leading_lines=(*line.leading_lines, *following.leading_lines)
        )
        return Fix(
            "safe",
            {line: cst.RemovalSentinel.REMOVE, following: new_following},
            description="iterate the file object",
        )


def _splits_lines(call: cst.Call) -> bool:
    """`.splitlines()` (no keepends) or `.split("\\n")`."""
    if call.func.attr.value == "splitlines":
        return not call.args
    args = positional_args(call)
    if len(call.args) != 1 or len(args) != 1:
        return False
    sep = args[0].value
    return isinstance(sep, cst.SimpleString) and sep.evaluated_value == "\n"


def _mentions(node: cst.CSTNode, names: set[str], skip: cst.CSTNode) -> bool:
    """Does node read any of `names` outside the subtree `skip`?"""
    finder = _NameFinder(names, skip)
    node.visit(finder)
    return finder.found


class _NameFinder(cst.CSTVisitor):
    def __init__(self, names: set[str], skip: cst.CSTNode) -> None:
        self.names = names
        self.skip = skip
        self.found = False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if node is self.skip or self.found:
            return False
        if isinstance(node, cst.Name) and node.value in self.names:
            self.found = True
        return True


def _file_names(file: cst.BaseExpression) -> set[str]:
    return names_in(file) - {"open"}


def _has_comment(line: cst.SimpleStatementLine) -> bool:
    if any(empty.comment is not None for empty in line.leading_lines):
        return False  # moved along with the statement below
    return line.trailing_whitespace.comment is not None


def _contains(node: cst.CSTNode, inner: cst.CSTNode) -> bool:
    finder = _Find(inner)
    node.visit(finder)
    return finder.found


class _Find(cst.CSTVisitor):
    def __init__(self, inner: cst.CSTNode) -> None:
        self.inner = inner
        self.found = False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if node is self.inner:
            self.found = True
        return not self.found


def _binds_locally(node: cst.FunctionDef | cst.Lambda, name: str) -> bool:
    """A parameter, or an assignment inside the function, binds `name` locally."""
    params = node.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    if any(p.name.value == name for p in every):
        return True
    if isinstance(node, cst.Lambda):
        return False
    finder = _LocalBinding(name)
    node.body.visit(finder)
    return finder.assigned and not finder.declared


class _LocalBinding(cst.CSTVisitor):
    def __init__(self, name: str) -> None:
        self.name = name
        self.assigned = False
        self.declared = False  # global / nonlocal: not a local after all

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        if isinstance(node.target, cst.Name) and node.target.value == self.name:
            self.assigned = True

    def visit_Global(self, node: cst.Global) -> None:
        self.declared |= any(n.name.value == self.name for n in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        self.declared |= any(n.name.value == self.name for n in node.names)


def _single_pass_use(scope: cst.CSTNode, assign: cst.Assign, name: str) -> cst.Name | None:
    """The one `for _ in <name>` iterating the list once; None for any other use."""
    walker = _LineListUses(assign, name)
    scope.visit(walker)
    if walker.other or len(walker.iterations) != 1:
        return None
    use, loops = walker.iterations[0]
    return use if loops == walker.assign_loops else None


class _LineListUses(cst.CSTVisitor):
    """Every occurrence of the list's name, with the loops around it."""

    def __init__(self, assign: cst.Assign, name: str) -> None:
        self.assign = assign
        self.name = name
        self.loops: list[cst.CSTNode] = []
        self.assign_loops: tuple[int, ...] | None = None
        self.iterations: list[tuple[cst.Name, tuple[int, ...]]] = []
        self.other = 0

    def _loop_ids(self) -> tuple[int, ...]:
        return tuple(id(loop) for loop in self.loops)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if node is self.assign:
            self.assign_loops = self._loop_ids()
            node.value.visit(self)
            return False
        if isinstance(node, cst.For) and self._is_list(node.iter):
            self._iteration(node.iter)
            node.target.visit(self)
            self.loops.append(node)
            node.body.visit(self)
            if node.orelse is not None:
                node.orelse.visit(self)
            self.loops.pop()
            return False
        if isinstance(node, (cst.For, cst.While)):
            self.loops.append(node)  # popped in on_leave
            return True
        if isinstance(node, (cst.FunctionDef, cst.Lambda)) and _binds_locally(node, self.name):
            return False  # another function's own variable of the same name
        if isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            return self._comprehension(node)
        if isinstance(node, cst.Attribute):
            node.value.visit(self)
            return False
        if isinstance(node, cst.Arg):
            node.value.visit(self)
            return False
        if isinstance(node, cst.Name) and node.value == self.name:
            self.other += 1
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if (
            isinstance(original_node, (cst.For, cst.While))
            and self.loops
            and self.loops[-1] is original_node
        ):
            self.loops.pop()

    def _is_list(self, expr: cst.BaseExpression) -> bool:
        return isinstance(expr, cst.Name) and expr.value == self.name

    def _iteration(self, use: cst.Name) -> None:
        if self.assign_loops is None:
            self.other += 1  # used before the assignment
        else:
            self.iterations.append((use, self._loop_ids()))

    def _comprehension(self, node) -> bool:
        first = node.for_in
        if self._is_list(first.iter):
            self._iteration(first.iter)
            self.loops.append(node)
            first.target.visit(self)
            for cond in first.ifs:
                cond.visit(self)
            if first.inner_for_in is not None:
                first.inner_for_in.visit(self)
            for part in ("elt", "key", "value"):
                child = getattr(node, part, None)
                if child is not None:
                    child.visit(self)
            self.loops.pop()
            return False
        self.loops.append(node)
        for child in node.children:
            child.visit(self)
        self.loops.pop()
        return False


VALID = [
    # iterating the file object
    """
with open("data.txt") as f:
    for line in f:
        process(line)
""",
    # the list is used for more than one pass
    """
with open("data.txt") as f:
    lines = f.readlines()
print(len(lines))
for line in lines:
    process(line)
""",
    """
with open("data.txt") as f:
    lines = f.readlines()
header = lines[0]
for line in lines[1:]:
    process(line)
""",
    """
def load(path):
    with open(path) as f:
        lines = f.readlines()
    return lines
""",
    # iterated twice
    """
with open("data.txt") as f:
    lines = f.readlines()
for line in lines:
    count(line)
for line in lines:
    process(line)
""",
    # iterated once per epoch: many passes
    """
with open("data.txt") as f:
    lines = f.readlines()
for epoch in range(10):
    for line in lines:
        train(line)
""",
    """
lines = open("q.txt").readlines()
for doc in docs:
    hits = [l for l in lines if l in doc]
""",
    # sorted, counted
    """
lines = open("data.txt").readlines()
for line in sorted(lines):
    print(line)
""",
    # readlines on something that is not a file
    """
class Doc:
    def readlines(self):
        return []
d = Doc()
for line in d.readlines():
    print(line)
""",
    # splitting a string that is not read from a file
    """
for line in text.splitlines():
    print(line)
""",
    """
for line in response.read().splitlines():
    print(line)
""",
    # split on something else
    """
with open("data.csv") as f:
    for field in f.read().split(","):
        print(field)
""",
]

INVALID = [
    Invalid(
        """
with open("data.txt") as f:
    for line in f.readlines():
        process(line)
""",
        fixed="""
with open("data.txt") as f:
    for line in f:
        process(line)
""",
    ),
    Invalid(
        """
def count_words(path):
    total = 0
    with open(path) as f:
        # read everything
        lines = f.readlines()
        for line in lines:
            total += len(line.split())
    return total
""",
        fixed="""
def count_words(path):
    total = 0
    with open(path) as f:
        # read everything
        for line in f:
            total += len(line.split())
    return total
""",
    ),
    # comprehension over an inline open(...).readlines()
    Invalid(
        """
import json
records = [json.loads(l) for l in open("x.jsonl").readlines()]
""",
        fixed="""
import json
records = [json.loads(l) for l in open("x.jsonl")]
""",
    ),
    # assigned, then one comprehension in the next statement
    Invalid(
        """
import json
with open("x.jsonl") as fh:
    rows = fh.readlines()
    records = [json.loads(r) for r in rows]
""",
        fixed="""
import json
with open("x.jsonl") as fh:
    records = [json.loads(r) for r in fh]
""",
    ),
    # the loop is after the with block (the file is closed there): reported, no fix
    Invalid(
        """
with open("data.txt") as f:
    lines = f.readlines()
for line in lines:
    process(line)
"""
    ),
    # another function's own `lines` does not count as a use
    Invalid(
        """
def other():
    lines = []
    return lines

for line in open("data.txt").readlines():
    print(line)
lines = open("b.txt").readlines()
for line in lines:
    print(line)
""",
        fixed="""
def other():
    lines = []
    return lines

for line in open("data.txt"):
    print(line)
for line in open("b.txt"):
    print(line)
""",
        count=2,
    ),
    # splitting forms: reported, no fix
    Invalid(
        """
with open("data.txt") as f:
    for line in f.read().splitlines():
        process(line)
"""
    ),
    Invalid(
        """
def parse(path):
    f = open(path)
    rows = f.read().split("\\n")
    return [r.upper() for r in rows]
"""
    ),
    # the file is used inside the loop: reported, no fix
    Invalid(
        """
with open("data.txt") as f:
    for line in f.readlines():
        print(line, f.tell())
"""
    ),
]
