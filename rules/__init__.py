"""The rules: one module per rule, discovered by `aiperf_lint.registry`.

Shipped inside the wheel as the `aiperf_lint.rules` package.
"""
