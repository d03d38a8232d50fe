"""Time and peak memory of `mmml-label export` and `import` at corpus scale (100,000 utterances by default).

The annotation is made up over real media: `--videos` spoken recordings (espeak-ng, looped by ffmpeg to
`--minutes` each), cut into `--utterances` one-second utterances spread evenly over them (overlapping where
they must). The Label Studio export read back gives every task one labeller's score. Each phase runs in a
process of its own, so its peak memory (max RSS, ffmpeg children counted apart) is its own.

    python benchmarks/label_studio_scale.py --work /tmp/ls-scale --utterances 100000
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import click

SENTENCE = "This is recording number {n}, and the speaker has an opinion about the film."


def make_media(work: Path, videos: int, minutes: float) -> list[Path]:
    from samples.media import speak

    paths = []
    for n in range(videos):
        target = work / "media" / f"recording-{n:03d}.wav"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            sentence = speak(SENTENCE.format(n=n), work / "media" / f"s{n}.wav")
            loops = ["-stream_loop", "-1", "-i", str(sentence), "-t", str(minutes * 60)]
            subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *loops, str(target)], check=True)
        paths.append(target)
    return paths


def make_scores(work: Path, media: list[Path], utterances: int, minutes: float) -> Path:
    from pipelines.discover import content_id
    from pipelines.write import utterance_table, write_atomic

    per_video = -(-utterances // len(media))
    stride = (minutes * 60 - 1.0) / per_video
    rows = []
    for path in media:
        vid = content_id(path)
        for i in range(per_video):
            if len(rows) == utterances:
                break
            score = ((i * 7919) % 600) / 100 - 3
            start = round(i * stride, 3)
            rows.append(
                {
                    "video_path": str(path),
                    "video_id": vid,
                    "utterance": i,
                    "start": start,
                    "end": start + 1.0,
                    "text": SENTENCE.format(n=i),
                    "language": "en",
                    "language_probability": 1.0,
                    "asr_confidence": 0.9,
                    "score_fused": score,
                    "score_text": score * 0.9,
                    "score_audio": -score * 0.5,
                    "model_id": "0" * 16,
                    "asr_model": "packaged:whisper-tiny.en",
                }
            )
    scores = work / "scores.parquet"
    write_atomic(utterance_table(rows), scores)
    return scores


def labelled_export(tasks_file: Path, target: Path) -> Path:
    tasks = json.loads(tasks_file.read_text())
    for n, task in enumerate(tasks):
        task["id"] = n + 1
        score = ((n * 104729) % 61) / 10 - 3
        result = [{"from_name": "sentiment", "to_name": "audio", "type": "number", "value": {"number": score}}]
        task["annotations"] = [{"completed_by": 1 + n % 3, "was_cancelled": False, "result": result}]
    target.write_text(json.dumps(tasks))
    return target


def peak_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


@click.command()
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--utterances", default=100_000, show_default=True)
@click.option("--videos", default=10, show_default=True)
@click.option("--minutes", default=60.0, show_default=True)
@click.option("--phase", type=click.Choice(["all", "export", "import"]), default="all", hidden=True)
def main(work: Path, utterances: int, videos: int, minutes: float, phase: str) -> None:
    if phase == "all":
        work.mkdir(parents=True, exist_ok=True)
        scores = make_scores(work, make_media(work, videos, minutes), utterances, minutes)
        print(f"{utterances} utterances over {videos} recordings of {minutes:g} min: {scores}", flush=True)
        for name in ("export", "import"):
            args = ["--work", work, "--utterances", utterances, "--videos", videos, "--minutes", minutes]
            subprocess.run([sys.executable, __file__, *map(str, args), "--phase", name], check=True)
        return
    from annotate.labelstudio import export_tasks, import_export

    started = time.perf_counter()
    if phase == "export":
        summary = export_tasks(work / "scores.parquet", work / "tasks", workers=2)
        done = f"{summary.tasks} tasks"
    else:
        export_file = labelled_export(work / "tasks" / "tasks.json", work / "project-export.json")
        started = time.perf_counter()  # the made-up labelling is not the import's time
        summary = import_export(export_file, work / "tasks", work / "corpus")
        done = f"{summary.clips} clips"
    seconds = time.perf_counter() - started
    own, children = peak_mib()
    print(f"{phase}: {done} in {seconds:.1f} s, peak RSS {own:.0f} MiB (largest ffmpeg child {children:.0f} MiB)")


if __name__ == "__main__":
    main()
