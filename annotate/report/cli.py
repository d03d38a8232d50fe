"""`mmml-report SCORES.parquet [--compare OTHER.parquet] --out report.html`."""

from __future__ import annotations

from pathlib import Path

import click

from mmml.atomic import write_text_atomic

from ..cli import CannotStart
from ..run import RunPaths
from .figures import VIDEO_ORDERS
from .page import ReportOptions, render
from .runs import ReportError, load_run


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument("scores", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="HTML file to write.")
@click.option(
    "--compare",
    "other",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An earlier annotation of the same corpus (e.g. before retraining) to compare with.",
)
@click.option("--videos", default=ReportOptions.videos, type=click.IntRange(0), help="Videos shown one by one.")
@click.option("--order", default=ReportOptions.order, type=click.Choice(VIDEO_ORDERS), help="Which videos come first.")
@click.option("--top", default=ReportOptions.top, type=click.IntRange(1), help="Rows of each 'most ...' list.")
def main(scores: Path, out: Path, other: Path | None, videos: int, order: str, top: int) -> None:
    """Write an mmml-annotate output (and its errors file) as one self-contained HTML page.

    Exit status: 0 written; 2 an input is missing or not an mmml-annotate output.
    """
    inputs = [p for p in (scores, other) if p is not None]
    if out.resolve() in {q.resolve() for p in inputs for q in (p, RunPaths(p).errors)}:
        raise CannotStart(f"--out {out} would overwrite an input")
    try:
        run = load_run(scores)
        page = render(run, ReportOptions(videos, order, top), load_run(other) if other else None)
    except ReportError as err:
        raise CannotStart(str(err)) from err
    write_text_atomic(page, out)
    click.echo(f"{out}: {run.utterances.num_rows} utterances from {scores}", err=True)
