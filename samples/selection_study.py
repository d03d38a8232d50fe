"""What `mmml-label export --select` buys: retrain on N chosen utterances against N random ones (training/RESULTS.md).

The loop a labelling team runs, on a corpus whose labels are known, so that the labeller can be played by
the known label:

1. a pool of spoken opinions the default model never saw: CMU-MOSEI **valid** sentences that are not in the
   spoken development set, each read by one of two espeak-ng voices (`POOL_VOICES`);
2. `mmml-annotate` the pool with the default model (and re-annotate it with the other seeds' checkpoints,
   the ensemble `uncertainty` reads);
3. per strategy, `mmml-label export --select N`, a Label Studio export in which one labeller scores each
   task with its clip's known label, `mmml-label import` into a corpus;
4. the default recipe with that corpus added (`training.default_model.default_recipe`), one run per strategy;
5. every head on the spoken development set (`samples.devsets compare`), on all of it and on its third voice
   (`HELD_OUT_VOICE`), which no pool clip is spoken in: sentences and voice unseen.

The synthetic voices make this a development experiment: the default model never trains on them.
Checkout-only, like the rest of `samples`.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import click

from mmml.atomic import write_text_atomic
from mmml.packaged import installed_default_dir
from training import report
from training.config import CorpusConfig
from training.dataset import read_corpus
from training.default_model import data_folder, default_recipe
from training.trainer import Runtime, fit, resolve_device

from .devsets import SPOKEN_VOICES, Row, compare, corpus_rows, readable_sentences, spoken_rows, write_corpus

POOL_VOICES = SPOKEN_VOICES[:2]
HELD_OUT_VOICE = SPOKEN_VOICES[2][0].replace("+", "_")
LABELLER = 1  # the Label Studio user id of the simulated labeller


def pool_rows(data_dir: Path, eval_corpus: Path, size: int, seed: int, work: Path) -> list[Row]:
    """`size` MOSEI valid sentences outside the development set, alternately in each pool voice."""
    seen = {clip.text for clip in read_corpus(eval_corpus).clips}
    mosei = read_corpus(data_dir / "mosei_label_trainvalid.csv").split("valid")
    unseen = [c for c in readable_sentences(mosei) if c.text not in seen]
    chosen = random.Random(seed).sample(unseen, min(size, len(unseen)))
    rows = []
    for k, voice in enumerate(POOL_VOICES):
        rows += spoken_rows(chosen[k :: len(POOL_VOICES)], work, [voice])
    return rows


def cli(command: str, *args: str | Path | int) -> None:
    """One of the project's commands, as a user runs it (installed beside this interpreter)."""
    subprocess.run([str(Path(sys.executable).parent / command), *map(str, args)], check=True)


def labelled_export(tasks_dir: Path, labels: dict[str, float], out: Path) -> Path:
    """The Label Studio JSON export of a project in which one labeller gave each task its clip's known label.

    A clip's label is the label of all its utterances (a sentence may be cut into several).
    """
    tasks = json.loads((tasks_dir / "tasks.json").read_text(encoding="utf-8"))
    for n, task in enumerate(tasks, start=1):
        label = round(labels[Path(task["data"]["video_path"]).resolve().as_posix()], 1)
        value = {"number": label}
        result = [{"from_name": "sentiment", "to_name": "audio", "type": "number", "value": value}]
        task.update(id=n, annotations=[{"completed_by": LABELLER, "was_cancelled": False, "result": result}])
    out.write_text(json.dumps(tasks), encoding="utf-8")
    return out


def voice_subset(corpus: Path, voice: str, out: Path) -> Path:
    """The clips of one voice of a development set, as a corpus of its own (audio linked, not copied)."""
    rows = [r for r in corpus_rows(corpus) if r.video_id == voice]
    return write_corpus(out, rows, place=lambda src, dst: dst.symlink_to(src))


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Work directory.")
@click.option(
    "--devset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The spoken development set (samples.devsets build).",
)
@click.option(
    "--ensemble",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    multiple=True,
    help="Checkpoints of the default recipe's other seeds (for 'uncertainty').",
)
@click.option("--n", "n", type=int, default=100, show_default=True, help="Utterances labelled per strategy.")
@click.option("--pool", type=int, default=300, show_default=True, help="Sentences in the pool.")
@click.option("--strategies", default="random,disagreement,uncertainty", show_default=True)
@click.option("--seed", type=int, default=1111, show_default=True, help="Training seed (one per strategy).")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def main(
    out: Path,
    devset: Path,
    ensemble: tuple[Path, ...],
    n: int,
    pool: int,
    strategies: str,
    seed: int,
    data_dir: Path | None,
) -> None:
    """Retrain the default recipe on N utterances chosen by each --select strategy; compare on unseen voices."""
    data_dir = data_folder(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    pool_dir = out / "pool"
    if not (pool_dir / "label.csv").exists():
        with tempfile.TemporaryDirectory(dir=out) as scratch:
            write_corpus(pool_dir, pool_rows(data_dir, devset, pool, seed=1, work=Path(scratch)))
    labels = {row.media.resolve().as_posix(): row.label for row in corpus_rows(pool_dir)}
    scores = out / "pool.parquet"
    if not scores.exists():
        cli("mmml-annotate", pool_dir / "wav", "--out", scores)
    members = []
    for checkpoint in ensemble:
        member = out / f"pool-{checkpoint.parent.name}.parquet"
        if not member.exists():
            cli("mmml-annotate", pool_dir / "wav", "--transcripts", scores, "--model", checkpoint, "--out", member)
        members += ["--ensemble", member]
    held_out = voice_subset(devset, HELD_OUT_VOICE, out / f"devset-{HELD_OUT_VOICE}")
    runtime = Runtime(resolve_device("auto"), False)
    evaluations = (("all voices", devset), (f"{HELD_OUT_VOICE} only", held_out))
    table: dict[str, report.Summary] = {}

    def evaluate(name: str, checkpoint: Path) -> None:
        for voices, data in evaluations:
            for head, metrics in compare([checkpoint], str(data), runtime=runtime).items():
                table[f"{name}, {voices}, {head}"] = metrics
        caption = f"--select {n} of a {pool}-sentence pool, training seed {seed}; spoken development set {devset}"
        write_text_atomic(report.markdown_table(table, "mosi", caption=caption), out / "results.md")

    evaluate("no labels (the default model)", installed_default_dir())
    for strategy in strategies.split(","):
        tasks, corpus, run = out / f"tasks-{strategy}", out / f"corpus-{strategy}", out / f"run-{strategy}"
        if not (tasks / "tasks.json").exists():
            cli(
                "mmml-label",
                "export",
                scores,
                "--out",
                tasks,
                "--select",
                n,
                "--strategy",
                strategy,
                *(members if strategy == "uncertainty" else []),
            )
        if not (corpus / "label.csv").exists():
            export = labelled_export(tasks, labels, out / f"export-{strategy}.json")
            cli("mmml-label", "import", export, "--tasks", tasks, "--out", corpus)
        recipe = default_recipe(data_dir, (seed,))
        added = replace(recipe.data, corpora=(*recipe.data.corpora, CorpusConfig(str(corpus / "label.csv"))))
        summary = fit(replace(recipe, data=added), run, runtime)
        evaluate(f"{n} {strategy}", Path(next(iter(summary["per_seed"].values()))["checkpoint"]))
    click.echo((out / "results.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
