"""Lint one source text: prefilter, parse once, run all rules in one traversal.

Cost model (why the engine looks like this): `libcst.parse_module` is about
12x `ast.parse`, and LibCST's full metadata resolution several times the
parse. So:

1. a file whose bytes contain no trigger of any enabled rule is never parsed;
2. the only analysis is `semantic.Context`, built in the same traversal;
3. positions are computed only when something was reported, and only once.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst._nodes.base import CSTNode
from libcst.metadata import MetadataWrapper, PositionProvider

from aiperf_lint import pieces, semantic, walk
from aiperf_lint.layout import Layout
from aiperf_lint.model import FileError, Finding, TextEdit
from aiperf_lint.rule import Report, Rule
from aiperf_lint.semantic import Context

SKIP_FILE = re.compile(rb"#\s*aiperf-lint:\s*skip-file\b")
FILE_NOQA = re.compile(
    r"#\s*aiperf-lint:\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?",
    re.IGNORECASE,
)
NOQA = re.compile(
    r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?",
    re.IGNORECASE,
)

# A statement nested deeper than this cannot come from real code, and the
# native parser may exhaust the C stack before raising; refuse it cleanly.
MAX_NESTING = 200

# Parsing and analysing costs about 15 s of CPU per MB of source and 400 bytes
# of memory per source byte (measured: 10 MB took 3 minutes and 4 GB on the
# 2-core dev machine). The largest file in torch, pandas and numpy is 1.4 MB;
# bigger sources are generated data, refused clearly (files that no enabled
# rule can match are never parsed, whatever their size).
MAX_SOURCE_CHARS = 3_000_000


@dataclass
class SourceText:
    text: str
    encoding: str  # as detected; "utf-8-sig" when the file starts with a BOM


class LintError(Exception):
    """A per-file failure that becomes a FileError (never a traceback)."""

    def __init__(self, error: FileError) -> None:
        super().__init__(error.message)
        self.error = error


def decode(data: bytes, path: str) -> SourceText:
    if b"\x00" in data:
        raise LintError(
            FileError(path, "file contains NUL bytes; not Python source", kind="decode")
        )
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise LintError(
            FileError(path, f"cannot detect encoding: {exc.msg}", kind="decode")
        ) from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1  # in bytes
        raise LintError(
            FileError(
                path, f"cannot decode as {encoding}: {exc.reason}", line, column, kind="decode"
            )
        ) from None
    except LookupError as exc:
        raise LintError(
            FileError(path, f"cannot decode as {encoding}: {exc}", kind="decode")
        ) from None
    return SourceText(text, encoding)


def encode(source: SourceText, text: str) -> bytes:
    return text.encode(source.encoding)


# LibCST's native parser is super-linear on very long operator chains
# (`1 + 1 + ...`: 1,000 terms take seconds, 5,000 minutes) and on long call or
# attribute chains (and on subscript, `not`/`lambda` and `a if b else` chains,
# quadratic or worse). No hand-written code has hundreds of links in one
# expression; generated code that does is refused with a clear message.
_LONG_CHAINS = (
    (re.compile(r"(?:[-+*/%|&^@]\s*[^\s\-+*/%|&^@=<>,;:()\[\]{}]+\s*){400}"), "operator chain"),
    (re.compile(r"(?:\(\)|\.\w+|\[[^\[\]\n]{0,40}\]){400}"), "call/attribute/subscript chain"),
    (re.compile(r"(?:\b(?:not|await)\s+|\blambda\b[^:\n]{0,40}:\s*){400}"), "prefix chain"),
    (re.compile(r"(?:\belse\s+[\w.]+\s+if\s+[\w.]+\s+){400}"), "conditional expression chain"),
)
_LONG_LINE = re.compile(r"[^\n]{1200,}")


def _check_size(text: str, path: str) -> None:
    if len(text) > MAX_SOURCE_CHARS:
        size = f"{len(text) / 1e6:.1f} MB"
        raise LintError(
            FileError(
                path,
                f"file too large to analyse ({size}; limit {MAX_SOURCE_CHARS / 1e6:.0f} MB)",
                kind="size",
            )
        )


def parse(text: str, path: str) -> cst.Module:
    _check_size(text, path)
    depth = _max_bracket_depth(text)
    if depth > MAX_NESTING:
        raise LintError(
            FileError(
                path, f"expression nesting too deep to analyse ({depth} levels)", kind="syntax"
            )
        )
    for long_line in _LONG_LINE.finditer(text):  # such chains live on long lines
        for pattern, what in _LONG_CHAINS:
            if pattern.search(long_line.group()):
                line = text.count("\n", 0, long_line.start()) + 1
                raise LintError(
                    FileError(
                        path, f"{what} too long to analyse (400+ links)", line, 1, kind="syntax"
                    )
                )
    try:
        return _parse_unvalidated(text)
    except cst.ParserSyntaxError as exc:
        raise LintError(_syntax_error(text, path, exc)) from None
    except RecursionError:
        raise LintError(
            FileError(path, "expression nesting too deep to analyse", kind="syntax")
        ) from None


def _skip_validation(self: CSTNode) -> None:
    return None


def _parse_unvalidated(text: str) -> cst.Module:
    """`cst.parse_module` without re-validating every node the parser builds.

    LibCST validates each node in `__post_init__` (about a fifth of the parse
    time), a check meant for hand-built trees: the parser's nodes come from the
    grammar. Nodes that rules build for fixes are still validated, and a fix is
    only offered when the tree renders back to the exact source text.
    """
    validate = CSTNode.__post_init__
    CSTNode.__post_init__ = _skip_validation  # type: ignore[method-assign]
    try:
        return cst.parse_module(text)
    finally:
        CSTNode.__post_init__ = validate  # type: ignore[method-assign]


def _syntax_error(text: str, path: str, exc: cst.ParserSyntaxError) -> FileError:
    """Python's own message and position (LibCST's native parser often points
    past the real error); LibCST's when Python accepts what LibCST cannot parse."""
    try:
        ast.parse(text)
    except SyntaxError as py_exc:
        return FileError(
            path,
            f"SyntaxError: {py_exc.msg}",
            py_exc.lineno or 1,
            py_exc.offset or 1,
            kind="syntax",
        )
    except (ValueError, RecursionError, MemoryError):
        pass
    lines = str(exc).splitlines()
    detail = lines[1] if len(lines) > 1 else lines[0]
    detail = re.sub(r"^parser error: error at \d+:\d+: ", "", detail)
    return FileError(
        path, f"SyntaxError (LibCST): {detail}", exc.raw_line, exc.raw_column + 1, kind="syntax"
    )


def _max_bracket_depth(text: str) -> int:
    # Cheap upper bound (strings and comments included): only used to refuse
    # pathological inputs, so a false high count on real code never matters
    # below MAX_NESTING.
    if text.count("(") + text.count("[") + text.count("{") < MAX_NESTING:
        return 0
    depth = best = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            if depth > best:
                best = depth
        elif ch in ")]}" and depth:
            depth -= 1
    return best


# ---------------------------------------------------------------- traversal


class _Dispatcher(cst.CSTVisitor):
    """Runs the semantic layer and every rule's visit_/leave_ methods in one pass.

    Equivalent to LibCST's BatchableCSTVisitor batching, plus an ordering
    guarantee: the Context enters a node before any rule visits it and leaves it
    after every rule has left it.
    """

    def __init__(self, ctx: Context, rules: Sequence[Rule]) -> None:
        self.ctx = ctx
        self.visit_table: dict[str, list] = {}
        self.leave_table: dict[str, list] = {}
        for rule in rules:
            for attr, prefix in _rule_methods(type(rule)):
                table = self.visit_table if prefix == "visit_" else self.leave_table
                table.setdefault(attr[len(prefix) :], []).append(getattr(rule, attr))

    def on_visit(self, node: cst.CSTNode) -> bool:
        try:  # free in 3.11 unless raised; the node gives an internal error its position
            self.ctx.enter(node)
            for method in self.visit_table.get(type(node).__name__, ()):
                method(node)
        except Exception as exc:
            _note_node(exc, node)
            raise
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        try:
            for method in self.leave_table.get(type(original_node).__name__, ()):
                method(original_node)
            self.ctx.leave(original_node)
        except Exception as exc:
            _note_node(exc, original_node)
            raise

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        self.ctx.enter_attribute(node, attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        return None

    def run(self, module: cst.Module) -> None:
        """The traversal, without LibCST's node rebuilding (see `walk`); whitespace
        and operator tokens are not walked unless a rule or the context handles them."""
        handled = set(self.visit_table) | set(self.leave_table)
        handled |= {t.__name__ for t in (*semantic._ENTER, *semantic._LEAVE)}
        skip = frozenset(t for t in walk.TRIVIA if t.__name__ not in handled)
        walk.traverse(module, self.on_visit, self.on_leave, self.on_visit_attribute, skip)


_METHOD_CACHE: dict[type, list[tuple[str, str]]] = {}


def _rule_methods(rule_type: type) -> list[tuple[str, str]]:
    """(method name, "visit_"/"leave_") of a rule class. Rules cannot prune the
    traversal: return values of visit_ methods are ignored (others need the subtree)."""
    cached = _METHOD_CACHE.get(rule_type)
    if cached is None:
        cached = [
            (attr, prefix)
            for attr in dir(rule_type)
            for prefix in ("visit_", "leave_")
            if attr.startswith(prefix) and callable(getattr(rule_type, attr))
        ]
        _METHOD_CACHE[rule_type] = cached
    return cached


# ---------------------------------------------------------------- linting


@dataclass
class Analysis:
    """The result of one traversal: reports still tied to CST nodes."""

    module: cst.Module
    text: str
    reports: list[tuple[type[Rule], Report]]
    errors: list[FileError]


def active_rules(data: bytes, rules: Iterable[type[Rule]]) -> list[type[Rule]]:
    """The rules whose trigger bytes occur in the file (see Rule.triggers)."""
    return [r for r in rules if _triggered(data, r)]


def _triggered(data: bytes, rule: type[Rule]) -> bool:
    if rule.triggers and not any(t in data for t in rule.triggers):
        return False
    return all(any(t in data for t in group) for group in rule.trigger_all)


def analyse(
    text: str,
    rules: Sequence[type[Rule]],
    path: str,
    module: cst.Module | None = None,
    prelude: cst.Module | None = None,
) -> Analysis:
    module = module if module is not None else parse(text, path)
    ctx = Context(module, path, prelude)
    instances = [rule(ctx) for rule in rules]
    errors: list[FileError] = []
    try:
        _Dispatcher(ctx, instances).run(module)
    except RecursionError:
        errors.append(FileError(path, "expression nesting too deep to analyse", kind="syntax"))
    except Exception as exc:  # a rule bug must not take down the run
        crashed = _crashed_rule(exc, instances)
        errors.append(_internal_error(path, exc, crashed, module))
        if crashed is not None:  # the other rules still get the whole file
            rest = analyse(text, [r for r in rules if r is not crashed], path, module, prelude)
            return Analysis(module, text, rest.reports, errors + rest.errors)
    reports = [(type(rule), report) for rule in instances for report in rule.reports]
    return Analysis(module, text, reports, errors)


def _note_node(exc: Exception, node: cst.CSTNode) -> None:
    if not hasattr(exc, "_aiperf_node"):  # the innermost node, where it was raised
        exc._aiperf_node = node  # type: ignore[attr-defined]


def _node_position(module: cst.Module, node: cst.CSTNode | None) -> tuple[int | None, int | None]:
    if node is None:
        return None, None
    try:
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        pos = wrapper.resolve(PositionProvider).get(node)
    except Exception:  # the position is a courtesy; never fail the report for it
        return None, None
    return (pos.start.line, pos.start.column + 1) if pos else (None, None)


def _crashed_rule(exc: Exception, instances: Sequence[Rule]) -> type[Rule] | None:
    """The rule whose module the innermost rule frame of the traceback is in."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        for rule in instances:
            module_file = sys.modules[type(rule).__module__].__file__
            if module_file and frame.filename == module_file:
                return type(rule)
    return None


def _internal_error(
    path: str, exc: Exception, crashed: type[Rule] | None, module: cst.Module
) -> FileError:
    tb = traceback.format_exc()
    line, column = _node_position(module, getattr(exc, "_aiperf_node", None))
    rule_code = crashed.code if crashed is not None else "engine"
    cause = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return FileError(
        path,
        f"internal error in {rule_code}: {cause}",
        line,
        column,
        kind="internal",
        traceback=tb,
    )


def lint_text(
    text: str,
    rules: Sequence[type[Rule]],
    path: str = "<string>",
    with_fixes: bool = True,
) -> tuple[list[Finding], list[FileError]]:
    """Findings of `rules` on `text`, noqa applied, positions resolved."""
    findings, errors = raw_findings(text, rules, path, with_fixes)
    return (apply_noqa(findings, text) if findings else findings), errors


def raw_findings(
    text: str, rules: Sequence[type[Rule]], path: str, with_fixes: bool = True
) -> tuple[list[Finding], list[FileError]]:
    """Findings before noqa; a very large file is analysed piece by piece."""
    if not rules:
        return [], []
    _check_size(text, path)
    split = pieces.split(text) if len(text) > pieces.BIG_FILE_CHARS else None
    if split is not None:
        return _piecewise_findings(text, split, rules, path, with_fixes)
    analysis = analyse(text, rules, path)
    if not analysis.reports:
        return [], analysis.errors
    return to_findings(analysis, path, with_fixes), analysis.errors


def _piecewise_findings(
    text: str, split: pieces.Split, rules: Sequence[type[Rule]], path: str, with_fixes: bool
) -> tuple[list[Finding], list[FileError]]:
    try:
        prelude = parse(split.prelude, path) if split.prelude else None
    except LintError:
        prelude = None
    findings: list[Finding] = []
    errors: list[FileError] = []
    for piece in split.pieces:  # one tree alive at a time
        try:
            analysis = analyse(piece.text, rules, path, prelude=prelude)
        except LintError as exc:
            errors.append(piece.error(exc.error))
            continue
        errors.extend(piece.error(error) for error in analysis.errors)
        if analysis.reports:
            for finding in to_findings(analysis, path, with_fixes):
                findings.append(piece.finding(finding, text))
        del analysis
    findings.sort(key=Finding.sort_key)
    return findings, errors


def to_findings(analysis: Analysis, path: str, with_fixes: bool) -> list[Finding]:
    from aiperf_lint.fixer import edits_for_fix

    layout = Layout(analysis.module, analysis.text)
    findings = []
    seen: set[tuple] = set()
    # Fixes are diffs of re-rendered code: if LibCST cannot reproduce the file
    # exactly (e.g. a trailing lone "\r"), a fix would also edit bytes elsewhere.
    faithful = not with_fixes or layout.faithful
    for rule, report in analysis.reports:
        hints = (report.top, report.statement)
        pos = layout.position(report.node, *hints)
        if pos is None:
            continue
        key = (rule.code, pos.start.line, pos.start.column, pos.end.line, pos.end.column)
        if key in seen:
            continue
        seen.add(key)
        stmt_pos = (
            layout.position(report.statement, *hints) if report.statement is not None else None
        )
        statement_line = stmt_pos.start.line if stmt_pos else pos.start.line
        finding = Finding(
            code=rule.code,
            name=rule.name,
            message=report.message,
            path=path,
            line=pos.start.line,
            column=pos.start.column + 1,
            end_line=pos.end.line,
            end_column=pos.end.column + 1,
            statement_line=statement_line,
            statement_end_line=_last_line(stmt_pos or pos),
            statement_text=_statement_text(analysis.module, report),
        )
        if report.fix is not None and with_fixes and not faithful:
            finding.message += " (fix unavailable: the parser does not round-trip this file)"
        elif report.fix is not None and with_fixes:
            try:
                edits = layout.fix_edits(report.fix, *hints)
                if edits is None:  # touches more than the module body: render it all
                    edits = edits_for_fix(analysis.module, analysis.text, report.fix)
                finding.edits = [edit.located(analysis.text) for edit in edits]
                finding.fix_applicability = report.fix.applicability if finding.edits else None
            except Exception as exc:  # a broken fix is dropped, never applied
                finding.edits = []
                finding.message += f" (fix unavailable: {type(exc).__name__})"
        findings.append(finding)
    findings.sort(key=Finding.sort_key)
    return findings


def _last_line(code_range) -> int:
    """The last line a node occupies (a range ending at column 0 ends on the line before)."""
    end = code_range.end
    return end.line - 1 if end.column == 0 and end.line > code_range.start.line else end.line


def _statement_text(module: cst.Module, report: Report) -> str:
    node = report.statement if report.statement is not None else report.node
    if isinstance(node, cst.SimpleStatementLine):
        code = module.code_for_node(node.with_changes(leading_lines=()))
    elif isinstance(node, cst.BaseCompoundStatement):
        code = module.code_for_node(
            node.with_changes(leading_lines=(), body=cst.SimpleStatementSuite(body=()))
        )
    else:
        code = module.code_for_node(node)
    return " ".join(code.split())


# ---------------------------------------------------------------- noqa


def noqa_map(text: str) -> dict[int, set[str] | None]:
    """line -> codes suppressed there (None = all), from real comments only."""
    out: dict[int, set[str] | None] = {}
    if "noqa" not in text.lower():
        return out
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        comments = [(tok.start[0], tok.string) for tok in tokens if tok.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        comments = [
            (i, line[line.index("#") :])
            for i, line in enumerate(text.splitlines(), 1)
            if "#" in line
        ]
    for line, comment in comments:
        match = NOQA.search(comment)
        if match is None:
            continue
        codes = match.group("codes")
        if codes is None:
            out[line] = None
        else:
            previous = out.get(line, set())
            if previous is not None:
                out[line] = previous | set(re.split(r"[\s,]+", codes.upper().strip()))
    return out


def file_noqa(text: str) -> set[str] | bool | None:
    """`# aiperf-lint: noqa` (all, returns None) or `: AIP401` (those codes); False if absent."""
    match = FILE_NOQA.search(text)
    if match is None:
        return False
    codes = match.group("codes")
    return None if codes is None else set(re.split(r"[\s,]+", codes.upper().strip()))


def apply_noqa(findings: list[Finding], text: str) -> list[Finding]:
    file_level = file_noqa(text)
    if file_level is None:
        return []
    lines = noqa_map(text)
    kept = []
    for finding in findings:
        if file_level and finding.code in file_level:
            continue
        if _suppressed(finding, lines):
            continue
        kept.append(finding)
    return kept


def _suppressed(finding: Finding, lines: dict[int, set[str] | None]) -> bool:
    for line in {finding.line, finding.statement_line, finding.statement_end_line}:
        if line in lines:
            codes = lines[line]
            if codes is None or finding.code in codes:
                return True
    return False


__all__ = [
    "LintError",
    "SourceText",
    "TextEdit",
    "active_rules",
    "analyse",
    "decode",
    "encode",
    "lint_text",
    "parse",
]
