"""Jupyter notebooks: lint and fix the code cells of an `.ipynb` file.

The code cells are joined into one module (so an import in cell 1 informs a
rule in cell 5), with a boundary comment between cells. IPython-only lines
(`%magic`, `!shell`, `obj?`, `x = !cmd`) become placeholder `pass` lines of the
same indentation, so every line keeps its number; cells run by a non-Python
cell magic (`%%bash`, `%%writefile`, ...) are left out. Findings are mapped
back to (code-cell index, line in cell). Fixes are applied to the joined text,
split back per cell, the IPython lines restored, and only the changed cells'
`source` rewritten: outputs, metadata and the JSON layout stay as they were.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from aiperf_lint import engine, fileio
from aiperf_lint.model import FileError, FileResult, Finding, TextEdit

# Cell magics whose body is ordinary Python: lint the body, skip the magic line.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
BOUNDARY = "# <aiperf-lint cell {index}>"
BOUNDARY_LINE = re.compile(r"^# <aiperf-lint cell (\d+)>$")
PLACEHOLDER = "{indent}pass  # <aiperf-lint ipython {number}>"
PLACEHOLDER_LINE = re.compile(r"^[ \t]*pass  # <aiperf-lint ipython (\d+)>$")
ASSIGNED_MAGIC = re.compile(r"^[ \t]*[A-Za-z_][\w.,\[\] \t]*=[ \t]*[%!]")
# More cells than this failing to parse: stop retrying, report what we have.
MAX_BROKEN_CELLS = 20


class NotebookError(Exception):
    """The file is not a notebook we can read; the message is one line."""


@dataclass
class Cell:
    index: int  # 0-based among code cells: what findings report
    position: int  # index in the notebook's "cells" list
    source: str  # as in the file
    text: str = ""  # masked Python text, "\n"-terminated
    masked: dict[int, str] = field(default_factory=dict)  # placeholder number -> IPython line


@dataclass
class Span:
    cell: int  # code-cell index
    start: int  # 1-based line of the cell's first line in the joined text
    lines: int


# ---------------------------------------------------------------- reading


def load(data: bytes) -> dict:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise NotebookError(f"not a valid notebook: not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"not a valid notebook: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
        ) from None
    if not isinstance(document, dict):
        raise NotebookError("not a valid notebook: the top level is not a JSON object")
    if "worksheets" in document and "cells" not in document:
        raise NotebookError("nbformat 3 notebooks are not supported (save it with Jupyter 4+)")
    cells = document.get("cells")
    if not isinstance(cells, list):
        raise NotebookError("not a valid notebook: no 'cells' list")
    for position, cell in enumerate(cells):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise NotebookError(f"not a valid notebook: cell {position + 1} has no cell_type")
        if cell["cell_type"] == "code" and _source_text(cell) is None:
            raise NotebookError(
                f"not a valid notebook: cell {position + 1} has a malformed 'source'"
            )
    return document


def _source_text(cell: dict) -> str | None:
    source = cell.get("source", "")
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    return None


def is_python(document: dict) -> bool:
    """False for notebooks whose kernel is declared as another language (R, Julia...)."""
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        return True
    for key, field_name in (("kernelspec", "language"), ("language_info", "name")):
        section = metadata.get(key)
        if isinstance(section, dict) and isinstance(section.get(field_name), str):
            return section[field_name].lower() == "python"
    return True


def code_cells(document: dict) -> list[Cell]:
    cells, counter = [], 0
    for position, raw in enumerate(document["cells"]):
        if raw["cell_type"] != "code":
            continue
        cell = Cell(len(cells), position, _source_text(raw) or "")
        counter = mask(cell, counter)
        cells.append(cell)
    return cells


# ---------------------------------------------------------------- IPython syntax


def mask(cell: Cell, counter: int) -> int:
    """Fill cell.text/masked; returns the next placeholder number."""
    lines = cell.source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].lstrip()[2:].split(maxsplit=1)
        if not magic or magic[0] not in PYTHON_CELL_MAGICS:
            return counter  # not Python: the cell is left out (text stays "")
    out = []
    ipython = _ipython_lines(lines)
    for number, line in enumerate(lines):
        if number in ipython:
            indent = line[: len(line) - len(line.lstrip())]
            cell.masked[counter] = line
            line = PLACEHOLDER.format(indent=indent, number=counter)
            counter += 1
        out.append(line)
    cell.text = "".join(line + "\n" for line in out)
    return counter


def _ipython_lines(lines: list[str]) -> set[int]:
    """Indices of lines that only IPython understands (at the start of a logical line)."""
    found: set[int] = set()
    scanner = _Scanner()
    continuing_magic = False
    for number, line in enumerate(lines):
        if continuing_magic or (scanner.at_statement_start() and _is_ipython(line)):
            found.add(number)
            continuing_magic = line.rstrip().endswith("\\")
            continue
        scanner.feed(line)
    return found


def _is_ipython(line: str) -> bool:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return False
    if stripped[0] in "%!?":
        return True
    if stripped.endswith("?") and "#" not in stripped and not any(q in stripped for q in "'\""):
        return True  # `obj?` / `obj??` help
    return bool(ASSIGNED_MAGIC.match(line))


class _Scanner:
    """Tracks brackets, strings and backslash continuations across lines."""

    def __init__(self) -> None:
        self.depth = 0
        self.quote: str | None = None
        self.continued = False

    def at_statement_start(self) -> bool:
        return self.depth == 0 and self.quote is None and not self.continued

    def feed(self, line: str) -> None:
        i = 0
        while i < len(line):
            if self.quote is not None:
                if line.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                else:
                    i += 2 if line[i] == "\\" else 1
                continue
            char = line[i]
            if char == "#":
                break
            if char in "'\"":
                self.quote = char * 3 if line.startswith(char * 3, i) else char
                i += len(self.quote)
                continue
            if char in "([{":
                self.depth += 1
            elif char in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1
        self.continued = line.endswith("\\") and "#" not in line
        if self.quote in ("'", '"') and not line.endswith("\\"):
            self.quote = None  # unterminated one-line string: a syntax error the parser reports


# ---------------------------------------------------------------- joining


def join(cells: list[Cell]) -> str:
    parts = []
    for cell in cells:
        if not cell.text:
            continue
        if parts:
            parts.append(BOUNDARY.format(index=cell.index) + "\n")
        parts.append(cell.text)
    return "".join(parts)


def spans(text: str, cells: list[Cell]) -> list[Span] | None:
    """Where each included cell lies in a joined text; None if the boundaries were damaged."""
    included = [c.index for c in cells if c.text]
    if not included:
        return []
    found, start = [], 1
    current = included[0]
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        match = BOUNDARY_LINE.match(line)
        if match:
            found.append(Span(current, start, number - start))
            current, start = int(match.group(1)), number + 1
    found.append(Span(current, start, len(lines) + 1 - start))
    if [s.cell for s in found] != included:
        return None
    return found


def split(text: str, cells: list[Cell]) -> dict[int, str] | None:
    """Joined (fixed) text -> new source per code-cell index, IPython lines restored."""
    layout = spans(text, cells)
    if layout is None:
        return None
    lines = text.splitlines()
    masked = {number: line for cell in cells if cell.text for number, line in cell.masked.items()}
    restored: set[int] = set()
    out = {}
    for span in layout:
        body = []
        for line in lines[span.start - 1 : span.start - 1 + span.lines]:
            match = PLACEHOLDER_LINE.match(line)
            if match:
                number = int(match.group(1))
                original = masked.get(number)
                indent = line[: len(line) - len(line.lstrip())]
                if original is None or number in restored or not original.startswith(indent):
                    return None
                restored.add(number)
                line = original
            body.append(line)
        out[span.cell] = body
    if restored != set(masked):
        return None  # a fix moved or dropped an IPython line: do not guess
    by_index = {cell.index: cell for cell in cells}
    return {index: _cell_source(body, by_index[index].source) for index, body in out.items()}


def _cell_source(lines: list[str], original: str) -> str:
    text = "\n".join(lines)
    if original.endswith("\n") or (not original and lines):
        text += "\n"
    return text


# ---------------------------------------------------------------- positions


def locate(finding: Finding, layout: list[Span]) -> Finding | None:
    span = _span_of(finding.line, layout)
    if span is None:
        return None
    offset = span.start - 1
    line = finding.line - offset
    return dataclasses.replace(
        finding,
        line=line,
        end_line=max(line, min(finding.end_line - offset, span.lines)),
        cell=span.cell,
        edits=[_shift_edit(edit, offset) for edit in finding.edits],
        statement_line=max(1, finding.statement_line - offset),
        statement_end_line=max(1, finding.statement_end_line - offset),
    )


def _span_of(line: int, layout: list[Span]) -> Span | None:
    for span in layout:
        if span.start <= line < span.start + span.lines:
            return span
    return None


def _shift_edit(edit: TextEdit, offset: int) -> TextEdit:
    def shift(position):
        return None if position is None else (max(1, position[0] - offset), position[1])

    return dataclasses.replace(
        edit, location=shift(edit.location), end_location=shift(edit.end_location)
    )


# ---------------------------------------------------------------- writing


def layout_of(document: dict, original: str) -> dict:
    """json.dumps arguments that reproduce `original` from `document` (nbformat's by default)."""
    indent = _indent_of(original)
    candidates = [
        {"indent": indent, "ensure_ascii": ascii_only, "separators": separators}
        for ascii_only in (False, True)
        for separators in ((",", ": "), (",", ":"), (", ", ": "))
    ]
    for layout in candidates:
        if dump(document, layout, original) == original:
            return layout
    return candidates[0]  # unusual layout: same indent, content kept, spacing normalised


def dump(document: dict, layout: dict, original: str) -> str:
    text = json.dumps(document, **layout)
    if original.rstrip(" \t").endswith("\n"):
        text += "\n"
    return text.replace("\n", "\r\n") if "\r\n" in original else text


def _indent_of(original: str) -> str | None:
    match = re.match(r"\s*\{[ \t]*\r?\n([ \t]+)\"", original)
    return match.group(1) if match else None


def rewrite(document: dict, cells: list[Cell], sources: dict[int, str]) -> bool:
    """Put the changed sources back, keeping each cell's str/list shape. True if any changed."""
    changed = False
    for cell in cells:
        new = sources.get(cell.index)
        if new is None or new == cell.source:
            continue
        raw = document["cells"][cell.position]
        raw["source"] = (
            new.splitlines(keepends=True) if isinstance(raw.get("source"), list) else new
        )
        changed = True
    return changed


# ---------------------------------------------------------------- the entry point


def lint_notebook(data: bytes, path: Path, options) -> FileResult:
    """Called by runner.lint_bytes for `.ipynb` files."""
    from aiperf_lint import runner

    name = str(path)
    try:
        document = load(data)
    except NotebookError as exc:
        return FileResult(name, errors=[FileError(name, str(exc), kind="decode")])
    if not is_python(document):
        return FileResult(name)
    cells = code_cells(document)
    codes = options.settings.codes_for(path, options.codes)
    errors: list[FileError] = []
    while True:
        text = join(cells)
        if engine.SKIP_FILE.search(text.encode("utf-8", "surrogatepass")):
            return FileResult(name)
        rules = engine.active_rules(text.encode("utf-8", "surrogatepass"), runner.rules_for(codes))
        if not rules:
            return FileResult(name, errors=errors)
        try:
            result = runner.lint_source_text(text, rules, name, options)
            break
        except engine.LintError as exc:
            cell = _drop_broken_cell(exc.error, text, cells, errors, name)
            if cell is None or len(errors) > MAX_BROKEN_CELLS:
                return FileResult(name, errors=[*errors, exc.error])
    result.errors = errors + result.errors
    if result.fixed_text is None:
        return _located(result, join(cells), cells)
    sources = split(result.fixed_text, cells)
    if sources is None:
        result.errors.append(
            FileError(
                name,
                "fixes not applied: they would move a cell boundary or an IPython line",
                kind="internal",
            )
        )
        unfixed = runner.lint_source_text(
            join(cells), rules, name, dataclasses.replace(options, fix=False)
        )
        result.findings, result.fixes_applied = unfixed.findings, 0
        return _located(result, join(cells), cells)
    _located(result, result.fixed_text, cells)
    return _write(result, document, cells, sources, data, path, options)


def _drop_broken_cell(
    error: FileError, text: str, cells: list[Cell], errors, name: str
) -> Cell | None:
    """A cell that does not parse is reported and left out, so the rest is still checked."""
    layout = spans(text, cells) or []
    span = _span_of(error.line, layout) if error.line is not None else None
    if span is None:
        return None
    cell = next(c for c in cells if c.index == span.cell)
    line = error.line - span.start + 1
    errors.append(
        FileError(name, f"cell {cell.index + 1}:line {line}: {error.message}", kind=error.kind)
    )
    cell.text = ""
    return cell


def _located(result: FileResult, text: str, cells: list[Cell]) -> FileResult:
    """Findings in cell coordinates; the joined texts are not the file's, so no diff of them."""
    layout = spans(text, cells) or []
    result.findings = [f for f in (locate(f, layout) for f in result.findings) if f is not None]
    result.original_text = result.fixed_text = None
    return result


def _write(
    result: FileResult, document: dict, cells: list[Cell], sources, data: bytes, path: Path, options
) -> FileResult:
    name = str(path)
    original = data.decode("utf-8-sig")
    layout = layout_of(document, original)  # before `rewrite` edits the document
    if not rewrite(document, cells, sources):
        return result
    new_text = dump(document, layout, original)
    result.original_text, result.fixed_text = original, new_text
    if not options.write:
        return result
    try:
        bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""  # kept, like .py files
        fileio.atomic_write(path, bom + new_text.encode("utf-8"), fileio.digest(data))
    except fileio.ChangedOnDisk:
        result.errors.append(
            FileError(name, "file changed on disk while fixing; not written", kind="io")
        )
        result.fixed_text = None
    except OSError as exc:
        result.errors.append(FileError(name, f"cannot write fixes: {exc.strerror}", kind="io"))
        result.fixed_text = None
    return result
