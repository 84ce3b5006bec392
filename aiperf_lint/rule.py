"""The base class every rule in `rules/` derives from.

A rule is a small visitor: it declares `visit_<Node>` / `leave_<Node>` methods
like a LibCST visitor; the engine batches all enabled rules into one traversal
(see `engine._Dispatcher`). Rules read shared facts from `self.ctx`
(`semantic.Context`): qualified names, the kind of an expression, loop and
function context. They never re-derive those themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import libcst as cst

from aiperf_lint.model import Fix

if TYPE_CHECKING:
    from aiperf_lint.semantic import Context

FixKind = Literal["none", "safe", "unsafe", "sometimes"]


@dataclass(frozen=True)
class Invalid:
    """An example the rule must report; `fixed` is the expected `--fix` output.

    `unsafe=True` means `fixed` is produced with `--unsafe-fixes`.
    `count` is how many findings of this rule the snippet must produce.
    """

    code: str
    fixed: str | None = None
    unsafe: bool = False
    count: int = 1


@dataclass
class Report:
    node: cst.CSTNode
    message: str
    fix: Fix | None
    statement: cst.CSTNode | None
    top: cst.CSTNode | None = None  # the top-level statement being visited when reported


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    message: ClassVar[str]  # default message: says what to do instead
    default_enabled: ClassVar[bool] = True
    fix_kind: ClassVar[FixKind] = "none"
    # Byte strings of which at least one must occur in a file for the rule to
    # possibly match; files without any trigger of any enabled rule are never parsed.
    triggers: ClassVar[tuple[bytes, ...]] = ()
    # Further necessary conditions: each group needs at least one match too
    # (e.g. `((b"torch",), (b"cuda", b"device"))` for a GPU-only rule).
    trigger_all: ClassVar[tuple[tuple[bytes, ...], ...]] = ()
    VALID: ClassVar[list[str]] = []
    INVALID: ClassVar[list[Invalid]] = []

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.reports: list[Report] = []

    def report(self, node: cst.CSTNode, message: str | None = None, fix: Fix | None = None) -> None:
        self.reports.append(
            Report(
                node,
                message or self.message,
                fix,
                self.ctx.current_statement(),
                self.ctx.top_statement,
            )
        )

    @classmethod
    def examples(cls) -> tuple[list[str], list[Invalid]]:
        """VALID / INVALID snippets: class attributes, or module-level lists."""
        import sys

        module = sys.modules[cls.__module__]
        valid = cls.VALID or getattr(module, "VALID", [])
        invalid = cls.INVALID or getattr(module, "INVALID", [])
        return list(valid), list(invalid)

    @classmethod
    def docs(cls) -> str:
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        """The first paragraph of the docs' 'What it does' section, on one line."""
        lines = [ln.strip() for ln in cls.docs().splitlines()]
        for i, ln in enumerate(lines):
            if ln.lower().startswith("## what it does"):
                paragraph: list[str] = []
                for nxt in lines[i + 1 :]:
                    if not nxt and paragraph:
                        break
                    if nxt:
                        paragraph.append(nxt)
                return " ".join(paragraph)
        return cls.message
