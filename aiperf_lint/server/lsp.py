"""The pygls wiring: diagnostics, code actions and hover over stdio."""

from __future__ import annotations

import asyncio

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from aiperf_lint import __version__, docs, registry
from aiperf_lint.model import Finding
from aiperf_lint.server import analysis
from aiperf_lint.server.analysis import NEWLINE, Replacement

SOURCE = "aiperf-lint"
FIX_ALL_KIND = f"{types.CodeActionKind.SourceFixAll.value}.aiperf-lint"
DEFAULT_DEBOUNCE_S = 0.3


class AiperfLanguageServer(LanguageServer):
    def __init__(self, debounce_s: float = DEFAULT_DEBOUNCE_S) -> None:
        super().__init__("aiperf-lint", __version__)
        self.debounce_s = debounce_s
        self.pending: dict[str, asyncio.Task] = {}

    def checked(self, document: TextDocument) -> analysis.Checked:
        return analysis.check(document.source, document.path)

    def publish(self, uri: str) -> None:
        document = self.workspace.get_text_document(uri)
        if _is_notebook(document):
            return
        findings = self.checked(document).findings
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                version=document.version,
                diagnostics=[diagnostic(document, f) for f in findings],
            )
        )

    def schedule(self, uri: str, delay: float) -> None:
        """Lint `uri` after `delay` seconds, replacing any run still waiting (debounce)."""
        previous = self.pending.pop(uri, None)
        if previous is not None:
            previous.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(self._publish_later(uri, delay))

    async def _publish_later(self, uri: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self.pending.pop(uri, None)
        try:
            self.publish(uri)
        except Exception as exc:  # a config error or an engine bug: tell the user, keep serving
            self.window_show_message(
                types.ShowMessageParams(types.MessageType.Error, f"aiperf-lint: {exc}")
            )


def _is_notebook(document: TextDocument) -> bool:
    return (document.path or "").endswith(".ipynb")


# ---------------------------------------------------------------- positions


def _position(document: TextDocument, lines: list[str], where: tuple[int, int]) -> types.Position:
    line, column = where
    if line > len(lines):
        return types.Position(line=len(lines), character=0)
    prefix = lines[line - 1][: column - 1]
    return types.Position(line=line - 1, character=document.position_codec.client_num_units(prefix))


def _range(
    document: TextDocument, lines: list[str], start: tuple[int, int], end: tuple[int, int]
) -> types.Range:
    return types.Range(start=_position(document, lines, start), end=_position(document, lines, end))


def _lines(document: TextDocument) -> list[str]:
    return NEWLINE.split(document.source)


def finding_range(document: TextDocument, finding: Finding, lines=None) -> types.Range:
    lines = lines if lines is not None else _lines(document)
    return _range(
        document, lines, (finding.line, finding.column), (finding.end_line, finding.end_column)
    )


def diagnostic(document: TextDocument, finding: Finding) -> types.Diagnostic:
    rule = registry.get_rule(finding.code)
    return types.Diagnostic(
        range=finding_range(document, finding),
        message=finding.message,
        severity=types.DiagnosticSeverity.Warning,
        code=finding.code,
        code_description=types.CodeDescription(href=docs.rule_url(rule)) if rule else None,
        source=SOURCE,
        data={"fix": finding.fix_applicability},
    )


def _text_edits(document: TextDocument, replacements: list[Replacement]) -> list[types.TextEdit]:
    lines = _lines(document)
    return [
        types.TextEdit(range=_range(document, lines, r.start, r.end), new_text=r.text)
        for r in replacements
    ]


def _overlaps(a: types.Range, b: types.Range) -> bool:
    def key(p: types.Position) -> tuple[int, int]:
        return (p.line, p.character)

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


# ---------------------------------------------------------------- code actions


def code_actions(
    document: TextDocument, checked: analysis.Checked, requested: types.Range
) -> list[types.CodeAction]:
    lines = _lines(document)
    actions: list[types.CodeAction] = []
    for finding in checked.findings:
        where = finding_range(document, finding, lines)
        if not _overlaps(where, requested):
            continue
        diag = diagnostic(document, finding)
        if finding.fix_applicability is not None and finding.edits:
            actions.append(_fix_action(document, finding, diag))
        silence = analysis.noqa_replacement(document.source, finding)
        if silence is not None:
            actions.append(
                _action(
                    document,
                    f"Disable {finding.code} for this line",
                    types.CodeActionKind.QuickFix,
                    [silence],
                    [diag],
                )
            )
    fix_all = analysis.fix_all(document.source, checked, document.path)
    if fix_all:
        actions.append(
            _action(document, "aiperf-lint: fix all safe fixes", FIX_ALL_KIND, fix_all, None)
        )
    return actions


def _fix_action(
    document: TextDocument, finding: Finding, diag: types.Diagnostic
) -> types.CodeAction:
    unsafe = finding.fix_applicability == "unsafe"
    title = f"Fix {finding.code}" + (" (unsafe: review the change)" if unsafe else "")
    action = _action(
        document,
        title,
        types.CodeActionKind.QuickFix,
        analysis.fix_replacements(finding),
        [diag],
    )
    action.is_preferred = not unsafe
    return action


def _action(document, title, kind, replacements, diagnostics) -> types.CodeAction:
    return types.CodeAction(
        title=title,
        kind=kind,
        diagnostics=diagnostics,
        edit=types.WorkspaceEdit(changes={document.uri: _text_edits(document, replacements)}),
    )


# ---------------------------------------------------------------- hover


def hover(document: TextDocument, position: types.Position) -> types.Hover | None:
    point = types.Range(start=position, end=position)
    lines = _lines(document)
    for finding in analysis.check(document.source, document.path).findings:
        where = finding_range(document, finding, lines)
        if not _overlaps(where, point):
            continue
        rule = registry.get_rule(finding.code)
        if rule is None:
            continue
        text = docs.rule_page(rule) + f"\n\n[{finding.code} documentation]({docs.rule_url(rule)})"
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text), range=where
        )
    return None


# ---------------------------------------------------------------- the server


def create_server(debounce_s: float = DEFAULT_DEBOUNCE_S) -> AiperfLanguageServer:
    server = AiperfLanguageServer(debounce_s)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: AiperfLanguageServer, params: types.DidOpenTextDocumentParams):
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: AiperfLanguageServer, params: types.DidChangeTextDocumentParams):
        ls.schedule(params.text_document.uri, ls.debounce_s)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: AiperfLanguageServer, params: types.DidSaveTextDocumentParams):
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: AiperfLanguageServer, params: types.DidCloseTextDocumentParams):
        task = ls.pending.pop(params.text_document.uri, None)
        if task is not None:
            task.cancel()
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND]),
    )
    def code_action(ls: AiperfLanguageServer, params: types.CodeActionParams):
        document = ls.workspace.get_text_document(params.text_document.uri)
        if _is_notebook(document):
            return []
        actions = code_actions(document, ls.checked(document), params.range)
        wanted = params.context.only
        if wanted:
            actions = [a for a in actions if any(a.kind.startswith(k) for k in wanted)]
        return actions

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: AiperfLanguageServer, params: types.HoverParams):
        document = ls.workspace.get_text_document(params.text_document.uri)
        return None if _is_notebook(document) else hover(document, params.position)

    return server
