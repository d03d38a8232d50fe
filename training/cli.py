"""`mmml-train`: train MMML, evaluate checkpoints, run the paper's ablation groups.

    mmml-train fit --data CORPUS --out RUN [options]            train every seed, summary.json + summary.md
    mmml-train evaluate CHECKPOINT --data CORPUS --split test   metrics of one head on one split
    mmml-train experiment table2|table3|table4|table5|table6 --data CORPUS --out DIR [options]
    mmml-train default [--seeds 1111,1112,1113]                 train and install the default model
    mmml-train set-default CHECKPOINT                           make a trained checkpoint the default

CORPUS is an MMSA-layout directory (label.csv + Raw/ or wav/) or a label.csv
itself; a text-only run needs no media. Every training option defaults to
the paper unless `--config` names a saved `train_config.json`;
options given on the command line override it.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import transformers

from mmml.cli_help import GroupedCommand, option_in
from mmml.config import FUSION_VARIANTS, TEXT_POOLINGS, preset

from . import report
from .config import DATASETS, CorpusConfig, TrainConfig, load_train_config
from .dataset import SPLITS
from .default_model import DATA_DIR_ENV, LICENCE, RECIPE_SEEDS, install_default, train_default
from .experiments import EXPERIMENTS, run_experiment
from .trainer import Runtime, evaluate_checkpoint, fit, resolve_device

MODALITIES = {"text": "text-only", "audio": "audio-only", "text,audio": None, "audio,text": None}


# Where `--help` lists an option: what every run needs first, then by subject.
ESSENTIAL, MODEL, OPTIMISATION, DATA, RUNTIME = (
    "Essential options",
    "Model",
    "Optimisation and loss",
    "Training data",
    "Runtime",
)
HELP_GROUPS = (ESSENTIAL, MODEL, OPTIMISATION, DATA, RUNTIME)
_essential, _model, _optim, _data, _runtime_option = map(option_in, HELP_GROUPS)


_POSITIVE = click.FloatRange(min=0, min_open=True)


def _share(flag: str, help: str) -> Callable:
    """A training-data option that is a share of rows, 0 to 1 (`training.composition`); none by default."""
    return _data(flag, type=click.FloatRange(0, 1), help=f"{help} [default: 0]")


def _common_options(command: Callable) -> Callable:
    """Options shared by `fit` and `experiment`: data, encoders, optimisation, runtime.

    They default to None: a value given overrides the saved `--config` or the
    paper's preset, whose values the help states.
    """
    options = [
        _essential(
            "--data",
            multiple=True,
            help="Corpus directory (label.csv + Raw/ or wav/) or a label.csv file; repeat to train on "
            "several. Per corpus, append ':labels=audio' (its label describes the voice, not the "
            "words: the text head learns nothing from it), ':dataset=mosi', ':per_epoch=N' (a fresh "
            "draw of N training clips each epoch), ':voices' (its neutral training clips lend their voice "
            "to other corpora's transcripts, see --voiced).",
        ),
        _essential(
            "--out",
            required=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="Run directory; an interrupted run in it is resumed.",
        ),
        _essential(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Start from a saved train_config.json; other options override it.",
        ),
        _essential(
            "--dataset",
            type=click.Choice(list(DATASETS)),
            help="Metric set of every --data without its own: sims for [-1, 1] labels, the MOSI set "
            "otherwise. [default: custom]",
        ),
        _essential(
            "--language",
            type=click.Choice(["en", "zh"]),
            default="en",
            show_default=True,
            help="The paper's encoder pair for this language (en: RoBERTa-large + Data2Vec-audio; zh: Chinese "
            "RoBERTa + HuBERT; paper section 3.1).",
        ),
        _essential(
            "--text-encoder",
            help="Hub id, local directory or packaged: alias of the text encoder. [default: the --language pair's]",
        ),
        _essential(
            "--audio-encoder",
            help="Hub id, local directory or packaged: alias of the audio encoder; or a hand-crafted feature "
            "encoder trained from scratch (paper Table 2): opensmile:eGeMAPSv02, opensmile:ComParE_2016 "
            "(any openSMILE feature set), mel-cnn. [default: the --language pair's]",
        ),
        _essential("--seeds", help="Comma-separated seeds. [default: 1111,1112,1113]"),
        _essential("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        _model("--fusion-layers", type=click.IntRange(min=1), help="Fusion layers. [default: 5]"),
        _model("--dropout", type=click.FloatRange(0, 1), help="Dropout of fusion and heads. [default: 0.3]"),
        _model(
            "--gate/--no-gate",
            default=None,
            help="Dynamic fusion: the fused score mixes the text, audio and fused heads per utterance. [default: off]",
        ),
        _model(
            "--text-pooling",
            type=click.Choice(TEXT_POOLINGS),
            help="What the text head reads: the first token's state (the paper's) or the tokens' mean, the pooling "
            "sentence encoders such as MiniLM were trained with. [default: cls]",
        ),
        _model("--max-tokens", type=click.IntRange(min=2), help="Text truncation in tokens. [default: 96 en, 64 zh]"),
        _model("--max-seconds", type=click.FloatRange(min=0.1), help="Audio truncation in seconds. [default: 6]"),
        _optim("--loss", type=click.Choice(["mse", "l1"]), help="Regression loss. [default: mse]"),
        _optim("--lr", type=_POSITIVE, help="AdamW learning rate. [default: 1e-5]"),
        _optim("--fusion-lr", type=_POSITIVE, help="Learning rate of the fusion network and heads. [default: --lr]"),
        _optim(
            "--lr-schedule",
            type=click.Choice(["constant", "linear"]),
            help="linear: learning rates fall to 0 at the end of --max-epochs. [default: constant]",
        ),
        _optim("--weight-decay", type=click.FloatRange(min=0), help="AdamW weight decay. [default: 0.01]"),
        _optim("--batch-size", type=click.IntRange(min=1), help="Clips per batch. [default: 16]"),
        _optim("--grad-accumulation", type=click.IntRange(min=1), help="Batches per optimiser step. [default: 1]"),
        _optim("--max-epochs", type=click.IntRange(min=1), help="Upper bound on epochs. [default: 100]"),
        _optim("--patience", type=click.IntRange(min=1), help="Early-stopping patience in epochs. [default: 8]"),
        _optim("--max-grad-norm", type=_POSITIVE, help="Clip gradients to this norm. [default: no clipping]"),
        _data(
            "--skip-bad-media",
            is_flag=True,
            default=None,
            help="Leave out clips whose media is missing or undecodable, and report how many. [default: refuse]",
        ),
        _data(
            "--trim-silence/--no-trim-silence",
            default=None,
            help="Cut training clips to their speech (Silero VAD), as annotation cuts utterances. [default: off]",
        ),
        _share(
            "--voiced",
            "Share of transcript-only training rows heard in a neutral voice of a ':voices' corpus "
            "(targets: the transcript's label; the audio head the voice's).",
        ),
        _share(
            "--other-speakers",
            "Share of voiced rows whose lent voice is heard as another speaker's (pitch within ±4 semitones, "
            "rate within ±15 %).",
        ),
        _share(
            "--emotional",
            "Share of voiced rows lent any voice of the ':voices' corpus, emotional ones included (targets: "
            "fused and text the transcript's label, audio the voice's).",
        ),
        _share("--wordless", "Share of ':labels=audio' training rows trained with their words missing."),
        _share(
            "--augment",
            "Share of training clips heard through random recording conditions (room, telephone band, noise, "
            "MP3, level).",
        ),
        _data(
            "--audio-cache", type=click.Path(file_okay=False), help="Decoded-audio cache. [default: $MMML_CACHE/audio]"
        ),
        _runtime_option("--amp/--no-amp", default=None, help="Mixed precision (CUDA only). [default: off]"),
        _runtime_option(
            "--length-batching/--no-length-batching",
            default=None,
            help="Batch clips of similar length together. [default: on]",
        ),
        _runtime_option("--quiet", is_flag=True, help="No progress bars."),
    ]
    return functools.reduce(lambda cmd, option: option(cmd), reversed(options), command)


def build_config(options: dict[str, Any]) -> TrainConfig:
    """The run's TrainConfig: a saved one or the paper's defaults, with the given options applied."""
    if options["config_file"]:
        base = load_train_config(options["config_file"])
    else:
        base = TrainConfig(model=preset(options["language"]))
    model, data, loss, optim, stop = base.model, base.data, base.loss, base.optim, base.early_stop

    def given(**pairs: Any) -> dict[str, Any]:
        return {field: options[name] for field, name in pairs.items() if options.get(name) is not None}

    model = replace(
        model,
        text=replace(model.text, **given(name_or_path="text_encoder", max_tokens="max_tokens", pooling="text_pooling")),
        audio=replace(model.audio, **given(name_or_path="audio_encoder", max_seconds="max_seconds")),
        fusion=replace(
            model.fusion, **given(layers="fusion_layers", dropout="dropout", variant="variant", gate="gate")
        ),
    )
    if options.get("data"):
        data = replace(data, corpora=tuple(parse_corpus(spec, options.get("dataset")) for spec in options["data"]))
    elif options.get("dataset"):
        data = replace(data, corpora=tuple(replace(c, dataset=options["dataset"]) for c in data.corpora))
    data = replace(
        data,
        compose=replace(
            data.compose,
            **given(voiced="voiced", wordless="wordless", other_speakers="other_speakers", emotional="emotional"),
        ),
        **given(
            skip_bad_media="skip_bad_media", audio_cache="audio_cache", trim_silence="trim_silence", augment="augment"
        ),
    )
    loss = replace(loss, **given(kind="loss", fused="fused_weight", text="text_weight", audio="audio_weight"))
    optim = replace(
        optim,
        **given(
            lr="lr",
            fusion_lr="fusion_lr",
            lr_schedule="lr_schedule",
            weight_decay="weight_decay",
            batch_size="batch_size",
            grad_accumulation="grad_accumulation",
            max_epochs="max_epochs",
            max_grad_norm="max_grad_norm",
            mixed_precision="amp",
            length_batching="length_batching",
        ),
    )
    stop = replace(stop, **given(patience="patience"))
    seeds = _seeds(options["seeds"]) if options.get("seeds") else base.seeds
    if not data.corpora:
        raise click.UsageError("--data is required (a corpus directory or a label.csv)")
    return TrainConfig(model=model, data=data, loss=loss, optim=optim, early_stop=stop, seeds=seeds)


_CORPUS_OPTIONS = re.compile(r"^(?P<path>.+?)((?::(?:(?:labels|dataset|per_epoch)=[a-z0-9,]+|voices))+)$")


def parse_corpus(spec: str, default_dataset: str | None) -> CorpusConfig:
    """`PATH[:labels=audio][:dataset=mosi][:per_epoch=N][:voices]` as a corpus of the run."""
    match = _CORPUS_OPTIONS.match(spec)
    path, options = (match["path"], spec[len(match["path"]) + 1 :].split(":")) if match else (spec, [])
    values = dict(option.split("=", 1) if "=" in option else (option, "") for option in options)
    dataset = values.get("dataset", default_dataset or "custom")
    if dataset not in DATASETS:
        raise click.BadParameter(f"{spec!r}: unknown dataset {dataset!r} ({', '.join(DATASETS)})", param_hint="--data")
    labels = tuple(values.get("labels", "text,audio").split(","))
    try:
        per_epoch = int(values["per_epoch"]) if "per_epoch" in values else None
        return CorpusConfig(path, dataset, labels, per_epoch, lends_voices="voices" in values)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--data") from None


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated integers", param_hint="--seeds") from None


def _variant(modalities: str | None, variant: str | None) -> str | None:
    """--modalities text/audio selects the single-modality baseline; it cannot be combined with another variant."""
    if modalities is None:
        return variant
    single = MODALITIES[modalities]
    if single and variant and variant != single:
        raise click.UsageError(
            f"--modalities {modalities} trains the {single} model; it cannot use --variant {variant}"
        )
    return single or variant


def _runtime(options: dict[str, Any]) -> Runtime:
    if options["quiet"]:
        transformers.utils.logging.disable_progress_bar()  # its weight-loading bars too
    return Runtime(
        device=resolve_device(options["device"]), progress=not options["quiet"], log=lambda m: click.echo(m, err=True)
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def cli() -> None:
    """Train and evaluate MMML (text + audio sentiment) on MMSA-layout corpora."""


@cli.command("fit", cls=GroupedCommand, groups=HELP_GROUPS)
@_common_options
@_model(
    "--modalities",
    type=click.Choice(list(MODALITIES)),
    help="text or audio: single-modality baseline. [default: text,audio]",
)
@_model("--variant", type=click.Choice(FUSION_VARIANTS), help="Fusion variant (paper 3.4). [default: fused]")
@_optim("--fused-weight", type=click.FloatRange(min=0), help="Loss weight of the fused head (0 = off). [default: 1]")
@_optim("--text-weight", type=click.FloatRange(min=0), help="Loss weight of the text head (0 = off). [default: 1]")
@_optim("--audio-weight", type=click.FloatRange(min=0), help="Loss weight of the audio head (0 = off). [default: 1]")
def fit_command(**options: Any) -> None:
    """Train one configuration over every seed; resumable; writes summary.json and summary.md."""
    options["variant"] = _variant(options.pop("modalities"), options["variant"])
    config = build_config(options)
    summary = fit(config, options["out"], _runtime(options))
    click.echo((options["out"] / "summary.md").read_text())
    click.echo(f"per-seed checkpoints: {', '.join(r['checkpoint'] for r in summary['per_seed'].values())}", err=True)


@cli.command("evaluate")
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", required=True, help="Corpus directory or label.csv.")
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option(
    "--head",
    type=click.Choice(["fused", "text", "audio"]),
    default="fused",
    show_default=True,
    help="text: the text subnet alone, no audio needed (paper Table 5).",
)
@click.option("--dataset", type=click.Choice(list(DATASETS)), default="custom", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--skip-bad-media", is_flag=True)
@click.option("--audio-cache", type=click.Path(file_okay=False))
@click.option(
    "--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write the metrics as JSON here."
)
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True)
def evaluate_command(checkpoint: Path, out_file: Path | None, **options: Any) -> None:
    """Metrics of an existing checkpoint on one split of a corpus."""
    result = evaluate_checkpoint(
        checkpoint,
        options["data"],
        options["split"],
        head=options["head"],
        dataset=options["dataset"],
        audio_cache=options["audio_cache"],
        skip_bad_media=options["skip_bad_media"],
        batch_size=options["batch_size"],
        runtime=_runtime(options),
    )
    if out_file:
        report.write_json(result, out_file)
    row = {f"{options['head']} head": {k: {"mean": v} for k, v in result["metrics"].items()}}
    click.echo(report.markdown_table(row, options["dataset"]))
    click.echo(json.dumps(result["metrics"], sort_keys=True))
    graded = result["spread"]
    click.echo(
        f"scores from {graded['min']:+.2f} to {graded['max']:+.2f} (std {graded['std']:.2f}); "
        f"{100 * graded['share_near_min']:.1f}% within 0.05 of the minimum, "
        f"{100 * graded['share_near_max']:.1f}% within 0.05 of the maximum"
    )


@cli.command("experiment", cls=GroupedCommand, groups=HELP_GROUPS)
@click.argument("name", type=click.Choice(list(EXPERIMENTS)))
@_common_options
def experiment_command(name: str, **options: Any) -> None:
    """Run a named group of the paper's experiments and print one comparison table."""
    config = build_config(options)
    result = run_experiment(name, config, options["out"], _runtime(options))
    click.echo(result["markdown"])


@cli.command("default")
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    show_default=f"${DATA_DIR_ENV}, else ../shared/data",
    help="Folder holding mosi_label.csv, mosei_label_trainvalid.csv and ravdess/.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/default"),
    show_default=True,
    help="Run directory (resumable).",
)
@click.option(
    "--seeds",
    default=",".join(map(str, RECIPE_SEEDS)),
    show_default=True,
    help="Comma-separated seeds; the seed with the best validation MAE becomes the default.",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True)
def default_command(data_dir: Path | None, out: Path, seeds: str, **options: Any) -> None:
    """Train the default model (MOSI + MOSEI transcripts, RAVDESS speech) and install it for mmml-annotate."""
    installed = train_default(out, _runtime(options), data_dir, _seeds(seeds))
    click.echo((out / "summary.md").read_text())
    click.echo(f"default model installed: {installed} (licence: {LICENCE})", err=True)


@cli.command("set-default")
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path))
def set_default_command(checkpoint: Path) -> None:
    """Make CHECKPOINT the model mmml-annotate uses when no --model is given."""
    click.echo(f"default model installed: {install_default(checkpoint)}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: errors in the user's data or options exit 1 with a message, no traceback."""
    try:
        cli.main(args=argv, prog_name="mmml-train", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted; run the same command again to resume", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (ValueError, OSError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
