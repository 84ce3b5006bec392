"""Split very large files into pieces analysed one at a time (bounded memory).

LibCST's tree costs 300-1,400 bytes of memory per source byte: torch's 1.4 MB
`common_methods_invocations.py` peaks at 785 MB just to parse, a 500 KB table
of literals at 680 MB. Sources over BIG_FILE_CHARS are cut with `ast` (a few
times cheaper than LibCST, and freed before LibCST runs) into pieces of whole
top-level statements; each piece is parsed, analysed and released before the
next, with the module's imports as a shared prelude.

- A large statement of pure data (no call, lambda, comprehension, await...:
  nothing a rule reports on) is not parsed at all.
- A larger list/tuple of calls (`op_db = [OpInfo(...), ...]`) is cut between
  elements that sit on their own lines; each run is parsed as `[\\n<lines>]\\n`.

Facts that cross pieces (a def in one piece called in another, a class used
far from its definition) are not seen in such files; findings depend only on
the piece that holds them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field, replace

from aiperf_lint.layout import line_starts
from aiperf_lint.model import FileError, Finding, TextEdit

BIG_FILE_CHARS = 256_000
PIECE_CHARS = 64_000
INERT_STATEMENT_CHARS = 16_000

_WRAP_OPEN, _WRAP_CLOSE = "[\n", "]\n"
_ACTIVE = (
    ast.Call,
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.Await,
    ast.Yield,
    ast.YieldFrom,
    ast.NamedExpr,
)


@dataclass
class Piece:
    text: str  # parseable on its own
    line_shift: int  # file line = piece line + line_shift
    offset: int  # file offset = piece offset + offset
    wrapped: bool = False  # text is _WRAP_OPEN + file lines + _WRAP_CLOSE
    statement: tuple[int, int] = (0, 0)  # wrapped: file lines of the statement cut up

    def finding(self, finding: Finding, file_text: str) -> Finding:
        edits = [self._edit(edit, file_text) for edit in finding.edits]
        statement_lines = (
            finding.statement_line + self.line_shift,
            finding.statement_end_line + self.line_shift,
        )
        if self.wrapped and finding.statement_line == 1:  # the wrapper stands for the statement
            statement_lines = self.statement
        shifted = replace(
            finding,
            line=finding.line + self.line_shift,
            end_line=finding.end_line + self.line_shift,
            statement_line=statement_lines[0],
            statement_end_line=statement_lines[1],
            edits=[e for e in edits if e is not None],
        )
        if None in edits:  # the fix reaches the wrapper brackets: drop it whole
            shifted.edits, shifted.fix_applicability = [], None
            shifted.message += " (fix unavailable in this part of a very large file)"
        return shifted

    def _edit(self, edit: TextEdit, file_text: str) -> TextEdit | None:
        if self.wrapped:
            inner_end = len(self.text) - len(_WRAP_CLOSE)
            if edit.start < len(_WRAP_OPEN) or edit.end > inner_end:
                return None
        return TextEdit(edit.start + self.offset, edit.end + self.offset, edit.content).located(
            file_text
        )

    def error(self, error: FileError) -> FileError:
        line = error.line + self.line_shift if error.line is not None else None
        return replace(error, line=line)


@dataclass
class Split:
    pieces: list[Piece] = field(default_factory=list)
    prelude: str = ""  # the module's top-level import statements, for every piece


def split(text: str) -> Split | None:
    """Pieces of a big source, or None when `ast` cannot parse it (the caller
    then parses it whole and reports the error with LibCST's view)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    starts = line_starts(text)  # the line breaks ast and LibCST count
    statements = _statement_lines(tree.body)
    result = Split(prelude=_prelude(text, starts, tree.body))
    piece_start: int | None = None  # first line of the piece being gathered
    for index, (first, last, members) in enumerate(statements):
        begin = starts[first - 1]
        end = starts[last] if last < len(starts) else len(text)
        alone = members[0] if len(members) == 1 else None  # not sharing a line
        big = end - begin > INERT_STATEMENT_CHARS
        if big and alone is not None and _is_inert(alone):
            runs = None  # pure data: not parsed at all
        elif alone is not None and end - begin > PIECE_CHARS:
            runs = _element_runs(alone, text, starts)
            if runs is None:  # one big statement that cannot be cut: it joins a piece
                runs = []
        else:
            runs = []
        if runs is None or runs:
            if piece_start is not None:
                result.pieces.append(_plain(text, starts, piece_start, begin))
            piece_start = None
            if runs:
                result.pieces.extend(_wrapped(text, starts, run, (first, last)) for run in runs)
            continue
        if piece_start is None:
            piece_start = first if result.pieces or index else 1
        elif begin - starts[piece_start - 1] > PIECE_CHARS:
            result.pieces.append(_plain(text, starts, piece_start, begin))
            piece_start = first
    if piece_start is not None:
        result.pieces.append(_plain(text, starts, piece_start, len(text)))
    return result


def _statement_lines(body: list[ast.stmt]) -> list[tuple[int, int, list[ast.stmt]]]:
    """(first line, last line, statements) of each top-level statement; statements
    sharing a line (`a = 1; b = 2`) are merged so that every piece starts a line."""
    spans: list[tuple[int, int, list[ast.stmt]]] = []
    for stmt in body:
        decorators = getattr(stmt, "decorator_list", None) or []
        first = min([stmt.lineno, *(d.lineno for d in decorators)])
        last = stmt.end_lineno or stmt.lineno
        if spans and first <= spans[-1][1]:
            previous_first, previous_last, members = spans[-1]
            spans[-1] = (previous_first, max(last, previous_last), [*members, stmt])
        else:
            spans.append((first, last, [stmt]))
    return spans


def _plain(text: str, starts: list[int], first_line: int, end: int) -> Piece:
    begin = starts[first_line - 1]
    return Piece(text[begin:end], line_shift=first_line - 1, offset=begin)


def _wrapped(
    text: str, starts: list[int], run: tuple[int, int], statement: tuple[int, int]
) -> Piece:
    first, last = run
    begin = starts[first - 1]
    end = starts[last] if last < len(starts) else len(text)
    inner = text[begin:end]
    if not inner.endswith(("\n", "\r")):
        inner += "\n"
    return Piece(
        _WRAP_OPEN + inner + _WRAP_CLOSE,
        line_shift=first - 2,
        offset=begin - len(_WRAP_OPEN),
        wrapped=True,
        statement=statement,
    )


def _is_inert(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Expr)):
        return False
    return not any(isinstance(node, _ACTIVE) for node in ast.walk(stmt))


def _element_runs(stmt: ast.stmt, text: str, starts: list[int]) -> list[tuple[int, int]] | None:
    """Line runs of about PIECE_CHARS holding whole elements of a statement's
    list/tuple value, when every element starts and ends its own lines."""
    value = getattr(stmt, "value", None)
    if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Expr)):
        return None
    if not isinstance(value, (ast.List, ast.Tuple)) or len(value.elts) < 2:
        return None
    runs: list[tuple[int, int]] = []
    previous_last = 0
    for element in value.elts:
        first, last = element.lineno, element.end_lineno or element.lineno
        if first <= previous_last or not _owns_lines(element, text, starts):
            return None
        if runs and starts[last] - starts[runs[-1][0] - 1] <= PIECE_CHARS:
            runs[-1] = (runs[-1][0], last)
        else:
            runs.append((first, last))
        previous_last = last
    return runs


def _owns_lines(element: ast.expr, text: str, starts: list[int]) -> bool:
    """Only indentation before the element on its first line, only `,` (and a
    comment) after it on its last line."""
    first, last = element.lineno, element.end_lineno or element.lineno
    if last >= len(starts):
        return False
    head = text[starts[first - 1] : starts[first]].encode("utf-8")[: element.col_offset]
    tail_line = text[starts[last - 1] : starts[last]].encode("utf-8")
    tail = tail_line[element.end_col_offset or 0 :].decode("utf-8", "replace").strip()
    return not head.strip() and re.fullmatch(r",?\s*(#.*)?", tail) is not None


def _prelude(text: str, starts: list[int], body: list[ast.stmt]) -> str:
    lines = []
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and stmt.col_offset == 0:
            last = stmt.end_lineno or stmt.lineno
            end = starts[last] if last < len(starts) else len(text)
            segment = text[starts[stmt.lineno - 1] : end]
            lines.append(segment if segment.endswith(("\n", "\r")) else segment + "\n")
    return "".join(lines)
