"""PyTorch rules AIP101-AIP105: behaviour the VALID/INVALID snippets cannot express."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest
import tomllib

from aiperf_lint import api
from aiperf_lint.patterns import device_move
from aiperf_lint.semantic import Context

ROOT = Path(__file__).resolve().parent.parent
TORCH_PAIRS = sorted(
    p for p in (ROOT / "fixtures").iterdir() if p.name[:6] in {f"AIP10{i}" for i in range(1, 6)}
)


def _codes(source: str, select=("AIP101", "AIP102", "AIP103", "AIP104", "AIP105")) -> list[str]:
    return [f.code for f in api.check_source(textwrap.dedent(source), select=list(select))]


def _fix(source: str, unsafe: bool = False, select=("ALL",)) -> str:
    return api.fix_source(textwrap.dedent(source), unsafe=unsafe, select=list(select))


# ---------------------------------------------------------------- shared helper


def _classify(source: str) -> list[str]:
    """What device_move makes of every `.to`/`.cuda` call in source (in order)."""
    module = cst.parse_module(textwrap.dedent(source))
    ctx = Context(module)
    found = []

    class Walk(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            move = device_move(ctx, node)
            if isinstance(node.func, cst.Attribute) and node.func.attr.value in {"to", "cuda"}:
                found.append("cpu" if move and move.to_cpu else "move" if move else "no")

    module.visit(Walk())
    return found


def test_device_move_tells_moves_from_casts():
    source = """
    import torch
    a.to(device)
    a.to("cuda:1")
    a.to(torch.device("cuda"))
    a.cuda()
    a.to(device=dev, dtype=torch.float16)
    a.to(torch.float16)
    a.to(dtype)
    a.to(x.dtype)
    a.to("cpu")
    a.to(unknown_thing)
    """
    assert _classify(source) == [
        "move",
        "move",
        "move",
        "move",
        "move",
        "no",
        "no",
        "no",
        "cpu",
        "no",
    ]


# ---------------------------------------------------------------- fixes


def test_aip101_offers_no_fix_where_the_issue_says_so():
    source = """
    import torch
    a = torch.zeros(3).to(device, non_blocking=True)
    b = torch.zeros(3, requires_grad=True).cuda()
    c = torch.ones(3).to(device, memory_format=torch.channels_last)
    d = torch.zeros(3).cuda(index)
    """
    assert _codes(source) == ["AIP101"] * 4
    assert _fix(source, unsafe=True, select=["AIP101"]) == textwrap.dedent(source)


def test_aip101_random_factory_fix_is_unsafe_only():
    source = "import torch\nnoise = torch.randn(4, 100).cuda()\n"
    assert _fix(source, select=["AIP101"]) == source
    assert _fix(source, unsafe=True, select=["AIP101"]) == (
        'import torch\nnoise = torch.randn(4, 100, device="cuda")\n'
    )


def test_aip101_keeps_a_multiline_trailing_comma():
    source = "import torch\nx = torch.zeros(\n    3,\n    4,\n).to(device)\n"
    assert _fix(source, select=["AIP101"]) == (
        "import torch\nx = torch.zeros(\n    3,\n    4, device=device,\n)\n"
    )


def test_aip102_hoist_keeps_comments_and_the_rest_of_the_body():
    source = """
    import torch

    # training
    for x, y in loader:
        x = x.to(device)
        # the model
        model.to(device)
        step(model, x, y)
    """
    fixed = _fix(source, unsafe=True, select=["AIP102"])
    assert fixed == textwrap.dedent(
        """
        import torch

        # training
        # the model
        model.to(device)
        for x, y in loader:
            x = x.to(device)
            step(model, x, y)
        """
    )


def test_aip104_fix_uses_the_torch_alias_and_respects_existing_decorators():
    source = """
    import torch as T
    class Model(T.nn.Module):
        @staticmethod
        def predict(model, x):
            return model(x)
    """
    assert _fix(source, unsafe=True, select=["AIP104"]) == textwrap.dedent(
        """
        import torch as T
        class Model(T.nn.Module):
            @staticmethod
            @T.inference_mode()
            def predict(model, x):
                return model(x)
        """
    )


def test_aip104_one_report_per_function_and_no_report_in_training():
    source = """
    import torch
    def validate(model, loader):
        model.eval()
        for x, y in loader:
            a = model(x)
            b = model(y)
    def train(model, loader, opt):
        model.train()
        for x, y in loader:
            loss = model(x).sum()
            loss.backward()
            opt.step()
    """
    findings = api.check_source(textwrap.dedent(source), select=["AIP104"])
    assert [(f.code, f.line) for f in findings] == [("AIP104", 6)]


def test_aip104_pytest_tests_are_left_alone_but_the_same_code_elsewhere_is_not():
    source = "import torch\ndef test_forward(model, x):\n    return model(x)\n"
    assert api.check_source(source, path="tests/test_model.py", select=["AIP104"]) == []
    assert len(api.check_source(source, path="evaluate.py", select=["AIP104"])) == 1


def test_aip105_mixed_import_keeps_other_names():
    source = """
    from torch.cuda.amp import autocast, custom_fwd
    with autocast():
        pass
    """
    assert _fix(source, select=["AIP105"]) == textwrap.dedent(
        """
        from torch.cuda.amp import autocast, custom_fwd
        import torch
        with torch.amp.autocast("cuda"):
            pass
        """
    )


def test_aip105_star_args_are_reported_without_fix():
    source = "import torch\nwith torch.cuda.amp.autocast(*flags):\n    pass\n"
    assert _codes(source) == ["AIP105"]
    assert _fix(source, select=["AIP105"]) == source


# ---------------------------------------------------------------- interplay


def test_rules_do_not_double_report_the_per_batch_idiom():
    source = """
    import torch
    for step, (x, y) in enumerate(train_loader):
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"{step}: {loss.item():.3f}")
    """
    assert _codes(source) == []


def test_a_training_script_gets_each_rule_once():
    source = """
    import torch
    from torch.cuda.amp import GradScaler, autocast
    scaler = GradScaler()
    weights = torch.tensor([0.2, 0.8]).to(device)
    for x, y in train_loader:
        model.to(device)
        with autocast():
            loss = criterion(model(x.to(device)), y.to(device))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        total += loss.item()
    """
    assert sorted(_codes(source)) == ["AIP101", "AIP102", "AIP103", "AIP105", "AIP105"]
    fixed = _fix(source, unsafe=True)
    assert _codes(fixed) == ["AIP103"]  # the only rule without a fix
    assert _fix(fixed, unsafe=True) == fixed


# ---------------------------------------------------------------- fixture pairs


@pytest.mark.parametrize("pair", TORCH_PAIRS, ids=lambda p: p.name)
def test_torch_pairs_round_trip(pair):
    meta = tomllib.loads((pair / "pair.toml").read_text())
    before = (pair / "before.py").read_text()
    after = (pair / "after.py").read_text()
    assert meta["rule"] in {f.code for f in api.check_source(before)}
    assert api.check_source(after) == []  # default rules
    assert "device" in before.split("def setup(size, device):", 1)[1].split("def run", 1)[0]
    if meta["fix"] != "none":
        unsafe = meta["fix"] == "unsafe"
        assert api.fix_source(before, unsafe=unsafe) == after
        assert api.fix_source(after, unsafe=unsafe) == after


def test_torch_pairs_exist_for_every_rule():
    assert {p.name[:6] for p in TORCH_PAIRS} == {f"AIP10{i}" for i in range(1, 6)}


def test_cuda_only_claims_are_declared():
    claims = {
        p.name[:6]: tomllib.loads((p / "pair.toml").read_text())["claim"] for p in TORCH_PAIRS
    }
    assert claims["AIP101"]["devices"] == ["cuda"]
    assert claims["AIP103"]["devices"] == ["cuda"]
    assert claims["AIP104"]["metric"] == "memory"
