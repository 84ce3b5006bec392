"""`walk` visits exactly the nodes LibCST's own traversal visits, in the same order."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from aiperf_lint import walk

SNIPPETS = [
    """\
    from __future__ import annotations
    from .pkg import *
    from ..a.b import (c as d, e)
    import os.path as osp, sys
    """,
    """\
    @decorator(arg=1)
    async def f(a, /, b: int = 2, *args, c, d=3, **kw) -> list[int]:
        async with open(x) as (h, g), other():
            async for i in aiter():
                yield await g(i)
        return [j ** 2 for j in range(10) if j % 2 if j > 1]
    """,
    """\
    class C(Base, metaclass=Meta):
        x: int = 1
        def m(self):
            try:
                pass
            except* ValueError as e:
                raise
            else:
                del self.y
            finally:
                global q
    """,
    """\
    match command.split():
        case [action, *rest] if action != "q":
            print(f"{action!r:>{width}} {rest=}")
        case {"k": 1, **others}:
            pass
        case Point(x=0) | None:
            pass
    """,
    """\
    x = lambda a, *b: (a if b else not a) @ m
    y = {**d, "k": [1, 2, *z]}; z = {s for s in t}
    w = a[1:2, ::3, ...] < b <= c is not d not in e
    while (n := n - 1) > 0:
        continue
    else:
        nonlocal_thing = ~n >> 2
    assert x, "m"
    type Alias[T] = list[T]
    """,
]


class _Recorder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.events.append(("enter", type(node).__name__))
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.events.append(("leave", type(original_node).__name__))


def _sources() -> list[str]:
    here = Path(__file__).resolve().parent.parent
    files = sorted((here / "aiperf_lint").glob("*.py"))[:6]
    return [textwrap.dedent(s) for s in SNIPPETS] + [f.read_text() for f in files]


@pytest.mark.parametrize("source", _sources())
def test_same_nodes_in_the_same_order_as_libcst(source):
    module = cst.parse_module(source)
    theirs, ours = _Recorder(), _Recorder()
    module.visit(theirs)
    walk.traverse(module, ours.on_visit, ours.on_leave)
    assert ours.events == theirs.events


@pytest.mark.parametrize("source", [textwrap.dedent(s) for s in SNIPPETS])
def test_skipping_trivia_drops_only_trivia(source):
    module = cst.parse_module(source)
    theirs, ours = _Recorder(), _Recorder()
    module.visit(theirs)
    walk.traverse(module, ours.on_visit, ours.on_leave, skip=walk.TRIVIA)
    trivia = {t.__name__ for t in walk.TRIVIA}
    assert ours.events == [e for e in theirs.events if e[1] not in trivia]
    assert len(ours.events) < len(theirs.events)


class _Names(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: list[str] = []
        self.left_defs = 0

    def visit_Name(self, node: cst.Name) -> None:
        self.names.append(node.value)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # prune: names inside defs are not collected

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.left_defs += 1


def test_visit_is_a_drop_in_for_read_only_visitors():
    module = cst.parse_module("a = b\ndef f(c):\n    return d\ne(g)\n")
    theirs, ours = _Names(), _Names()
    module.visit(theirs)
    walk.visit(module, ours)
    assert ours.names == theirs.names == ["a", "b", "e", "g"]
    assert ours.left_defs == theirs.left_defs == 1


def test_find_all():
    expr = cst.parse_expression("(i + 1) % n == 0 and 'x' % y")
    found = walk.find_all(expr, cst.BinaryOperation)
    assert [type(n.operator).__name__ for n in found] == ["Modulo", "Add", "Modulo"]
