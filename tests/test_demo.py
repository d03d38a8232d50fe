"""`make demo` re-runs: results made with other demo settings are rebuilt; the same settings resume."""

from __future__ import annotations

from pathlib import Path

from annotate.demo import forget_stale_results


def _made(workdir: Path) -> None:
    for folder in ("videos", "backbones/audio", "corpus/wav", "train/seed-1", "scores.parquet.parts/done"):
        (workdir / folder).mkdir(parents=True, exist_ok=True)
    for file in ("videos/a.mp4", "corpus/label.csv", "scores.parquet", "scores.errors.parquet"):
        (workdir / file).write_text("x")


def test_a_changed_recipe_rebuilds_results_but_keeps_videos_and_backbones(tmp_path) -> None:
    _made(tmp_path)  # an older demo: no recipe at all
    forget_stale_results(tmp_path, {"clips": {"train": 640}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backbones", "recipe.json", "videos"]
    assert (tmp_path / "videos" / "a.mp4").is_file()

    _made(tmp_path)
    forget_stale_results(tmp_path, {"clips": {"train": 640}})  # same recipe: an interrupted demo resumes
    assert (tmp_path / "train" / "seed-1").is_dir() and (tmp_path / "scores.parquet").is_file()

    forget_stale_results(tmp_path, {"clips": {"train": 320}})
    assert not (tmp_path / "train").exists() and not list(tmp_path.glob("scores.*"))
