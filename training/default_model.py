"""The default MMML model: what `mmml-annotate` scores with when no `--model` is given.

Trained on real data only, all of it on this machine or in the project's
shared data folder:

* CMU-MOSI transcripts (primary corpus: model selection and headline test
  metrics) and CMU-MOSEI train/valid transcripts: text with sentiment labels,
  no media, so they teach the text and fused heads;
* RAVDESS emotional speech (12 training actors): the same two neutral
  sentences in eight emotions, so its label describes the voice
  (`labels=audio`): it teaches the audio and fused heads, never the text head.

Encoders: the packaged MiniLM-L6 sentence encoder (text) and the encoder of
the packaged Whisper tiny.en (audio), both fine-tuned, with a small fusion
network. The recipe is sized to train in a few minutes on two CPU cores, so
that the README's first command can build it; `training/RESULTS.md` reports
it over three seeds. RAVDESS is CC BY-NC-SA 4.0: a model trained on it is
for non-commercial use.

The default lives in `$MMML_CACHE/models/default` (`mmml.packaged.default_model`);
`install_default` makes any checkpoint the default.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from mmml.atomic import replace_directory, staging_directory
from mmml.config import AudioEncoderConfig, FusionConfig, ModelConfig, TextEncoderConfig
from mmml.integrity import checkpoint_id, verify_checkpoint
from mmml.packaged import installed_default_dir

from .config import Composition, CorpusConfig, DataConfig, EarlyStopConfig, OptimConfig, TrainConfig
from .trainer import Runtime, fit

DATA_DIR_ENV = "MMML_DATA_DIR"
RECIPE_SEEDS: tuple[int, ...] = (1111,)
# Sized for two CPU cores: an epoch is all of MOSI's training transcripts, a fresh draw of MOSEI's
# and of RAVDESS's training clips; a RAVDESS clip costs ten times a transcript (Whisper fine-tuning).
# Three epochs keep `make demo` within ten minutes; the learning rate decays to 0 over them.
EPOCHS = 3
MOSEI_PER_EPOCH = 1000
RAVDESS_PER_EPOCH = 300
# Composed rows (training.composition): a share of the transcripts heard in the training actors' neutral voices,
# a share of RAVDESS's rows without their words; and a share of clips heard through real recording conditions.
VOICED = 0.35
EMOTIONAL = 0.5  # of the voiced rows: any training voice, emotional ones included (the words keep the fused target)
WORDLESS = 0.2
AUGMENT = 0.5
LICENCE = "CC BY-NC-SA 4.0 (trained on RAVDESS); CMU-MOSI/MOSEI labels are for research use"


def data_folder(given: Path | None = None) -> Path:
    """The folder holding the recipe's corpora: `given` (`--data-dir`), else `$MMML_DATA_DIR`, else `../shared/data`.

    The last is found from the working directory, not from this file: an
    installed package has no checkout around it, and CI and the README run
    from a checkout's root, beside `../shared`.
    """
    folder = Path(given or os.environ.get(DATA_DIR_ENV) or Path("../shared/data").resolve())
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no such folder for the default model's data (mosi_label.csv, mosei_label_trainvalid.csv, "
            f"ravdess/); pass --data-dir DIR or set {DATA_DIR_ENV}=DIR"
        )
    return folder


def default_recipe(data_dir: Path | None = None, seeds: tuple[int, ...] = RECIPE_SEEDS) -> TrainConfig:
    """The default model's training configuration over the corpora in `data_dir` (`data_folder`)."""
    data_dir = data_folder(data_dir)
    corpora = (
        CorpusConfig(str(data_dir / "mosi_label.csv"), dataset="mosi"),
        CorpusConfig(str(data_dir / "mosei_label_trainvalid.csv"), dataset="mosei", per_epoch=MOSEI_PER_EPOCH),
        CorpusConfig(
            str(data_dir / "ravdess"),
            dataset="custom",
            labels=("audio",),
            per_epoch=RAVDESS_PER_EPOCH,
            lends_voices=True,
        ),
    )
    missing = [c.path for c in corpora if not Path(c.path).exists()]
    if missing:
        raise FileNotFoundError(f"the default model is trained on data not found here: {', '.join(missing)}")
    return TrainConfig(
        model=ModelConfig(
            text=TextEncoderConfig("packaged:all-minilm-l6-v2", max_tokens=64),
            audio=AudioEncoderConfig("packaged:whisper-tiny.en", max_seconds=15.0),
            # Three-layer modality heads (docs/DEVIATIONS.md). fused+concat (paper 3.4): the fused head reads each
            # encoder's own summary beside the fused CLS tokens, so it has all the text head has; on spoken opinions
            # its Corr is above the text head's for every seed. The gate (heads.ModalityGate) mixes the fused head with
            # the text and audio heads per utterance (training/RESULTS.md, "Fusion on voices the model never heard").
            fusion=FusionConfig(
                variant="fused+concat",
                layers=2,
                hidden_size=128,
                heads=4,
                ffn_size=256,
                dropout=0.1,
                modality_head_layers=3,
                gate=True,
            ),
        ),
        data=DataConfig(
            corpora=corpora,
            trim_silence=True,
            compose=Composition(voiced=VOICED, wordless=WORDLESS, emotional=EMOTIONAL),
            augment=AUGMENT,
        ),
        optim=OptimConfig(lr=5e-5, fusion_lr=1e-3, lr_schedule="linear", batch_size=32, max_epochs=EPOCHS),
        early_stop=EarlyStopConfig(patience=2),
        seeds=seeds,
    )


def best_seed_checkpoint(summary: dict) -> Path:
    """The seed whose checkpoint had the lowest primary-corpus validation MAE (never chosen on test data)."""
    per_seed = summary["per_seed"].values()
    primary = next(iter(summary["corpora"]))
    best = min(per_seed, key=lambda r: r["corpora"][primary]["valid"]["fused"]["MAE"])
    return Path(best["checkpoint"])


def train_default(
    out: Path, runtime: Runtime, data_dir: Path | None = None, seeds: tuple[int, ...] = RECIPE_SEEDS
) -> Path:
    """Train the recipe into `out` (resumable) and install its best seed as the default; returns where it lives."""
    summary = fit(default_recipe(data_dir, seeds), out, runtime)
    return install_default(best_seed_checkpoint(summary))


def install_default(checkpoint: Path) -> Path:
    """Copy a verified checkpoint to the default location, replacing the previous default atomically."""
    checkpoint = Path(checkpoint)
    verify_checkpoint(checkpoint)
    target = installed_default_dir()
    with staging_directory(target) as staging:
        copy = staging / "checkpoint"
        shutil.copytree(checkpoint, copy)
        (copy / "installed_from.json").write_text(
            json.dumps({"source": str(checkpoint.resolve()), "checkpoint_id": checkpoint_id(checkpoint)}) + "\n"
        )
        replace_directory(copy, target)
    return target
