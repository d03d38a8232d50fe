"""Training MMML: one AdamW optimiser per seed, early stopping on validation loss, resumable.

    <out>/train_config.json          the TrainConfig of the run (a different one is refused)
    <out>/seed-<s>/best/             best checkpoint of seed s (mmml.checkpoint layout)
    <out>/seed-<s>/resume/           resume point after the last finished epoch (removed when done)
    <out>/seed-<s>/result.json       best epoch, per-epoch history, metrics on valid and test per corpus and head
    <out>/summary.json, summary.md   mean ± std over seeds
    <out>/skipped_media.txt          clips left out with --skip-bad-media, and why

Model selection and the headline metrics use the fused head (paper section 4.2); the
text and audio heads are evaluated too, since after multi-loss training each
is a single-modality model on its own (paper Table 5).

A run may train on several corpora at once (`DataConfig.corpora`): their
training splits are pooled, each keeps its own validation and test split,
early stopping watches the mean over corpora of the fused head's validation
loss (so a small corpus counts as much as a large one), and every corpus is
evaluated on its own. The first corpus is the primary one: its test metrics
are the run's headline (`summary["test"]`), as in the paper's tables.
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mmml.atomic import write_text_atomic
from mmml.checkpoint import load_checkpoint, save_checkpoint
from mmml.frame_features import FrameFeatureEncoder
from mmml.losses import HEADS, multi_loss
from mmml.metrics import metrics_for
from mmml.model import MMML
from mmml.preprocessing import Preprocessor

from . import report
from .audio_cache import AudioCache, load_entry
from .augment import Degrader
from .batching import epoch_members, evaluation_batches, training_batches
from .composition import compose_training
from .config import CorpusConfig, TrainConfig, config_dict, load_train_config, save_train_config
from .dataset import SPLITS, has_media, locate_label_file, read_corpus
from .examples import SINGLE_MODALITY, Augment, Example, Examples, collate, prepare_examples, sort_lengths
from .resume import load_resume_point, save_resume_point

CONFIG_FILE = "train_config.json"
RESULT_FILE = "result.json"
Log = Callable[[str], None]


class RunDirectoryError(ValueError):
    """A run directory that cannot be continued with the given configuration."""


@dataclass
class Runtime:
    """How to run, not what to compute: never part of the saved configuration."""

    device: torch.device
    progress: bool = True
    log: Log = print


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


@dataclass(frozen=True)
class CorpusExamples:
    """One corpus of a run: its name in reports, its configuration, its usable examples per split."""

    name: str
    config: CorpusConfig
    examples: Examples


def corpus_names(corpora: Sequence[CorpusConfig]) -> list[str]:
    """Short, unique report names: the corpus directory (or label file) name."""
    names = []
    for corpus in corpora:
        label_file, root = locate_label_file(corpus.path)
        base = root.name if label_file.stem == "label" else label_file.stem
        names.append(base if base not in names else f"{base}-{len(names) + 1}")
    return names


def load_corpora(config: TrainConfig, runtime: Runtime) -> list[CorpusExamples]:
    """Read, validate and decode every corpus of the run."""
    if not config.data.corpora:
        raise ValueError("no corpus to train on: give at least one --data")
    cache = AudioCache(
        config.data.audio_cache, sample_rate=config.model.audio.sampling_rate, trim_silence=config.data.trim_silence
    )
    loaded = []
    for name, corpus_config in zip(corpus_names(config.data.corpora), config.data.corpora):
        corpus = read_corpus(corpus_config.path, require_text=config.model.uses_text)
        examples = prepare_examples(
            corpus,
            SPLITS,
            config.model,
            cache=cache,
            skip_bad_media=config.data.skip_bad_media,
            progress=runtime.progress,
            labels=corpus_config.labels,
            may_be_empty=("test",),
        )
        if not config.model.uses_text and not any(e.audio for e in examples.splits["train"]):
            raise ValueError(f"{corpus.label_file}: an audio-only model cannot learn from a corpus without media")
        if config.model.uses_audio and not has_media(corpus.root):
            runtime.log(f"{name}: no Raw/ or wav/ folder beside {corpus.label_file.name}: transcripts only, no audio")
        if not loaded and not examples.splits["test"]:
            raise ValueError(f"{corpus.label_file}: the first (primary) corpus needs a test split; list it later")
        loaded.append(CorpusExamples(name, corpus_config, examples))
    return loaded


def fit(config: TrainConfig, out: Path, runtime: Runtime) -> dict[str, Any]:
    """Train every seed (continuing an interrupted run in `out`), then summarise; returns summary.json's content."""
    out = Path(out)
    _claim_run_directory(config, out)
    corpora = load_corpora(config, runtime)
    skipped = [problem for c in corpora for problem in c.examples.skipped]
    if skipped:
        listing = out / "skipped_media.txt"
        write_text_atomic("\n".join(skipped) + "\n", listing)
        runtime.log(f"skipped {len(skipped)} clip(s) with missing or undecodable media (see {listing})")
    results = [train_seed(config, corpora, seed, out / f"seed-{seed}", runtime) for seed in config.seeds]
    summary = summarise(config, results, skipped=len(skipped))
    report.write_json(summary, out / "summary.json")
    write_text_atomic(summary_markdown(summary), out / "summary.md")
    return summary


def _claim_run_directory(config: TrainConfig, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    saved_path = out / CONFIG_FILE
    if saved_path.is_file():
        saved = config_dict(load_train_config(saved_path))
        if _comparable(saved) != _comparable(config_dict(config)):
            raise RunDirectoryError(
                f"{out} holds a run with a different configuration ({saved_path}); "
                "choose another --out to start a new run, or repeat the original options to resume it"
            )
    else:
        save_train_config(config, saved_path)


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """What must match to resume: everything but where decoded audio is cached."""
    data = dict(config["data"], audio_cache=None)
    return dict(config, data=data)


@dataclass
class Progress:
    """Where one seed's training stands; saved with every resume point, so a killed run goes on from here."""

    epoch: int = 0
    best_loss: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    scaler: dict[str, Any] = field(default_factory=dict)  # fp16 loss scale; empty when scaling is off

    def finished(self, config: TrainConfig) -> bool:
        return self.epoch >= config.optim.max_epochs or self.bad_epochs >= config.early_stop.patience

    def record(self, epoch: int, valid_loss: float, min_delta: float) -> bool:
        """Count an epoch's validation loss toward early stopping; True if it is the best so far."""
        improved = self.best_loss is None or valid_loss < self.best_loss - min_delta
        if improved:
            self.best_loss, self.best_epoch, self.bad_epochs = valid_loss, epoch, 0
        else:
            self.bad_epochs += 1
        self.epoch = epoch
        return improved


def train_seed(
    config: TrainConfig, corpora: Sequence[CorpusExamples], seed: int, directory: Path, runtime: Runtime
) -> dict[str, Any]:
    """Train one seed to early stopping, evaluate its best checkpoint; resumes or reuses earlier work."""
    result_path = directory / RESULT_FILE
    if result_path.is_file():
        runtime.log(f"seed {seed}: already finished ({result_path})")
        return report.read_json(result_path)
    directory.mkdir(parents=True, exist_ok=True)
    _seed_everything(seed)
    model = MMML.from_config(config.model).to(runtime.device)
    preprocessor = Preprocessor.from_config(config.model)
    train = composed_training(corpora, config, seed)
    optimizer = make_optimizer(model, config)
    saved = load_resume_point(directory / "resume", model, optimizer)
    if saved is None:  # a resumed model has its statistics among its restored buffers
        fit_feature_statistics(model, preprocessor, train, runtime)
    progress = Progress(**saved) if saved else Progress()
    amp = autocast_for(config, runtime.device)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=amp.enabled and amp.dtype == torch.float16)
    if progress.epoch:
        runtime.log(f"seed {seed}: resuming after epoch {progress.epoch}")
        if progress.scaler:
            scaler.load_state_dict(progress.scaler)

    valid = [c.examples.splits["valid"] for c in corpora]
    degrader = Degrader(config.data.augment) if config.data.augment else None
    train_lengths = sort_lengths(train, preprocessor)
    while not progress.finished(config):
        epoch = progress.epoch + 1
        started = time.perf_counter()
        members, batches = _epoch_batches(corpora, train_lengths, config, seed, epoch)
        train_loss = train_epoch(
            model,
            optimizer,
            scaler,
            amp,
            train,
            batches,
            preprocessor,
            config,
            runtime,
            f"seed {seed} epoch {epoch}",
            lr_schedule(config, epoch, len(batches)),
            partial(degrader.batch, seed, epoch) if degrader else None,
        )
        train_seconds = time.perf_counter() - started
        valid_loss = validation_loss(model, preprocessor, valid, config, runtime.device)
        improved = progress.record(epoch, valid_loss, config.early_stop.min_delta)
        if improved:
            metadata = {"train_config": config_dict(config), "seed": seed, "epoch": epoch, "valid_loss": valid_loss}
            save_checkpoint(directory / "best", model, preprocessor, metadata=metadata)
        progress.scaler = scaler.state_dict()
        progress.history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "valid_loss": valid_loss,
                "seconds": round(time.perf_counter() - started, 2),
                "train_clips_per_second": round(len(members) / train_seconds, 2),
            }
        )
        waited = f"{progress.bad_epochs}/{config.early_stop.patience} without improvement"
        runtime.log(
            f"seed {seed} epoch {epoch}: train loss {train_loss:.4f}, valid loss {valid_loss:.4f}"
            + (" (best)" if improved else f" ({waited})")
        )
        save_resume_point(directory / "resume", model, optimizer, asdict(progress))

    del model, optimizer
    result = {
        "seed": seed,
        "best_epoch": progress.best_epoch,
        "epochs": progress.epoch,
        "stopped_early": progress.bad_epochs >= config.early_stop.patience,
        "history": progress.history,
        **evaluate_best(directory / "best", corpora, config, runtime.device),
    }
    report.write_json(result, result_path)
    shutil.rmtree(directory / "resume", ignore_errors=True)
    return result


def composed_training(corpora: Sequence[CorpusExamples], config: TrainConfig, seed: int) -> list[Example]:
    """The pooled training rows of every corpus, some composed from real parts (`training.composition`)."""
    splits = compose_training(
        [c.examples.splits["train"] for c in corpora],
        [c.config.lends_voices for c in corpora],
        config.data.compose,
        seed,
    )
    return [e for rows in splits for e in rows]


def _epoch_batches(
    corpora: Sequence[CorpusExamples], train_lengths: Sequence[float], config: TrainConfig, seed: int, epoch: int
) -> tuple[list[int], list[list[int]]]:
    """This epoch's draw of training examples (`per_epoch` per corpus) and its batches of example indices."""
    members = epoch_members(
        [len(c.examples.splits["train"]) for c in corpora],
        [c.config.per_epoch for c in corpora],
        seed=seed,
        epoch=epoch,
    )
    lengths = [train_lengths[i] for i in members]
    batches = training_batches(
        lengths, config.optim.batch_size, seed=seed, epoch=epoch, length_aware=config.optim.length_batching
    )
    return members, [[members[i] for i in batch] for batch in batches]


def fit_feature_statistics(model: MMML, preprocessor: Preprocessor, train: Sequence[Example], runtime: Runtime) -> None:
    """Standardise a feature encoder's inputs (openSMILE, log-Mel) with the training clips' statistics.

    The statistics become buffers of the model, so the checkpoint carries
    them; a model whose audio encoder is pretrained needs none.
    """
    encoder = model.audio_encoder
    if not isinstance(encoder, FrameFeatureEncoder):
        return
    extractor = preprocessor.feature_extractor
    clips = (load_entry(e.audio, preprocessor.max_samples) for e in train if e.audio is not None)
    frames = encoder.standardiser.fit(extractor.clip_frames(clip) for clip in clips)
    runtime.log(f"{type(extractor).__name__}: feature statistics from {frames} training frames")


def make_optimizer(model: MMML, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with two parameter groups: the pretrained encoders at `lr`, everything new at `fusion_lr`.

    The fusion network, CLS vectors and heads start from random weights and
    need far larger steps than encoders being fine-tuned (as MMSA's models
    use one rate for BERT and another for the rest). A feature encoder
    (openSMILE, Mel CNN) starts from random weights too, so it is new.
    """
    pretrained = [
        m for m in (model.text_encoder, model.audio_encoder) if m is not None and not isinstance(m, FrameFeatureEncoder)
    ]
    encoders = {id(p) for m in pretrained for p in m.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    rates = (config.optim.lr, config.optim.fusion_lr or config.optim.lr)
    groups = [
        {"params": [p for p in trainable if id(p) in encoders], "lr": rates[0], "base_lr": rates[0]},
        {"params": [p for p in trainable if id(p) not in encoders], "lr": rates[1], "base_lr": rates[1]},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=config.optim.weight_decay)


def lr_schedule(config: TrainConfig, epoch: int, steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step of `epoch`: 1 throughout (`constant`), or falling linearly to 0 at the
    end of `max_epochs` (`linear`). A function of (epoch, step) alone, so a resumed run follows it exactly."""
    if config.optim.lr_schedule == "constant":
        return lambda step: 1.0
    total = config.optim.max_epochs * steps
    return lambda step: 1.0 - ((epoch - 1) * steps + step) / total


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Autocast:
    enabled: bool
    dtype: torch.dtype | None

    def context(self, device: torch.device) -> contextlib.AbstractContextManager:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


def autocast_for(config: TrainConfig, device: torch.device) -> Autocast:
    """bf16 where the GPU has it, fp16 with loss scaling otherwise; full precision on CPU."""
    if not config.optim.mixed_precision or device.type != "cuda":
        return Autocast(False, None)
    return Autocast(True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def train_epoch(
    model: MMML,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    amp: Autocast,
    train: Sequence[Example],
    batches: list[list[int]],
    preprocessor: Preprocessor,
    config: TrainConfig,
    runtime: Runtime,
    description: str,
    schedule: Callable[[int], float] = lambda step: 1.0,
    augment: Callable[[int], Augment] | None = None,
) -> float:
    """One pass over the training split; returns the mean training loss per clip.

    `schedule(step)` scales every parameter group's base learning rate at that step of the epoch;
    `augment(step)` degrades that step's audio (`training.augment`).
    """
    model.train()
    weights, accumulation = config.loss_weights(), config.optim.grad_accumulation
    total, seen = 0.0, 0
    optimizer.zero_grad(set_to_none=True)
    clips = sum(map(len, batches))
    with tqdm(total=clips, desc=description, unit="clip", disable=not runtime.progress, leave=False) as bar:
        for step, indices in enumerate(batches):
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * schedule(step)
            batch = [train[i] for i in indices]
            inputs, targets = collate(batch, preprocessor, runtime.device, augment(step) if augment else None)
            with amp.context(runtime.device):
                loss = multi_loss(model(**inputs), targets, weights, config.loss.kind)
            scaler.scale(loss / accumulation).backward()
            if (step + 1) % accumulation == 0 or step + 1 == len(batches):
                _optimizer_step(model, optimizer, scaler, config.optim.max_grad_norm)
            total += loss.item() * len(indices)
            seen += len(indices)
            bar.update(len(indices))
            bar.set_postfix(loss=f"{total / seen:.4f}")  # tqdm itself shows clips per second
    return total / seen


def _optimizer_step(
    model: MMML, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, max_grad_norm: float | None
) -> None:
    if max_grad_norm is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


@torch.inference_mode()
def predict(
    model: MMML, preprocessor: Preprocessor, examples: Sequence[Example], device: torch.device, batch_size: int = 32
) -> dict[str, np.ndarray]:
    """Scores of every head the model has, in the order of `examples`."""
    model.eval()
    lengths = sort_lengths(examples, preprocessor)
    outputs: dict[str, np.ndarray] = {}
    for indices in evaluation_batches(lengths, batch_size):
        inputs, _ = collate([examples[i] for i in indices], preprocessor, device)
        scores = model(**inputs)
        for head in HEADS:
            values = getattr(scores, head)
            if values is not None:
                column = outputs.setdefault(head, np.full(len(examples), np.nan))
                column[indices] = values.float().cpu().numpy()
    return outputs


def targets(examples: Sequence[Example], head: str, variant: str = "fused") -> np.ndarray:
    return np.array([e.targets(variant)[head] for e in examples], dtype=np.float64)


def usable(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows a head can be judged on: its modality present (a finite score), its label informative (finite)."""
    return np.isfinite(values) & np.isfinite(labels)


def regression_loss(predictions: np.ndarray, labels: np.ndarray, kind: str) -> float:
    """Loss over the usable rows; NaN when there is none."""
    errors = (predictions - labels)[usable(predictions, labels)]
    if not errors.size:
        return math.nan
    return float(np.mean(errors**2) if kind == "mse" else np.mean(np.abs(errors)))


def validation_loss(
    model: MMML,
    preprocessor: Preprocessor,
    valid: Sequence[Sequence[Example]],
    config: TrainConfig,
    device: torch.device,
) -> float:
    """Mean over corpora of the fused head's validation loss: the early-stopping and model-selection criterion.

    A corpus with nothing the model's one score can be judged on (voice labels
    for a text-only model) does not count.
    """
    losses = []
    for examples in valid:
        fused = predict(model, preprocessor, examples, device, config.optim.batch_size)["fused"]
        losses.append(regression_loss(fused, targets(examples, "fused", config.model.fusion.variant), config.loss.kind))
    return float(np.nanmean(losses))


def head_metrics(
    scores: dict[str, np.ndarray], examples: Sequence[Example], dataset: str, variant: str = "fused"
) -> dict[str, dict[str, float]]:
    """Metrics of each head against its own label (label_T/label_A where the corpus has them).

    Only rows the head can be judged on count: its modality present (a
    finite score) and described by the label (a finite target). A head with
    no such row in this corpus is left out.
    """
    metric = metrics_for(dataset)
    results = {}
    for head, values in scores.items():
        labels = targets(examples, head, variant)
        rows = usable(values, labels)
        if rows.any():
            results[head] = metric(values[rows], labels[rows])
    return results


def evaluate_best(
    best: Path, corpora: Sequence[CorpusExamples], config: TrainConfig, device: torch.device
) -> dict[str, Any]:
    """Metrics of the best checkpoint per corpus, split and head (a single-modality model has one head)."""
    checkpoint = load_checkpoint(best, device=device)
    single = config.model.fusion.variant in SINGLE_MODALITY
    metrics: dict[str, dict[str, Any]] = {}
    for corpus in corpora:
        metrics[corpus.name] = {}
        for split in ("valid", "test"):
            examples = corpus.examples.splits[split]
            if not examples:  # a corpus without a test split is reported on its validation split only
                metrics[corpus.name][split] = {}
                continue
            scores = predict(checkpoint.model, checkpoint.preprocessor, examples, device, config.optim.batch_size)
            scores = {"fused": scores["fused"]} if single else scores
            metrics[corpus.name][split] = head_metrics(
                scores, examples, corpus.config.dataset, config.model.fusion.variant
            )
    primary = metrics[corpora[0].name]
    return {"checkpoint": str(best), "checkpoint_id": checkpoint.id, "corpora": metrics, "metrics": primary}


def summarise(config: TrainConfig, results: Sequence[dict[str, Any]], skipped: int = 0) -> dict[str, Any]:
    """Mean ± std over seeds for every corpus, split and head; the primary corpus's also at the top level.

    Corpora are taken in the configuration's order (the first is the primary one), not in the order a seed's
    result lists them: a seed finished by an earlier process comes back from JSON, its keys sorted.
    """
    corpora = {}
    for name, corpus_config in zip(corpus_names(config.data.corpora), config.data.corpora):
        corpora[name] = {"dataset": corpus_config.dataset}
        for split in ("valid", "test"):
            heads = results[0]["corpora"][name][split].keys()
            corpora[name][split] = {
                head: report.aggregate([r["corpora"][name][split][head] for r in results]) for head in heads
            }
    primary = next(iter(corpora.values()))
    return {
        "dataset": config.data.dataset,
        "seeds": [r["seed"] for r in results],
        "skipped_clips": skipped,
        "config": config_dict(config),
        "per_seed": {
            str(r["seed"]): {k: r[k] for k in ("best_epoch", "epochs", "checkpoint", "checkpoint_id", "corpora")}
            for r in results
        },
        "corpora": corpora,
        "valid": primary["valid"],
        "test": primary["test"],
    }


def summary_markdown(summary: dict[str, Any]) -> str:
    seeds = ", ".join(str(s) for s in summary["seeds"])
    several = len(summary["corpora"]) > 1
    parts = []
    for name, corpus in summary["corpora"].items():
        for split in ("test", "valid"):
            rows = {f"{head} head": table for head, table in corpus[split].items()}
            if not rows:  # no such split (MOSEI's public file has no test split)
                continue
            title = f"{name}, {split} split" if several else f"{split} split"
            table = report.markdown_table(rows, corpus["dataset"])
            parts.append(f"### {title} (mean ± std over seeds {seeds})\n\n" + table)
    return "\n".join(parts)


def _trimmed(metadata: dict[str, Any]) -> bool:
    """Whether the checkpoint was trained on clips cut to their speech: evaluation cuts them the same way."""
    return bool(metadata.get("train_config", {}).get("data", {}).get("trim_silence", False))


@dataclass
class ScoredSplit:
    """Every head's scores of one checkpoint on one split of a corpus, beside the clips they score."""

    checkpoint_id: str
    variant: str
    examples: list[Example]
    scores: dict[str, np.ndarray]
    skipped: int


def score_split(
    checkpoint_dir: Path,
    data: str,
    split: str,
    *,
    with_audio: bool = True,
    audio_cache: str | None = None,
    skip_bad_media: bool = False,
    batch_size: int = 32,
    runtime: Runtime,
) -> ScoredSplit:
    """A saved checkpoint's scores on one split, its clips decoded (and cut to speech) as in its training.

    `with_audio=False` leaves the audio out: the model sees it as missing.
    """
    checkpoint = load_checkpoint(checkpoint_dir, device=runtime.device)
    config = checkpoint.config
    corpus = read_corpus(data, require_text=config.uses_text)
    cache = AudioCache(audio_cache, sample_rate=config.audio.sampling_rate, trim_silence=_trimmed(checkpoint.metadata))
    examples = prepare_examples(
        corpus,
        [split],
        config,
        cache=cache,
        with_audio=with_audio and config.uses_audio,
        skip_bad_media=skip_bad_media,
        progress=runtime.progress,
    )
    clips = examples.splits[split]
    scores = predict(checkpoint.model, checkpoint.preprocessor, clips, runtime.device, batch_size)
    return ScoredSplit(checkpoint.id, config.fusion.variant, clips, scores, len(examples.skipped))


def evaluate_checkpoint(
    checkpoint_dir: Path,
    data: str,
    split: str,
    *,
    head: str = "fused",
    dataset: str = "custom",
    audio_cache: str | None = None,
    skip_bad_media: bool = False,
    batch_size: int = 32,
    runtime: Runtime,
) -> dict[str, Any]:
    """Metrics of one head of a saved checkpoint on one split of a corpus.

    `head="text"` runs the text subnet alone (paper Table 5): the audio is
    then neither needed nor decoded, and the model sees it as missing.
    """
    scored = score_split(
        checkpoint_dir,
        data,
        split,
        with_audio=head != "text",
        audio_cache=audio_cache,
        skip_bad_media=skip_bad_media,
        batch_size=batch_size,
        runtime=runtime,
    )
    if head not in scored.scores:
        raise ValueError(
            f"{checkpoint_dir}: no {head!r} head in a {scored.variant!r} model (has: {', '.join(scored.scores)})"
        )
    scores = scored.scores[head]
    labels = targets(scored.examples, head, scored.variant)
    rows = usable(scores, labels)
    if not rows.any():
        raise ValueError(f"{data}: no {split} clip that the {head} head can be judged on (its modality is missing)")
    return {
        "checkpoint": str(checkpoint_dir),
        "checkpoint_id": scored.checkpoint_id,
        "split": split,
        "head": head,
        "clips": len(scored.examples),
        "skipped_clips": scored.skipped,
        "metrics": metrics_for(dataset)(scores[rows], labels[rows]),
        "spread": report.spread(scores[rows]),
    }
