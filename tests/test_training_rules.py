"""AIP106, AIP108-AIP111: behaviour the VALID/INVALID snippets cannot express."""

from __future__ import annotations

import textwrap

import libcst as cst

from aiperf_lint import api
from aiperf_lint.semantic import Context


def _codes(source: str, select=("ALL",)) -> list[str]:
    return [f.code for f in api.check_source(textwrap.dedent(source), select=list(select))]


# ---------------------------------------------------------------- semantic facts


def _grad_names(source: str) -> dict[str, bool]:
    """Binding.grad of every name assigned at module level, as the traversal leaves it."""
    module = cst.parse_module(textwrap.dedent(source))
    ctx = Context(module)
    seen: dict[str, bool] = {}

    class Walk(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            ctx.enter(node)
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            if isinstance(original_node, (cst.Assign, cst.AugAssign)):
                for name, binding in ctx.scopes[-1].names.items():
                    seen[name] = binding.grad
            ctx.leave(original_node)

    module.visit(Walk())
    return seen


def test_carries_grad_follows_losses_forwards_and_their_arithmetic():
    grads = _grad_names(
        """
        import torch
        import torch.nn.functional as F
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss = loss / accum
        scaled = loss * 2
        logits, aux = model(x)
        value = loss.item()
        detached = loss.detach()
        correct = (out.argmax(1) == y).sum()
        criterion = torch.nn.MSELoss()
        with torch.no_grad():
            val = model(x_val)
        """
    )
    assert grads["out"] and grads["loss"] and grads["scaled"]
    assert grads["logits"] and grads["aux"]  # unpacked from a forward
    assert not grads["value"] and not grads["detached"] and not grads["correct"]
    assert not grads["criterion"]  # a Module, not a loss value
    assert not grads["val"]  # computed with grad off


def test_carries_grad_needs_torch():
    grads = _grad_names("loss = criterion(model(x), y)\n")
    assert grads == {"loss": False}


# ---------------------------------------------------------------- AIP106


def test_aip106_is_opt_in():
    source = """
    import torch
    for x, y in loader:
        x = x.cuda()
        model(x).sum().backward()
    """
    assert "AIP106" not in [f.code for f in api.check_source(textwrap.dedent(source))]
    assert _codes(source, select=["AIP106"]) == ["AIP106"]


def test_aip106_reports_each_loop_once():
    source = """
    import torch
    for x, y in loader:
        x = x.cuda()
        model(x).sum().backward()
        aux(x).sum().backward()
    for x in other_loader:
        x = x.to("cuda:1")
        model(x).sum().backward()
    """
    assert _codes(source, select=["AIP106"]) == ["AIP106", "AIP106"]


# ---------------------------------------------------------------- AIP108


def test_aip108_message_recommends_detach_not_a_sync():
    source = """
    import torch
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        total += loss
    """
    (finding,) = api.check_source(textwrap.dedent(source), select=["AIP108"])
    assert "loss.detach()" in finding.message
    assert ".item()" not in finding.message and "float(" not in finding.message


def test_aip108_fix_is_unsafe_only():
    source = textwrap.dedent(
        """
        import torch
        for x, y in loader:
            loss = criterion(model(x), y)
            loss.backward()
            total += loss
        """
    )
    assert api.fix_source(source, select=["AIP108"]) == source
    assert "total += loss.detach()" in api.fix_source(source, select=["AIP108"], unsafe=True)


# ---------------------------------------------------------------- AIP110


def test_aip110_debug_branch_covers_elif_and_debug_functions():
    source = """
    import torch
    if args.fast:
        pass
    elif args.debug:
        torch.autograd.set_detect_anomaly(True)
    def debug_run():
        torch.autograd.set_detect_anomaly(True)
    if args.fast:
        torch.autograd.set_detect_anomaly(True)
    """
    findings = api.check_source(textwrap.dedent(source), select=["AIP110"])
    assert [f.line for f in findings] == [10]


# ---------------------------------------------------------------- AIP111


def test_aip111_fix_keeps_surrounding_code():
    source = "import torch\nopt.zero_grad(set_to_none=False)  # clear\nopt.step()\n"
    fixed = api.fix_source(source, select=["AIP111"], unsafe=True)
    assert fixed == "import torch\nopt.zero_grad()  # clear\nopt.step()\n"
    assert api.fix_source(source, select=["AIP111"]) == source
