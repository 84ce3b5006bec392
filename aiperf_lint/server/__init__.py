"""`aiperf-lint server`: a Language Server (LSP over stdio) for editor diagnostics.

`analysis` is plain Python (no pygls): what to report and which edits fix or
silence a finding. `lsp` wires it to pygls, which is an optional dependency
(`pip install 'aiperf-lint[lsp]'`); `command` is what the CLI imports.
"""
