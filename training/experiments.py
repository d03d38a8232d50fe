"""The paper's ablations as named groups of runs, each printed as one comparison table.

    table3  text-only vs concatenation vs fusion network         (paper Table 3)
    table4  single-loss vs multi-loss, concatenation model      (paper Table 4)
    table5  text subnet: text-only training vs multi-loss head  (paper Table 5)
    table6  fusion variants: fused only, + concat, + transformer (paper Table 6)

The paper's Table 4 rows equal its Table 3 "concatenation" row, so the
multi-loss comparison is run on the concatenation model, as the authors did.
Each arm trains in a directory named after what it changes, so groups that
share an arm (the fused model appears in tables 3, 5 and 6) reuse its run
when given the same output directory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmml.atomic import write_text_atomic
from mmml.config import FusionVariant

from . import report
from .config import LossConfig, TrainConfig
from .trainer import Runtime, fit

MULTI = (1.0, 1.0, 1.0)
FUSED_ONLY = (1.0, 0.0, 0.0)


@dataclass(frozen=True)
class Arm:
    """One row of a comparison: a variant, its loss weights (fused, text, audio), the head it reports."""

    label: str
    variant: FusionVariant
    weights: tuple[float, float, float] = MULTI
    head: str = "fused"

    def apply(self, base: TrainConfig) -> TrainConfig:
        fused, text, audio = self.weights
        model = replace(base.model, fusion=replace(base.model.fusion, variant=self.variant))
        return replace(base, model=model, loss=LossConfig(base.loss.kind, fused, text, audio))


@dataclass(frozen=True)
class Experiment:
    title: str
    arms: tuple[Arm, ...]


EXPERIMENTS: dict[str, Experiment] = {
    "table3": Experiment(
        "Concatenation vs. transformer fusion (paper Table 3)",
        (Arm("text-only", "text-only"), Arm("concatenation", "concat"), Arm("+ fusion network", "fused")),
    ),
    "table4": Experiment(
        "Single-loss vs. multi-loss training (paper Table 4)",
        (Arm("single-loss", "concat", FUSED_ONLY), Arm("multi-loss", "concat")),
    ),
    "table5": Experiment(
        "Impact of multi-loss on the text subnet (paper Table 5)",
        (Arm("text-loss only", "text-only"), Arm("multi-loss (text head)", "fused", head="text")),
    ),
    "table6": Experiment(
        "Comparative performance of model variations (paper Table 6)",
        (
            Arm("Fused Features Only", "fused"),
            Arm("Concatenation", "fused+concat"),
            Arm("Transformer", "fused+transformer"),
        ),
    ),
}


def run_name(config: TrainConfig) -> str:
    """Directory name of a run: its variant and, for two-modality models, its loss weights."""
    variant = config.model.fusion.variant.replace("+", "-")
    if variant in ("text-only", "audio-only"):
        return variant
    loss = config.loss
    return f"{variant}_loss-f{loss.fused:g}-t{loss.text:g}-a{loss.audio:g}"


def run_experiment(name: str, base: TrainConfig, out: Path, runtime: Runtime) -> dict[str, Any]:
    """Train every arm of experiment `name` under `out` and write comparison.{json,md} there."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    experiment = EXPERIMENTS[name]
    rows, runs = {}, {}
    for arm in experiment.arms:
        config = arm.apply(base)
        directory = Path(out) / run_name(config)
        runtime.log(f"{name}: {arm.label} -> {directory}")
        summary = fit(config, directory, runtime)
        rows[arm.label] = summary["test"][arm.head]
        runs[arm.label] = {"run": str(directory), "head": arm.head}
    caption = (
        f"{experiment.title}; {base.data.dataset} test split, mean ± std over seeds "
        f"{', '.join(str(s) for s in base.seeds)}; accuracies and F1 in %, MAE and Corr ×100."
    )
    table = report.markdown_table(rows, base.data.dataset, caption)
    comparison = {
        "experiment": name,
        "title": experiment.title,
        "dataset": base.data.dataset,
        "rows": rows,
        "runs": runs,
    }
    report.write_json(comparison, Path(out) / f"{name}.json")
    write_text_atomic(table, Path(out) / f"{name}.md")
    return {**comparison, "markdown": table}
