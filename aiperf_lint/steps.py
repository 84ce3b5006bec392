"""Where a statement runs per step: shared by the per-step PyTorch rules (AIP112-AIP117)."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.semantic import Context, LoopFrame

_SCOPE_BOUNDARIES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


def step_loop(ctx: Context) -> LoopFrame | None:
    """The innermost training/inference loop around the current node, unless the
    node sits in an epoch loop's own body (around the batch loop: once per epoch)."""
    for frame in reversed(ctx.statement_loops()):
        if frame.is_training_loop():
            return None if frame.is_epoch_loop() else frame
    return None


def repeating_loop(ctx: Context) -> cst.CSTNode | None:
    """The innermost For/While whose body (or While test) holds the current node.

    A node in a `for` header's iterable runs once, so that loop is skipped and the
    search goes on outwards; a nested def/lambda/class ends the search.
    """
    ancestors = ctx.ancestors
    for index in range(len(ancestors) - 2, -1, -1):
        node, child = ancestors[index], ancestors[index + 1]
        if isinstance(node, _SCOPE_BOUNDARIES):
            return None
        if isinstance(node, cst.For) and child is node.body:
            return node
        if isinstance(node, cst.While) and (child is node.body or child is node.test):
            return node
    return None


def enclosing_ifs(ctx: Context) -> list[cst.If]:
    """`if` statements around the current node, innermost last, within the current def."""
    found = []
    for node in reversed(ctx.ancestors[:-1]):
        if isinstance(node, _SCOPE_BOUNDARIES):
            break
        if isinstance(node, cst.If):
            found.append(node)
    return list(reversed(found))
