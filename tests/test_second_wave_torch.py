"""AIP112-AIP117 and the AIP103/AIP502 extensions: behaviour the VALID/INVALID snippets
cannot express (fixture pairs executed, rules that must not overlap, fixes that run)."""

from __future__ import annotations

import importlib.util
import math
import textwrap
from pathlib import Path

import pytest
import tomllib

from aiperf_lint import api

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [
    "AIP103_synchronize_every_step",
    "AIP112_empty_cache_every_step",
    "AIP113_next_iter_every_step",
    "AIP114_len_list_loader",
    "AIP115_loader_rebuilt_every_epoch",
    "AIP116_numpy_noise_to_device",
    "AIP117_item_per_element",
]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"pair_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _close(a, b, rtol: float, atol: float) -> bool:
    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and torch.allclose(a, b, rtol=rtol, atol=atol)
    if isinstance(a, float):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)
    return a == b


@pytest.mark.parametrize("name", PAIRS)
def test_pair_runs_on_cpu_and_both_sides_agree(name):
    pair = ROOT / "fixtures" / name
    meta = tomllib.loads((pair / "pair.toml").read_text())
    size = meta["sizes"]["small"]
    before, after = _load(pair / "before.py"), _load(pair / "after.py")
    expected = before.run(before.setup(size, "cpu"))
    got = after.run(after.setup(size, "cpu"))
    tolerance = meta["tolerance"]
    assert _close(expected, got, tolerance["rtol"], tolerance["atol"])


def _codes(source: str, select: list[str]) -> list[str]:
    return [f.code for f in api.check_source(textwrap.dedent(source), select=select)]


def test_element_reads_are_aip117_not_also_aip103():
    source = """
    import torch
    for x, _ in loader:
        preds = model(x.cuda()).argmax(1)
        for i in range(len(preds)):
            counts[int(preds[i])] += 1
        total += preds.sum().item()
    """
    assert sorted(_codes(source, ["AIP103", "AIP117"])) == ["AIP103", "AIP117"]


def test_cache_flush_through_a_helper_names_both():
    source = """
    import torch
    def clear_torch_cache():
        torch.cuda.empty_cache()
    for x in loader:
        out = model(x.cuda())
        clear_torch_cache()
    """
    (finding,) = api.check_source(textwrap.dedent(source), select=["AIP112"])
    assert "`clear_torch_cache()`" in finding.message
    assert "`torch.cuda.empty_cache()`" in finding.message
    assert finding.line == 7


@pytest.mark.parametrize(
    "draw",
    [
        "torch.from_numpy(np.random.randn(3, 4)).to(device)",
        "torch.from_numpy(np.random.rand(3, 4)).float().to(device)",
        "torch.tensor(np.random.normal(0, 1, (3, 4)), device=device)",
        "torch.from_numpy(np.random.normal(2.0, 0.5, (3, 4))).to(device)",
        "torch.from_numpy(np.random.randint(0, 5, (3, 4))).to(device)",
        "torch.from_numpy(np.random.randint(0, 5, 12)).float().to(device)",
    ],
)
def test_host_random_fix_keeps_shape_dtype_and_device(draw):
    source = textwrap.dedent(
        f"""
        import numpy as np
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
        out = []
        for x in loader:
            z = {draw}
            out.append(z)
            model(x.to(device))
        """
    )
    fixed = api.fix_source(source, unsafe=True, select=["AIP116"])
    assert fixed != source and "np.random" not in fixed.split("for x in loader:")[1]

    def draw_with(code: str):
        scope = {"loader": [torch.zeros(1)], "model": lambda x: x}
        exec(compile(code, "<snippet>", "exec"), scope)
        return scope["out"][0]

    old, new = draw_with(source), draw_with(fixed)
    assert (old.shape, old.dtype, old.device) == (new.shape, new.dtype, new.device)


def test_count_fix_gives_the_same_number_as_counting():
    source = textwrap.dedent(
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        loader = DataLoader(TensorDataset(torch.arange(103)), batch_size=10, drop_last=True)
        n = len(list(loader))
        """
    )
    fixed = api.fix_source(source, select=["AIP114"])
    assert "n = len(loader)" in fixed
    before, after = {}, {}
    exec(source, before)
    exec(fixed, after)
    assert before["n"] == after["n"] == 10


def test_token_stream_in_a_sync_generator_is_not_reported_but_in_async_is():
    source = """
    from transformers import TextIteratorStreamer
    streamer = TextIteratorStreamer(tok)
    def sync_tokens():
        for t in streamer:
            yield t
    async def async_tokens():
        for t in streamer:
            yield t
    """
    findings = api.check_source(textwrap.dedent(source), select=["AIP502"])
    assert [f.line for f in findings] == [8]
