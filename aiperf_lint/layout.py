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

import itertools
import re
from collections.abc import Mapping, Sequence

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst._position import CodeRange
from libcst.metadata import MetadataWrapper
from libcst.metadata.position_provider import (
    PositionProvider,
    PositionProvidingCodegenState,
    WhitespaceInclusivePositionProvider,
    WhitespaceInclusivePositionProvidingCodegenState,
)

from aiperf_lint import walk
from aiperf_lint.fixer import Replace, diff_edits, ensure_import
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
        self._spans: dict[int, Mapping[cst.CSTNode, CodeRange]] = {}
        self._line_starts: list[int] | None = None
        self._whole: Mapping[cst.CSTNode, CodeRange] | None = None

    # ------------------------------------------------------------ positions

    def statement_positions(self, index: int) -> Mapping[cst.CSTNode, CodeRange]:
        """Positions of every node of top-level statement `index`, in file coordinates."""
        positions = self._positions.get(index)
        if positions is None:
            positions = self._positions[index] = self._render_positions(
                index, PositionProvider(), PositionProvidingCodegenState
            )
        return positions

    def _text_spans(self, index: int) -> Mapping[cst.CSTNode, CodeRange]:
        """Whitespace-inclusive positions: exactly the text each node renders."""
        spans = self._spans.get(index)
        if spans is None:
            spans = self._spans[index] = self._render_positions(
                index,
                WhitespaceInclusivePositionProvider(),
                WhitespaceInclusivePositionProvidingCodegenState,
            )
        return spans

    def _render_positions(self, index: int, provider, state_type) -> Mapping:
        state = state_type(
            default_indent=self.module.default_indent,
            default_newline=self.module.default_newline,
            provider=provider,
        )
        state.line = self.lines[index]  # statements start at column 0
        self.module.body[index]._codegen(state)
        return provider._computed

    def _offset(self, line: int, column: int) -> int:
        if self._line_starts is None:
            self._line_starts = line_starts(self.text)
        return self._line_starts[line - 1] + column

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
        """Where node is; LibCST's whole-module view when the statements do not
        render back to the text (e.g. a lone "\\r"), or for the module itself,
        its header and its footer."""
        index = self.statement_of(node, *hints) if self.faithful else None
        if index is None:
            return self._whole_module_positions().get(node)
        return self.statement_positions(index).get(node)

    def _whole_module_positions(self) -> Mapping[cst.CSTNode, CodeRange]:
        if self._whole is None:
            wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
            self._whole = wrapper.resolve(PositionProvider)
        return self._whole

    # ------------------------------------------------------------ fixes

    def fix_edits(self, fix: Fix, *hints: cst.CSTNode | None) -> list[TextEdit] | None:
        """The text edits of a fix, rendering only the statements it changes.

        None when the fix touches something outside the module body (or the
        end of a file without a final newline): the caller renders the module.
        """
        for local in (self._expression_edits, self._nested_statement_edits):
            edits = local(fix, hints)
            if edits is not None:
                return edits
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

    def _expression_edits(
        self, fix: Fix, hints: Sequence[cst.CSTNode | None]
    ) -> list[TextEdit] | None:
        """Splice the rendered replacement over the replaced expression's text.

        An expression needs no statement re-rendered: only the indentation of
        the blocks around it (continuation lines inside brackets may carry it),
        so a fix inside a 400 KB class costs the size of the expression.
        """
        pairs = list(fix.replacements.items())
        if not pairs or not all(
            isinstance(old, cst.BaseExpression) and isinstance(new, cst.BaseExpression)
            for old, new in pairs
        ):
            return None
        edits: list[TextEdit] = []
        spans: list[tuple[int, int]] = []
        for old, new in pairs:
            index = self.statement_of(old, *hints)
            span = self._text_spans(index).get(old) if index is not None else None
            path = _path_to(self.module.body[index], old) if span is not None else None
            if path is None:
                return None
            indents = _block_indents(path, self.module.default_indent)
            start = self._offset(span.start.line, span.start.column)
            end = self._offset(span.end.line, span.end.column)
            if self._render(old, indents) != self.text[start:end]:
                return None
            spans.append((start, end))
            new_code = self._render(new, indents)
            edits.extend(_shifted(diff_edits(self.text[start:end], new_code), start))
        spans.sort()
        if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
            return None  # nested replacements: the outer one wins, as in a transform
        return self._with_imports(edits, spans, fix)

    def _nested_statement_edits(
        self, fix: Fix, hints: Sequence[cst.CSTNode | None]
    ) -> list[TextEdit] | None:
        """Re-render only the innermost statement of an indented block that holds
        every replaced node, with the indentation of the blocks around it."""
        keys = list(fix.replacements)
        if not keys:
            return None
        index = self.statement_of(keys[0], *hints)
        if index is None:
            return None
        top = self.module.body[index]
        regions = None
        for key in keys:
            path = _path_to(top, key)
            if path is None:
                return None
            found = _enclosing_statements(path, fix.replacements[key], self.module.default_indent)
            regions = found if regions is None else _shared_regions(regions, found)
        if not regions:
            return None  # only the top-level statement holds them all
        region, indents = regions[-1]
        span = self._text_spans(index).get(region)
        if span is None:
            return None
        start = self._offset(span.start.line, span.start.column)
        end = self._offset(span.end.line, span.end.column)
        if self._render(region, indents) != self.text[start:end]:
            return None
        replaced = cst.Module(body=[region]).visit(Replace(fix.replacements)).body
        new_code = "".join(self._render(stmt, indents) for stmt in replaced)
        if not new_code.strip():
            return None  # the block may be left empty: LibCST renders `pass` there
        edits = _shifted(diff_edits(self.text[start:end], new_code), start)
        return self._with_imports(edits, [(start, end)], fix)

    def _render(self, stmt: cst.CSTNode, indents: tuple[str, ...]) -> str:
        state = CodegenState(
            default_indent=self.module.default_indent,
            default_newline=self.module.default_newline,
        )
        state.indent_tokens.extend(indents)
        stmt._codegen(state)
        return "".join(state.tokens)

    def _with_imports(
        self, edits: list[TextEdit], spans: list[tuple[int, int]], fix: Fix
    ) -> list[TextEdit] | None:
        if fix.imports:
            module = self.module
            for spec in fix.imports:
                module = ensure_import(module, spec)
            added = self._body_edits(module.body)
            if added is None or any(
                e.start <= end and start <= e.end for e in added for start, end in spans
            ):
                return None  # an import next to a replaced node: render the statement
            edits.extend(added)
        return edits

    def _body_edits(self, new_body: Sequence[cst.BaseStatement]) -> list[TextEdit] | None:
        """Edits turning the old body's text into new_body's: old statements are
        matched by identity, the runs between matches are re-rendered and diffed."""
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


class _Found(Exception):
    pass


def _path_to(root: cst.CSTNode, target: cst.CSTNode) -> list[cst.CSTNode] | None:
    """root ... target, by a read-only walk that stops at the target."""
    stack: list[cst.CSTNode] = []

    def enter(node: cst.CSTNode) -> None:
        stack.append(node)
        if node is target:
            raise _Found

    def leave(node: cst.CSTNode) -> None:
        stack.pop()

    skip = walk.TRIVIA - {type(target)}
    try:
        walk.traverse(root, enter, leave, skip=skip)
    except _Found:
        return stack
    return None


def _enclosing_statements(
    path: list[cst.CSTNode], replacement: object, default_indent: str
) -> list[tuple[cst.CSTNode, tuple[str, ...]]]:
    """(statement, indentation of the blocks around it) for each statement on the
    path that sits directly in an indented block, outermost first. The replaced
    node itself counts only when it is replaced by one statement."""
    found: list[tuple[cst.CSTNode, tuple[str, ...]]] = []
    indents: list[str] = []
    for parent, node in itertools.pairwise(path):
        if isinstance(parent, cst.IndentedBlock):
            indents.append(default_indent if parent.indent is None else parent.indent)
            if node is path[-1] and not isinstance(replacement, cst.BaseStatement):
                break
            found.append((node, tuple(indents)))
    return found


def _block_indents(path: list[cst.CSTNode], default_indent: str) -> tuple[str, ...]:
    return tuple(
        default_indent if node.indent is None else node.indent
        for node in path
        if isinstance(node, cst.IndentedBlock)
    )


def _shared_regions(a: list, b: list) -> list:
    common = []
    for x, y in zip(a, b, strict=False):
        if x[0] is not y[0]:
            break
        common.append(x)
    return common


def line_starts(text: str) -> list[int]:
    """Offset of the start of each line (index 0 is line 1)."""
    return [0] + [m.end() for m in _NEWLINE.finditer(text)]


def _line_breaks(code: str) -> int:
    return len(_NEWLINE.findall(code))


def _shifted(edits: list[TextEdit], offset: int) -> list[TextEdit]:
    return [TextEdit(e.start + offset, e.end + offset, e.content) for e in edits]
