"""`aiperf-lint server` driven end to end by a real LSP client (pygls) over stdio."""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from aiperf_lint import api, cli, docs, registry
from aiperf_lint.server import analysis

SOURCE = textwrap.dedent(
    """\
    import pandas as pd
    df = pd.read_csv("sales.csv")
    for i, row in df.iterrows():
        df.loc[i, "total"] = row["price"] * row["qty"]
    """
)
APPLY = 'label = "😀"; out = df.apply(lambda r: r["a"] * r["b"], axis=1)\n'
TIMEOUT = 30


class Session:
    """A client connected to a fresh server process; diagnostics arrive on a queue."""

    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.diagnostics: asyncio.Queue[types.PublishDiagnosticsParams] = asyncio.Queue()
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}

    def open(self, name: str, text: str) -> str:
        uri = (self.root / name).as_uri()
        self.texts[uri], self.versions[uri] = text, 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text))
        )
        return uri

    def change(self, uri: str, text: str) -> None:
        self.texts[uri] = text
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                [types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    async def next_diagnostics(self, uri: str) -> list[types.Diagnostic]:
        while True:
            params = await asyncio.wait_for(self.diagnostics.get(), TIMEOUT)
            if params.uri == uri:
                return list(params.diagnostics)

    async def actions(self, uri: str, diagnostic: types.Diagnostic) -> list[types.CodeAction]:
        return await self.client.text_document_code_action_async(
            types.CodeActionParams(
                types.TextDocumentIdentifier(uri),
                diagnostic.range,
                types.CodeActionContext([diagnostic]),
            )
        )

    def apply(self, uri: str, action: types.CodeAction) -> str:
        """Apply a code action's edit as an editor would (UTF-16 positions), and send it."""
        text = apply_text_edits(self.texts[uri], action.edit.changes[uri])
        self.change(uri, text)
        return text


def apply_text_edits(text: str, edits) -> str:
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]

    def offset(position: types.Position) -> int:
        line_start = starts[position.line]
        line = text[line_start:]
        units = 0
        for index, char in enumerate(line):
            if units >= position.character:
                return line_start + index
            units += 2 if ord(char) > 0xFFFF else 1
        return len(text)

    spans = sorted(
        ((offset(e.range.start), offset(e.range.end), e.new_text) for e in edits), reverse=True
    )
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


def run_session(root: Path, scenario, debounce: float = 0.05) -> None:
    async def main() -> None:
        client = LanguageClient("aiperf-lint-tests", "1")
        session = Session(client, root)

        @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            session.diagnostics.put_nowait(params)

        await client.start_io(
            sys.executable,
            "-m",
            "aiperf_lint",
            "server",
            "--debounce",
            str(debounce),
            cwd=str(root),
        )
        try:
            await client.initialize_async(
                types.InitializeParams(
                    capabilities=types.ClientCapabilities(), root_uri=root.as_uri(), process_id=None
                )
            )
            client.initialized(types.InitializedParams())
            await scenario(session)
            await client.shutdown_async(None)
            client.exit(None)
        finally:
            await client.stop()

    asyncio.run(asyncio.wait_for(main(), 4 * TIMEOUT))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path


def _by_code(diagnostics, code: str) -> list[types.Diagnostic]:
    return [d for d in diagnostics if d.code == code]


def test_diagnostics_quick_fix_and_fix_all(root):
    async def scenario(session: Session) -> None:
        uri = session.open("train.py", SOURCE)
        diagnostics = await session.next_diagnostics(uri)
        assert {d.code for d in diagnostics} == {"AIP401", "AIP403"}
        (loop,) = _by_code(diagnostics, "AIP401")
        assert (loop.range.start.line, loop.range.start.character) == (2, 14)
        assert loop.source == "aiperf-lint"
        assert loop.severity == types.DiagnosticSeverity.Warning
        assert loop.code_description.href == docs.rule_url(registry.get_rule("AIP401"))

        actions = await session.actions(uri, loop)
        titles = [a.title for a in actions]
        assert "Fix AIP401" in titles and "Disable AIP401 for this line" in titles
        fix_all = next(a for a in actions if a.kind == "source.fixAll.aiperf-lint")
        assert apply_text_edits(SOURCE, fix_all.edit.changes[uri]) == api.fix_source(SOURCE)

        quick = next(a for a in actions if a.title == "Fix AIP401")
        assert quick.is_preferred and quick.diagnostics[0].code == "AIP401"
        fixed = session.apply(uri, quick)
        assert fixed == api.fix_source(SOURCE)
        assert _by_code(await session.next_diagnostics(uri), "AIP401") == []

    run_session(root, scenario)


def test_disable_for_this_line_adds_noqa(root):
    async def scenario(session: Session) -> None:
        uri = session.open("train.py", SOURCE)
        (loop,) = _by_code(await session.next_diagnostics(uri), "AIP401")
        action = next(a for a in await session.actions(uri, loop) if a.title.startswith("Disable"))
        text = session.apply(uri, action)
        assert text.splitlines()[2] == "for i, row in df.iterrows():  # noqa: AIP401"
        remaining = await session.next_diagnostics(uri)
        assert _by_code(remaining, "AIP401") == [] and _by_code(remaining, "AIP403")

    run_session(root, scenario)


def test_positions_are_utf16_and_hover_shows_the_rule_docs(root):
    async def scenario(session: Session) -> None:
        uri = session.open("feat.py", "import pandas as pd\ndf = pd.read_csv('x.csv')\n" + APPLY)
        (found,) = _by_code(await session.next_diagnostics(uri), "AIP402")
        prefix = APPLY[: APPLY.index("df.apply")]
        # the emoji is one character but two UTF-16 code units
        assert (
            found.range.start.character == len(prefix.encode("utf-16-le")) // 2 == len(prefix) + 1
        )
        hover = await session.client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(uri), found.range.start)
        )
        assert hover.contents.kind == types.MarkupKind.Markdown
        assert hover.contents.value.startswith("# AIP402 ")
        assert docs.rule_url(registry.get_rule("AIP402")) in hover.contents.value
        fix = next(a for a in await session.actions(uri, found) if a.title == "Fix AIP402")
        assert session.apply(uri, fix).endswith('out = df["a"] * df["b"]\n')

    run_session(root, scenario)


def test_changes_are_debounced_and_config_is_the_clis(root):
    (root / "pyproject.toml").write_text(
        '[tool.aiperf-lint]\nignore = ["AIP403"]\n', encoding="utf-8"
    )

    async def scenario(session: Session) -> None:
        uri = session.open("train.py", "x = 1\n")
        assert await session.next_diagnostics(uri) == []
        for keep in range(1, len(SOURCE.splitlines()) + 1):  # typing, line by line
            session.change(uri, "".join(SOURCE.splitlines(keepends=True)[:keep]))
        diagnostics = await session.next_diagnostics(uri)
        assert [d.code for d in diagnostics] == ["AIP401"]  # AIP403 ignored by pyproject.toml
        await asyncio.sleep(1.0)
        assert session.diagnostics.empty(), "one publish for the burst of edits"
        session.client.text_document_did_save(
            types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri))
        )
        assert [d.code for d in await session.next_diagnostics(uri)] == ["AIP401"]

    run_session(root, scenario, debounce=0.5)


def test_noqa_edit_extends_an_existing_code_list():
    text = SOURCE.replace("iterrows():", "iterrows():  # noqa: E501")
    finding = next(f for f in api.check_source(text) if f.code == "AIP401")
    replacement = analysis.noqa_replacement(text, finding)
    assert analysis.apply(text, [replacement]).splitlines()[2].endswith("# noqa: E501, AIP401")


def test_no_noqa_edit_that_would_break_the_code():
    # the reported line ends in a backslash: a comment there is a syntax error
    text = "import pandas as pd\ndf = pd.read_csv('x.csv')\nout = df.apply(lambda r: r.a * r.b, axis=1) + \\\n    1\n"
    finding = next(f for f in api.check_source(text) if f.code == "AIP402")
    assert analysis.noqa_replacement(text, finding) is None


def test_missing_pygls_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pygls", None)
    assert cli.main(["server"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "aiperf-lint: error: the language server needs pygls: pip install 'aiperf-lint[lsp]'\n"
    )
