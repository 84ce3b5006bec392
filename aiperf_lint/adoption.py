"""Adopting aiperf-lint on an existing codebase: changed lines only, a
baseline of accepted findings, and `--add-noqa`.

Everything here works from real `git` output and the engine's findings; it
never changes what a rule reports, only which findings are shown.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from aiperf_lint.model import Finding

BASELINE_VERSION = 1


class AdoptionError(Exception):
    """A clear one-line problem (not a repository, unknown ref, bad baseline): exit 2."""


# ---------------------------------------------------------------- git diff


def _git(args: list[str], cwd: Path) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise AdoptionError("git is not installed") from None
    if proc.returncode != 0:
        raise AdoptionError(
            proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else "git failed"
        )
    return proc.stdout


def repo_root(cwd: Path) -> Path:
    try:
        return Path(_git(["rev-parse", "--show-toplevel"], cwd).strip())
    except AdoptionError:
        raise AdoptionError(
            f"--diff-base needs a git repository; {cwd} is not inside one"
        ) from None


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


@dataclass
class ChangedLines:
    """Lines added or modified since the merge base, per absolute file path.

    A path mapped to None is entirely new (untracked): every line counts.
    """

    root: Path
    base: str
    lines: dict[Path, set[int] | None] = field(default_factory=dict)

    def contains(self, path: str | Path, line: int) -> bool:
        key = Path(path).resolve()
        if key not in self.lines:
            return False
        changed = self.lines[key]
        return changed is None or line in changed

    def __call__(self, finding: Finding) -> bool:
        """The `keep` filter for runner.LintOptions: only findings on changed lines."""
        if finding.cell is not None:
            return self._cell_changed(finding)
        return self.contains(finding.path, finding.line)

    def _cell_changed(self, finding: Finding) -> bool:
        key = Path(finding.path).resolve()
        if key not in self.lines:
            return False
        changed = self.lines[key]
        if changed is None:
            return True
        span = notebook_cell_lines(key, finding.cell)
        return span is not None and bool(changed & set(range(span[0], span[1] + 1)))


def changed_lines(ref: str, cwd: Path) -> ChangedLines:
    root = repo_root(cwd)
    try:
        base = _git(["merge-base", ref, "HEAD"], root).strip()
    except AdoptionError:
        raise AdoptionError(f"--diff-base: unknown git ref {ref!r}") from None
    # The working tree against the merge base: committed and uncommitted changes.
    diff = _git(
        ["diff", "--unified=0", "--no-color", "--find-renames", "--no-ext-diff", base, "--"], root
    )
    result = ChangedLines(root, base)
    result.lines.update(parse_unified_diff(diff, root))
    untracked = _git(["ls-files", "--others", "--exclude-standard", "-z"], root)
    for name in filter(None, untracked.split("\0")):
        result.lines[(root / name).resolve()] = None
    return result


def parse_unified_diff(diff: str, root: Path) -> dict[Path, set[int]]:
    """Added/modified line numbers (new side) per file; deleted files dropped."""
    out: dict[Path, set[int]] = {}
    current: set[int] | None = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            target = line[4:]
            if target == "/dev/null":
                current = None  # a deleted file
                continue
            name = _unquote(target)[2:] if target.startswith(("b/", '"b/')) else _unquote(target)
            current = out.setdefault((root / name).resolve(), set())
        elif line.startswith("@@") and current is not None:
            match = _HUNK.match(line)
            if match:
                start = int(match.group(1))
                count = int(match.group(2)) if match.group(2) is not None else 1
                current.update(range(start, start + count))
    return out


def _unquote(name: str) -> str:
    if name.startswith('"') and name.endswith('"'):
        return (
            name[1:-1]
            .encode("latin-1", "backslashreplace")
            .decode("unicode_escape")
            .encode("latin-1")
            .decode("utf-8", "replace")
        )
    return name


def notebook_cell_lines(path: Path, code_cell: int) -> tuple[int, int] | None:
    """1-based JSON line span of the code_cell-th code cell of a notebook file."""
    try:
        text = path.read_text(encoding="utf-8")
        cells = json.loads(text).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return None
    code_indices = [
        i for i, c in enumerate(cells) if isinstance(c, dict) and c.get("cell_type") == "code"
    ]
    if code_cell >= len(code_indices):
        return None
    index = code_indices[code_cell]
    # Each cell object carries exactly one "cell_type" key; outputs never do.
    starts = [m.start() for m in re.finditer(r'"cell_type"\s*:', text)]
    if len(starts) != len(cells):
        return None
    # Jupyter writes keys sorted, so "cell_type" opens each cell object (the
    # line above it holds the `{`); the object ends where the next one starts.
    begin = text.count("\n", 0, starts[index])  # the `{` line, 1-based
    if index + 1 < len(starts):
        end = text.count("\n", 0, starts[index + 1]) - 1
    else:
        end = text.count("\n") + 1
    return begin, end


# ---------------------------------------------------------------- baseline


def fingerprints(findings: list[Finding], root: Path) -> list[dict]:
    """Line-free fingerprints: code, path, statement text, occurrence index."""
    seen: dict[tuple, int] = {}
    out = []
    for finding in sorted(findings, key=Finding.sort_key):
        path = _relative(finding.path, root)
        key = (finding.code, path, finding.statement_text)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        out.append(
            {
                "code": finding.code,
                "path": path,
                "statement": finding.statement_text,
                "occurrence": occurrence,
            }
        )
    return out


def _relative(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _key(entry: dict) -> tuple:
    return (entry["path"], entry["code"], entry["statement"], entry["occurrence"])


def write_baseline(path: Path, findings: list[Finding], root: Path) -> int:
    from aiperf_lint import fileio

    entries = sorted(fingerprints(findings, root), key=_key)
    text = (
        json.dumps({"version": BASELINE_VERSION, "findings": entries}, indent=2, sort_keys=True)
        + "\n"
    )
    if path.exists():
        fileio.atomic_write(path, text.encode("utf-8"))
    else:
        path.write_text(text, encoding="utf-8")
    return len(entries)


def load_baseline(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AdoptionError(f"{path}: cannot read baseline: {exc.strerror}") from None
    except ValueError as exc:
        raise AdoptionError(f"{path}: baseline is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
        raise AdoptionError(f"{path}: not an aiperf-lint baseline (version {BASELINE_VERSION})")
    entries = data.get("findings")
    required = {"code", "path", "statement", "occurrence"}
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and required <= set(e) for e in entries
    ):
        raise AdoptionError(f"{path}: malformed baseline entries")
    return entries


def apply_baseline(
    findings: list[Finding], entries: list[dict], root: Path
) -> tuple[list[Finding], list[dict]]:
    """(findings not in the baseline, stale baseline entries)."""
    known = {_key(e) for e in entries}
    ordered = sorted(findings, key=Finding.sort_key)
    prints = fingerprints(ordered, root)
    current = {_key(p) for p in prints}
    new = [f for f, p in zip(ordered, prints) if _key(p) not in known]
    stale = [e for e in entries if _key(e) not in current]
    return new, stale


# ---------------------------------------------------------------- add-noqa

_NOQA_CODES = re.compile(
    r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)", re.IGNORECASE
)
_BARE_NOQA = re.compile(r"#\s*noqa(?!:)", re.IGNORECASE)


def add_noqa(text: str, findings: list[Finding]) -> tuple[str, int, list[Finding]]:
    """Append `# noqa: CODE` where `check` honours it.

    Returns (new text, comments added or extended, findings that could not be
    suppressed because neither their line nor their statement's first line can
    carry a comment).
    """
    blocked = _lines_without_comment_room(text)
    lines = text.splitlines(keepends=True)
    wanted: dict[int, set[str]] = {}
    skipped = []
    for finding in findings:
        target = next(
            (
                ln
                for ln in (finding.line, finding.statement_line, finding.statement_end_line)
                if ln and ln not in blocked and ln <= len(lines)
            ),
            None,
        )
        if target is None:
            skipped.append(finding)
            continue
        wanted.setdefault(target, set()).add(finding.code)
    changed = 0
    for number, codes in wanted.items():
        new_line = _with_noqa(lines[number - 1], codes)
        if new_line != lines[number - 1]:
            lines[number - 1] = new_line
            changed += 1
    return "".join(lines), changed, skipped


def _with_noqa(line: str, codes: set[str]) -> str:
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    if _BARE_NOQA.search(body):
        return line  # already suppresses everything
    match = _NOQA_CODES.search(body)
    if match:
        existing = [c.upper() for c in re.split(r"[\s,]+", match.group("codes").strip())]
        merged = existing + sorted(c for c in codes if c not in existing)
        if merged == existing:
            return line
        return (
            body[: match.start("codes")] + ", ".join(merged) + body[match.end("codes") :] + ending
        )
    return f"{body.rstrip()}  # noqa: {', '.join(sorted(codes))}{ending}"


def _lines_without_comment_room(text: str) -> set[int]:
    """Lines whose end is inside a string (multi-line strings) or after a
    backslash continuation: a `#` appended there would not be a comment."""
    blocked: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                blocked.update(range(tok.start[0], tok.end[0]))
    except (tokenize.TokenError, SyntaxError):
        pass
    for number, line in enumerate(text.splitlines(), 1):
        if line.rstrip().endswith("\\"):
            blocked.add(number)
    return blocked


def add_noqa_notebook(
    data: bytes, findings: list[Finding]
) -> tuple[bytes | None, int, list[Finding]]:
    """`add_noqa` for a notebook: each cell's source gets its comments; the
    JSON layout, outputs and metadata are kept (notebook.py's writer)."""
    from aiperf_lint import notebook

    document = notebook.load(data)
    cells = notebook.code_cells(document)
    original = data.decode("utf-8-sig")
    layout = notebook.layout_of(document, original)  # before rewrite() edits the document
    by_cell: dict[int, list[Finding]] = {}
    for finding in findings:
        by_cell.setdefault(finding.cell or 0, []).append(finding)
    sources, added, skipped = {}, 0, []
    for index, cell_findings in by_cell.items():
        if index >= len(cells):
            skipped.extend(cell_findings)
            continue
        new_source, changed, not_done = add_noqa(cells[index].source, cell_findings)
        sources[index] = new_source
        added += changed
        skipped.extend(not_done)
    if not notebook.rewrite(document, cells, sources):
        return None, 0, skipped
    return notebook.dump(document, layout, original).encode("utf-8"), added, skipped
