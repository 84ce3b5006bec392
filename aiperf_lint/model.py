"""Plain data passed between the engine, the fixer and the reporters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import libcst as cst

Applicability = Literal["safe", "unsafe"]


@dataclass(frozen=True)
class ImportSpec:
    """An import a fix needs: `import module` (name None) or `from module import name`."""

    module: str
    name: str | None = None

    def statement(self) -> str:
        if self.name is None:
            return f"import {self.module}"
        return f"from {self.module} import {self.name}"


@dataclass
class Fix:
    """A CST edit: replace nodes of the parsed module, optionally adding imports.

    Replacement values may be a node, `cst.RemovalSentinel.REMOVE` or a
    `cst.FlattenSentinel` (to insert statements around the replaced one).
    """

    applicability: Applicability
    replacements: Mapping[cst.CSTNode, object]
    imports: Sequence[ImportSpec] = ()
    description: str = ""


@dataclass(frozen=True)
class TextEdit:
    """Replace source[start:end] (character offsets) with content."""

    start: int
    end: int
    content: str
    # 1-based (line, column) of start and end in the original text; filled by
    # the engine so reporters need not keep the source around.
    location: tuple[int, int] | None = None
    end_location: tuple[int, int] | None = None

    def located(self, text: str) -> TextEdit:
        return TextEdit(
            self.start,
            self.end,
            self.content,
            _line_col(text, self.start),
            _line_col(text, self.end),
        )


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@dataclass
class Location:
    line: int  # 1-based
    column: int  # 1-based, in characters

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column}


@dataclass
class Finding:
    code: str
    name: str
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    fix_applicability: Applicability | None = None
    edits: list[TextEdit] = field(default_factory=list)
    # Notebook findings carry the cell they came from (0-based index) and the
    # position inside that cell; line/column then refer to the cell's source.
    cell: int | None = None
    # Set by the engine for noqa matching and baselines.
    statement_line: int = 0
    statement_end_line: int = 0  # a noqa there counts too (after a multi-line string)
    statement_text: str = ""

    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.code)


@dataclass
class FileError:
    """A file that could not be read, decoded or parsed, or a rule that crashed."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    kind: str = "error"  # "io", "decode", "syntax", "internal"
    traceback: str | None = None

    def one_line(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return f"{where}: {self.message}"


@dataclass
class FileResult:
    path: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    original_text: str | None = None  # set with fixed_text, for diffs
    fixed_text: str | None = None  # new source when fixes were applied
    fixes_applied: int = 0
    parsed: bool = False
