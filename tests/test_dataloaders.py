"""Data-pipeline facts (aiperf_lint/dataloaders.py) and the keyword-argument fix helper."""

from __future__ import annotations

import textwrap

import libcst as cst

from aiperf_lint.dataloaders import with_keyword_args
from aiperf_lint.semantic import Context


class _LoaderFacts(cst.CSTVisitor):
    """Collects ctx.loader_call() facts the way a rule sees them (Context entered first)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.found = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.ctx.enter(node)
        if isinstance(node, cst.Call):
            facts = self.ctx.loader_call(node)
            if facts is not None:
                self.found.append(facts)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.ctx.leave(original_node)


def _loaders(source: str):
    module = cst.parse_module(textwrap.dedent(source))
    ctx = Context(module)
    collector = _LoaderFacts(ctx)
    module.visit(collector)
    return ctx, collector.found


def _call(source: str) -> cst.Call:
    return cst.parse_expression(textwrap.dedent(source).strip())


def _render(call: cst.Call) -> str:
    return cst.Module(body=[]).code_for_node(call)


def test_keyword_appended_on_one_line():
    call = with_keyword_args(_call("f(a, b=1)"), {"c": cst.Name("True")})
    assert _render(call) == "f(a, b=1, c=True)"


def test_keyword_replaced_in_place():
    call = with_keyword_args(_call("f(a, num_workers=0, b=1)"), {"num_workers": cst.Integer("4")})
    assert _render(call) == "f(a, num_workers=4, b=1)"


def test_keyword_appended_keeps_multiline_layout():
    source = "f(\n    a,\n)"
    call = with_keyword_args(_call(source), {"c": cst.Name("True")})
    assert _render(call) == "f(\n    a,\n    c=True,\n)"


def test_loader_facts_resolve_dataset_class_and_binding():
    _ctx, (facts,) = _loaders(
        """
        import torch.utils.data as tud
        class Images(tud.Dataset):
            def __getitem__(self, i):
                return self.transform(i)
        ds = Images()
        train_loader = tud.DataLoader(ds, 32, True, None, None, 4)
        """
    )
    assert facts.dataset_class is not None and facts.dataset_class.name == "Images"
    assert facts.bound_to == "train_loader"
    assert isinstance(facts.argument("num_workers"), cst.Integer)  # 6th positional
    assert facts.argument("pin_memory") is None


def test_cuda_fact_needs_both_a_transfer_in_a_loader_loop_and_a_cuda_target():
    gpu, _ = _loaders(
        """
        from torch.utils.data import DataLoader
        loader = DataLoader(ds)
        for x in loader:
            x = x.to(dev)
        dev = "cuda:1"
        """
    )
    assert gpu.pipeline().moves_batches_to_cuda
    transfer_outside_loop, _ = _loaders(
        """
        from torch.utils.data import DataLoader
        model = model.to("cuda")
        loader = DataLoader(ds)
        for x in loader:
            print(x)
        """
    )
    assert not transfer_outside_loop.pipeline().moves_batches_to_cuda


def test_per_epoch_and_one_batch_uses():
    ctx, (fit_loader, preview) = _loaders(
        """
        from torch.utils.data import DataLoader
        def main():
            train = DataLoader(ds, num_workers=2)
            preview = DataLoader(ds)
            batch = next(iter(preview))
            trainer.fit(model, train)
        """
    )
    pipeline = ctx.pipeline()
    assert pipeline.iterated_per_epoch(fit_loader)
    assert not pipeline.used_for_one_batch_only(fit_loader)
    assert pipeline.used_for_one_batch_only(preview)
    assert not pipeline.iterated_per_epoch(preview)


def test_same_name_in_another_function_is_not_confused():
    ctx, (first, second) = _loaders(
        """
        from torch.utils.data import DataLoader
        def evaluate():
            loader = DataLoader(ds, num_workers=2)
            for x in loader:
                score(x)
        def train():
            loader = DataLoader(ds, num_workers=2)
            for epoch in range(3):
                for x in loader:
                    step(x)
        """
    )
    assert not ctx.pipeline().iterated_per_epoch(first)
    assert ctx.pipeline().iterated_per_epoch(second)
