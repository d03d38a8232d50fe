"""The paper's ablations as named groups of runs, each printed as one comparison table.

    table2  audio features: openSMILE, Mel CNN, pretrained       (paper Table 2)
    table3  text-only vs concatenation vs fusion network         (paper Table 3)
    table4  single-loss vs multi-loss, concatenation model      (paper Table 4)
    table5  text subnet: text-only training vs multi-loss head  (paper Table 5)
    table6  fusion variants: fused only, + concat, + transformer (paper Table 6)

The paper's Table 4 rows equal its Table 3 "concatenation" row, so the
multi-loss comparison is run on the concatenation model, as the authors did.
Table 2 compares audio encoders on the audio-only model: hand-crafted
features trained from scratch against the run's pretrained audio encoder
(`--audio-encoder`). Each arm trains in a directory named after what it
changes, so groups that share an arm (the fused model appears in tables 3, 5
and 6) reuse its run when given the same output directory.
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
    """One row of a comparison: a variant, its loss weights (fused, text, audio), the head it reports,
    and the audio encoder it trains (None: the run's own)."""

    label: str
    variant: FusionVariant
    weights: tuple[float, float, float] = MULTI
    head: str = "fused"
    audio_encoder: str | None = None

    def apply(self, base: TrainConfig) -> TrainConfig:
        fused, text, audio = self.weights
        audio_config = replace(base.model.audio, name_or_path=self.audio_encoder or base.model.audio.name_or_path)
        fusion = replace(base.model.fusion, variant=self.variant)
        model = replace(base.model, audio=audio_config, fusion=fusion)
        return replace(base, model=model, loss=LossConfig(base.loss.kind, fused, text, audio))


@dataclass(frozen=True)
class Experiment:
    """Arms printed as one table; `columns` (metric set -> metrics) narrows it to the paper's columns."""

    title: str
    arms: tuple[Arm, ...]
    columns: dict[str, tuple[str, ...]] | None = None
    row_header: str = ""


EXPERIMENTS: dict[str, Experiment] = {
    "table2": Experiment(
        "Audio feature selection (paper Table 2)",
        (
            # The paper's one openSMILE row; opensmile:ComParE_2016 is one `--audio-encoder` away in `fit`.
            Arm("openSMILE (eGeMAPS)", "audio-only", audio_encoder="opensmile:eGeMAPSv02"),
            Arm("Mel Spectrogram (CNN)", "audio-only", audio_encoder="mel-cnn"),
            Arm("pretrained encoder", "audio-only"),
        ),
        columns={"mosi": ("Has0_acc_2", "Non0_acc_2"), "sims": ("Acc2",)},
        row_header="Feature name",
    ),
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
    """Directory name of a run: its variant and, for two-modality models, its loss weights; an audio-only
    model's also names its audio encoder (the last part of a path: `audio-only_opensmile-eGeMAPSv02`)."""
    variant = config.model.fusion.variant.replace("+", "-")
    if variant == "audio-only":
        encoder = Path(config.model.audio.name_or_path.rstrip("/")).name.replace(":", "-")
        return f"{variant}_{encoder}"
    if variant == "text-only":
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
    if any(arm.audio_encoder for arm in experiment.arms):
        caption += f" The pretrained encoder is {base.model.audio.name_or_path}."
    table = report.markdown_table(rows, base.data.dataset, caption)
    if experiment.columns:  # the paper's layout first, every metric below it
        columns = experiment.columns[report.metric_set(base.data.dataset)]
        table = report.markdown_table(rows, base.data.dataset, columns=columns, row_header=experiment.row_header)
        table += "\n" + report.markdown_table(rows, base.data.dataset, caption)
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
