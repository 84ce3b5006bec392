"""Positions and fix diffs computed one top-level statement at a time.

LibCST gives positions by rendering the whole module with bookkeeping, and
`MetadataWrapper.resolve(PositionProvider)` first rebuilds the whole tree:
on a file with a single finding that cost more than parsing it, and a fix
cost another whole-tree rebuild plus a diff of the whole file. A report's
node lives in one top-level statement, so the module is rendered once, one
statement at a time, to learn where each statement starts; positions and
fix renders are then computed only for the statements that hold reported or
replaced nodes.

Everything here is checked against the source text: when the statements do
not render back to it exactly, `faithful` is False and callers use the
whole-module path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import libcst as cst
from libcst._position import CodeRange
from libcst.metadata.position_provider import PositionProvider, PositionProvidingCodegenState

from aiperf_lint.model import Fix, TextEdit

# The line breaks LibCST's position bookkeeping counts.
_NEWLINE = re.compile(r"\r\n?|\n")


class Layout:
    def __init__(self, module: cst.Module, text: str) -> None:
        self.module = module
        self.text = text
        render = module.code_for_node
        header = "".join(render(line) for line in module.header)
        self.codes = [render(stmt) for stmt in module.body]
        footer = "".join(render(line) for line in module.footer)
        self.index = {stmt: i for i, stmt in enumerate(module.body)}  # identity keys
        self.starts: list[int] = []  # character offset where each statement's text starts
        self.lines: list[int] = []  # 1-based line of that offset
        offset, line = len(header), 1 + _line_breaks(header)
        for code in self.codes:
            self.starts.append(offset)
            self.lines.append(line)
            offset += len(code)
            line += _line_breaks(code)
        self.body_end = offset
        rendered = header + "".join(self.codes) + footer
        if not module.has_trailing_newline and rendered.endswith(module.default_newline):
            rendered = rendered[: -len(module.default_newline)]
        elif module.has_trailing_newline and not rendered:
            rendered = module.default_newline
        self.faithful = rendered == text
        self._positions: dict[int, Mapping[cst.CSTNode, CodeRange]] = {}

    # ------------------------------------------------------------ positions

    def statement_positions(self, index: int) -> Mapping[cst.CSTNode, CodeRange]:
        """Positions of every node of top-level statement `index`, in file coordinates."""
        positions = self._positions.get(index)
        if positions is None:
            provider = PositionProvider()
            state = PositionProvidingCodegenState(
                default_indent=self.module.default_indent,
                default_newline=self.module.default_newline,
                provider=provider,
            )
            state.line = self.lines[index]  # statements start at column 0
            self.module.body[index]._codegen(state)
            positions = self._positions[index] = provider._computed
        return positions

    def statement_of(self, node: cst.CSTNode, *hints: cst.CSTNode | None) -> int | None:
        """Index of the top-level statement holding node; hints are tried first."""
        if node in self.index:
            return self.index[node]
        for hint in hints:
            index = self.index.get(hint) if hint is not None else None
            if index is not None and node in self.statement_positions(index):
                return index
        for index in range(len(self.codes)):
            if node in self.statement_positions(index):
                return index
        return None

    def position(self, node: cst.CSTNode, *hints: cst.CSTNode | None) -> CodeRange | None:
        index = self.statement_of(node, *hints)
        return None if index is None else self.statement_positions(index).get(node)

    # ------------------------------------------------------------ fixes

    def fix_edits(self, fix: Fix, *hints: cst.CSTNode | None) -> list[TextEdit] | None:
        """The text edits of a fix, rendering only the statements it changes.

        None when the fix touches something outside the module body (or the
        end of a file without a final newline): the caller renders the module.
        """
        from aiperf_lint.fixer import Replace, ensure_import

        touched: set[int] = set()
        for node in fix.replacements:
            index = self.statement_of(node, *hints)
            if index is None:
                return None
            touched.add(index)
        module = self.module
        body: list[cst.BaseStatement] = []
        for index, stmt in enumerate(module.body):
            if index in touched:
                alone = cst.Module(
                    body=[stmt],
                    default_indent=module.default_indent,
                    default_newline=module.default_newline,
                )
                body.extend(alone.visit(Replace(fix.replacements)).body)
            else:
                body.append(stmt)
        new_module = module.with_changes(body=body)
        for spec in fix.imports:
            new_module = ensure_import(new_module, spec)
        if new_module.header is not module.header or new_module.footer is not module.footer:
            return None
        return self._body_edits(new_module.body)

    def _body_edits(self, new_body: Sequence[cst.BaseStatement]) -> list[TextEdit] | None:
        """Edits turning the old body's text into new_body's: old statements are
        matched by identity, the runs between matches are re-rendered and diffed."""
        from aiperf_lint.fixer import diff_edits

        edits: list[TextEdit] = []
        pending: list[cst.BaseStatement] = []
        next_old = 0
        for stmt in [*new_body, None]:
            old_index = len(self.codes) if stmt is None else self.index.get(stmt)
            if old_index is None:
                pending.append(stmt)  # type: ignore[arg-type]
                continue
            if old_index < next_old:
                return None  # statements reordered: not something a fix does
            if old_index > next_old or pending:
                start = self._start(next_old)
                end = self._start(old_index)
                if end > len(self.text):
                    return None  # the region holds the popped final newline
                new_code = "".join(self.module.code_for_node(s) for s in pending)
                edits.extend(_shifted(diff_edits(self.text[start:end], new_code), start))
            pending = []
            next_old = old_index + 1
        return edits

    def _start(self, index: int) -> int:
        return self.starts[index] if index < len(self.starts) else self.body_end


def _line_breaks(code: str) -> int:
    return len(_NEWLINE.findall(code))


def _shifted(edits: list[TextEdit], offset: int) -> list[TextEdit]:
    return [TextEdit(e.start + offset, e.end + offset, e.content) for e in edits]
