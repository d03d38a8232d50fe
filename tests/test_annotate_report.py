"""`mmml-report`: every number on the page checked against pandas on the same Parquet; comparisons; the browser.

The annotations here are written with the pipeline's own writers, built to
hold what real corpora hold: copies of one video under two paths, utterances
without words, tied scores, two languages, failures at several stages, and a
transcript that is an HTML injection. The expected figures are computed
independently, with pandas, from the Parquet files.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from annotate.report.cli import main
from annotate.run import RunPaths
from pipelines.write import error_table, utterance_table, with_metadata, write_atomic
from tests.report_page import decimals, read_page, shown_number

HEADS = ("fused", "text", "audio")
INJECTION = "<script>alert('pwned')</script> & <b>bold</b>"
TOP, VIDEOS = 4, 3


def _utterances(rng: np.random.Generator) -> list[dict]:
    rows = []
    for v in range(6):
        path, video_id = f"/corpus/show {v}/episode_{v}.mp4", f"{v:016x}"
        start = 0.0
        for u in range(int(rng.integers(3, 9))):
            length = float(np.round(rng.uniform(1.0, 9.0), 3))
            words = not (v == 2 and u % 2 == 0)  # a video with some utterances ASR heard no words in
            text, audio = (float(x) for x in rng.uniform(-3.2, 3.2, 2).astype(np.float32))
            if u == 2:  # exact zeros: sign agreement counts 0 with the positives
                text, audio = (0.0, audio) if v % 2 else (text, 0.0)
            rows.append(
                {
                    "video_path": path,
                    "video_id": video_id,
                    "utterance": u,
                    "start": start,
                    "end": start + length,
                    "text": (INJECTION if (v, u) == (1, 1) else f"sentence {u} of video {v}") if words else "",
                    "language": "de" if v == 4 else "en",
                    "language_probability": 0.9,
                    "asr_confidence": float(rng.uniform(0.2, 1.0)) if words else None,
                    # a tie at the top of the most positive list, broken by path
                    "score_fused": 3.1 if u == 0 and v in (3, 5) else float(np.float32(rng.uniform(-3, 3))),
                    "score_text": text if words else None,
                    "score_audio": audio,
                    "model_id": "0123456789abcdef",
                    "asr_model": "packaged:whisper-tiny.en",
                }
            )
            start += length + float(rng.uniform(0.2, 2.0))
    copies = [{**r, "video_path": "/corpus/copy of episode_1.mp4"} for r in rows if r["video_id"] == f"{1:016x}"]
    return rows + copies


ERRORS = [
    {"video_path": "/corpus/zero.mp4", "video_id": None, "stage": "demux", "error_type": "DecodeError", "message": "m"},
    {"video_path": "/corpus/cut.mp4", "video_id": "ff", "stage": "demux", "error_type": "DecodeError", "message": "1"},
    {"video_path": "/corpus/quiet.mp4", "video_id": "ee", "stage": "segment", "error_type": "NoSpeech", "message": ""},
]


def _write(rows: list[dict], out: Path, errors: list[dict] | None = ERRORS) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(with_metadata(utterance_table(rows), {"config": {"score": {"batch_size": 16}}}), out)
    if errors is not None:
        write_atomic(error_table({**e, "traceback": None} for e in errors), RunPaths(out).errors)
    return out


@pytest.fixture(scope="module")
def annotation(tmp_path_factory) -> Path:
    return _write(_utterances(np.random.default_rng(7)), tmp_path_factory.mktemp("report") / "scores.parquet")


@pytest.fixture(scope="module")
def earlier(annotation: Path, tmp_path_factory) -> Path:
    """The same corpus scored before: other scores, one video cut differently, one utterance ending 2 ms later,
    one utterance fewer and one video more."""
    rng = np.random.default_rng(8)
    rows = pq.read_table(annotation).to_pylist()
    earlier = []
    for row in rows:
        if row["video_id"] == f"{0:016x}" and row["utterance"] == 1:
            continue  # only in this run
        row = {**row, "score_fused": float(np.float32(row["score_fused"] + rng.normal(0, 0.5)))}
        row["score_audio"] = float(np.float32(rng.uniform(-3, 3)))
        if row["video_id"] == f"{5:016x}":
            row["start"], row["end"] = row["start"] + 0.2, row["end"] + 0.2  # transcribed anew: other cuts
        elif row["video_id"] == f"{3:016x}" and row["utterance"] == 1:
            row["end"] += 0.002  # two milliseconds apart: another utterance
        elif row["video_id"] == f"{3:016x}" and row["utterance"] == 2:
            row["end"] += 1e-7  # float noise: the same utterance
        earlier.append(row)
    earlier.append({**rows[0], "video_path": "/corpus/gone.mp4", "video_id": "dd", "utterance": 0})
    return _write(earlier, tmp_path_factory.mktemp("earlier") / "earlier.parquet", errors=None)


def report(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


# --- what the page must say, computed with pandas ---------------------------------------------------------------


def first_copies(frame: pd.DataFrame) -> pd.DataFrame:
    """Each video's rows under its first path: a copy under another path is the same video."""
    first = frame.groupby("video_id")["video_path"].transform("min")
    return frame[frame["video_path"] == first]


def row_id(row) -> str:
    return f"{row.video_id}/{row.utterance}"


def shown_text(text: str) -> str:
    return text or "(no words)"


def expected_page(frame: pd.DataFrame, errors: pd.DataFrame, order: str) -> tuple[dict, dict]:
    """The figures of the page (key -> value) and its listed rows (list -> [(row id, text)]) for one run."""
    paths = frame["video_path"].nunique()
    frame = first_copies(frame)
    f: dict[str, float] = {
        "corpus.videos": frame["video_id"].nunique(),
        "corpus.copies": paths - frame["video_id"].nunique(),
        "corpus.failed_videos": errors["video_path"].nunique(),
        "corpus.utterances": len(frame),
        "corpus.hours": (frame["end"] - frame["start"]).sum() / 3600,
        "corpus.without_words": (frame["text"] == "").sum(),
        "videos.total": frame["video_id"].nunique(),
    }
    f |= {f"language.{k}": v for k, v in frame["language"].value_counts().items()}
    by_type = errors.groupby(["stage", "error_type"])["video_path"].nunique()
    f |= {f"failures.{stage}.{kind}": n for (stage, kind), n in by_type.items()}
    for head in HEADS:
        values = frame[f"score_{head}"].dropna().astype(float)
        f |= {f"head.{head}.{k}": getattr(values, k)() for k in ("mean", "std", "min", "max")}
        f[f"head.{head}.n"] = len(values)
    pairs = frame[["score_text", "score_audio"]].dropna().astype(float)
    f["text_audio.n"] = len(pairs)
    f["text_audio.pearson"] = pairs["score_text"].corr(pairs["score_audio"])
    f["text_audio.sign"] = ((pairs["score_text"] >= 0) == (pairs["score_audio"] >= 0)).mean()
    sure = frame[["asr_confidence", "score_fused"]].dropna().astype(float)
    f["confidence.n"] = len(sure)
    f["confidence.pearson"] = sure["asr_confidence"].corr(sure["score_fused"])
    f["confidence.unsure"] = (frame["asr_confidence"] < 0.5).sum()
    f["confidence.threshold"] = 0.5

    rows: dict[str, list] = {}
    gap = frame.assign(gap=(frame["score_text"].astype(float) - frame["score_audio"].astype(float)).abs())
    ties = ["video_path", "utterance"]
    lists = {
        "positive": gap[gap["score_fused"] > 0].sort_values(["score_fused", *ties], ascending=[False, True, True]),
        "negative": gap[gap["score_fused"] < 0].sort_values(["score_fused", *ties]),
        "disagreeing": gap[gap["gap"] > 0].sort_values(["gap", *ties], ascending=[False, True, True]),
    }
    for name, listed in lists.items():
        listed = listed.head(TOP)
        rows[name] = [(row_id(r), shown_text(r.text)) for r in listed.itertuples()]
        for rank, row in enumerate(listed.itertuples(), 1):
            f |= _row_figures(f"{name}.{rank}", row)
            if name == "disagreeing":
                f[f"{name}.{rank}.gap"] = row.gap

    per_video = gap.groupby("video_path").agg(
        ends=("end", "sum"),
        starts=("start", "sum"),
        n=("utterance", "size"),
        mean=("score_fused", "mean"),
        mean_gap=("gap", "mean"),
    )
    per_video = per_video.assign(seconds=per_video["ends"] - per_video["starts"]).reset_index()
    by = {"length": ("seconds", False), "positive": ("mean", False), "negative": ("mean", True)}
    by |= {"disagreement": ("mean_gap", False), "name": ("video_path", True)}
    key, ascending = by[order]
    chosen = per_video.sort_values([key, "video_path"], ascending=[ascending, True]).head(VIDEOS)
    f["videos.shown"] = len(chosen)
    for rank, video in enumerate(chosen.itertuples(), 1):
        f |= {f"video.{rank}.utterances": video.n, f"video.{rank}.seconds": video.seconds}
        f[f"video.{rank}.mean_fused"] = video.mean
        utterances = frame[frame["video_path"] == video.video_path].sort_values("utterance")
        rows[f"video.{rank}"] = [(row_id(r), shown_text(r.text)) for r in utterances.itertuples()]
        for row in utterances.itertuples():
            f |= _row_figures(f"video.{rank}.{row.utterance}", row)
    return f, rows


def _row_figures(key: str, row) -> dict[str, float]:
    values = {"start": row.start, "end": row.end, "confidence": row.asr_confidence}
    values |= {head: getattr(row, f"score_{head}") for head in HEADS}
    return {f"{key}.{name}": value for name, value in values.items()}


def expected_comparison(this: pd.DataFrame, other: pd.DataFrame) -> tuple[dict, dict]:
    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        return first_copies(frame).assign(s=(frame["start"] * 1000).round(), e=(frame["end"] * 1000).round())

    here, there = keyed(this), keyed(other)
    both = here.merge(there, on=["video_id", "s", "e"], suffixes=("", "_o"), validate="one_to_one")
    f: dict[str, float] = {
        "compare.matched": len(both),
        "compare.only_here": len(here) - len(both),
        "compare.only_other": len(there) - len(both),
    }
    for head in HEADS:
        pair = both[[f"score_{head}", f"score_{head}_o"]].dropna().astype(float)
        new, old = pair[f"score_{head}"], pair[f"score_{head}_o"]
        f |= {f"compare.{head}.n": len(pair), f"compare.{head}.pearson": new.corr(old)}
        f[f"compare.{head}.sign"] = ((new >= 0) == (old >= 0)).mean()
        f[f"compare.{head}.mean_change"] = (new - old).mean()
        f[f"compare.{head}.mean_abs_change"] = (new - old).abs().mean()
    rows: dict[str, list] = {}
    both = both.assign(change=both["score_fused"].astype(float) - both["score_fused_o"].astype(float))
    changed = both.assign(size=both["change"].abs()).sort_values(
        ["size", "video_path", "start"], ascending=[False, True, True]
    )
    rows["changed"] = [(row_id(r), shown_text(r.text)) for r in changed.head(TOP).itertuples()]
    for rank, row in enumerate(changed.head(TOP).itertuples(), 1):
        f |= {f"changed.{rank}.start": row.start, f"changed.{rank}.end": row.end, f"changed.{rank}.change": row.change}
        f |= {f"changed.{rank}.this": row.score_fused, f"changed.{rank}.other": row.score_fused_o}
    means = both.groupby("video_id").agg(
        path=("video_path", "min"), n=("change", "size"), this=("score_fused", "mean"), other=("score_fused_o", "mean")
    )
    means = means.assign(moved=means["this"] - means["other"]).assign(size=lambda m: m["moved"].abs())
    moved = means.sort_values(["size", "path"], ascending=[False, True]).head(TOP).reset_index()
    rows["moved"] = [(r.video_id, None) for r in moved.itertuples()]
    for rank, row in enumerate(moved.itertuples(), 1):
        f |= {f"moved.{rank}.utterances": row.n, f"moved.{rank}.this": row.this, f"moved.{rank}.other": row.other}
        f[f"moved.{rank}.moved"] = row.moved
    for name, side in (("only_here", here), ("only_other", there)):
        alone = side.merge(both[["video_id", "s", "e"]], how="left", indicator=True).query("_merge == 'left_only'")
        alone = alone.sort_values(["video_path", "start"]).head(TOP)
        rows[name] = [(row_id(r), shown_text(r.text)) for r in alone.itertuples()]
        for rank, row in enumerate(alone.itertuples(), 1):
            f |= {f"{name}.{rank}.start": row.start, f"{name}.{rank}.end": row.end}
    return f, rows


def assert_page_shows(html: str, expected: dict[str, float], rows: dict[str, list]) -> None:
    page = read_page(html)
    assert not page.stray_digits, f"numbers that are not figures: {page.stray_digits[:5]}"
    missing, unexpected = sorted(set(expected) - set(page.figures)), sorted(set(page.figures) - set(expected))
    assert not missing and not unexpected, f"missing {missing[:8]}, unexpected {unexpected[:8]}"
    for key, want in expected.items():
        got = page.figures[key]
        if want is None or (isinstance(want, float) and math.isnan(want)):
            assert math.isnan(got.value) and got.shown == "n/a", key
            continue
        assert got.value == pytest.approx(float(want), rel=1e-6, abs=1e-9), key
        assert shown_number(got.shown) == pytest.approx(got.value, abs=0.5 * 10 ** -decimals(got.shown) + 1e-12), key
    listed: dict[str, list] = {}
    for row in page.rows:  # which utterances, in which order, with which text
        listed.setdefault(row.listed_in, []).append((row.row, row.text))
    assert listed == {name: entries for name, entries in rows.items() if entries}


# --- tests -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["length", "name", "positive", "negative", "disagreement"])
def test_every_number_on_the_page_is_the_figure_computed_from_the_parquet(annotation, tmp_path, order) -> None:
    out = tmp_path / "report.html"
    code, output = report(annotation, "--out", out, "--top", TOP, "--videos", VIDEOS, "--order", order)
    assert code == 0, output
    frame, errors = pd.read_parquet(annotation), pd.read_parquet(RunPaths(annotation).errors)
    assert_page_shows(out.read_text(), *expected_page(frame, errors, order))


def test_two_runs_are_compared_utterance_by_utterance(annotation, earlier, tmp_path) -> None:
    out = tmp_path / "report.html"
    code, output = report(annotation, "--compare", earlier, "--out", out, "--top", TOP, "--videos", VIDEOS)
    assert code == 0, output
    this, other = pd.read_parquet(annotation), pd.read_parquet(earlier)
    figures, rows = expected_page(this, pd.read_parquet(RunPaths(annotation).errors), "length")
    compared, compared_rows = expected_comparison(this, other)
    # The earlier run left out one utterance, cut one video anew (all its utterances unmatched both ways), ended
    # one utterance 2 ms later and had a video more; float noise in an end time still matches.
    shifted = (this["video_id"] == f"{5:016x}").sum()
    assert compared["compare.only_here"] == 1 + shifted + 1 and compared["compare.only_other"] == shifted + 1 + 1
    assert_page_shows(out.read_text(), figures | compared, rows | compared_rows)


def test_transcripts_and_paths_from_the_corpus_are_shown_as_text_not_markup(annotation, tmp_path) -> None:
    out = tmp_path / "report.html"
    assert report(annotation, "--out", out, "--order", "name")[0] == 0
    html = out.read_text()
    assert read_page(html).scripts == 0
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_inputs_that_are_not_annotations_are_refused_by_name(annotation, tmp_path) -> None:
    not_parquet = tmp_path / "notes.parquet"
    not_parquet.write_text("hello")
    other_table = tmp_path / "other.parquet"
    pq.write_table(pq.read_table(annotation).drop_columns(["score_fused", "text"]), other_table)
    out = tmp_path / "report.html"
    for path, why in [
        (tmp_path / "missing.parquet", "no such file"),
        (not_parquet, "not a Parquet file"),
        (other_table, "lacks the columns text, score_fused"),
    ]:
        code, output = report(path, "--out", out)
        assert code == 2 and str(path) in output and why in output, output
        code, output = report(annotation, "--compare", path, "--out", out)
        assert code == 2 and str(path) in output and why in output, output
    assert not out.exists()


def test_the_report_never_overwrites_its_inputs(annotation, earlier) -> None:
    before = annotation.read_bytes()
    for out in (annotation, RunPaths(annotation).errors, earlier):
        code, output = report(annotation, "--compare", earlier, "--out", out)
        assert code == 2 and "would overwrite an input" in output, output
    assert annotation.read_bytes() == before


def test_columns_of_the_wrong_type_are_refused_by_name(annotation, tmp_path) -> None:
    table = pq.read_table(annotation)
    index = table.schema.get_field_index("score_fused")
    wrong = table.set_column(index, "score_fused", pa.array(["high"] * table.num_rows))
    pq.write_table(wrong, tmp_path / "strings.parquet")
    code, output = report(tmp_path / "strings.parquet", "--out", tmp_path / "r.html")
    assert code == 2 and "strings.parquet: not an mmml-annotate output" in output, output


def test_nan_scores_from_another_writer_count_as_missing(annotation, tmp_path) -> None:
    """NaN where the pipeline writes null: the same page, not NaN means and NaN rows in the lists."""
    frame = pq.read_table(annotation).to_pandas()
    with_nulls = _write(frame.assign(score_audio=None).to_dict("records"), tmp_path / "nulls" / "s.parquet")
    table = pa.Table.from_pandas(frame.assign(score_audio=np.float32("nan")), preserve_index=False)
    with_nans = tmp_path / "nans" / "s.parquet"
    with_nans.parent.mkdir()
    pq.write_table(table, with_nans)
    pages = []
    for path in (with_nulls, with_nans):
        assert report(path, "--out", path.with_suffix(".html"), "--order", "disagreement")[0] == 0
        pages.append(
            {k: (f.value, f.shown) for k, f in read_page(path.with_suffix(".html").read_text()).figures.items()}
        )
    without_errors_file = {k for k in pages[0] if k.startswith(("corpus.failed", "failures."))}
    assert {k: v for k, v in pages[0].items() if k not in without_errors_file}.keys() == pages[1].keys()
    assert all(pages[0][k][1] == pages[1][k][1] for k in pages[1])


def test_a_model_without_scores_gets_a_page_without_plots(annotation, tmp_path) -> None:
    frame = pq.read_table(annotation).to_pandas().assign(score_fused=None, score_text=None, score_audio=None)
    path = _write(frame.to_dict("records"), tmp_path / "s.parquet")
    assert report(path, "--out", tmp_path / "r.html")[0] == 0
    page = read_page((tmp_path / "r.html").read_text())
    assert not page.images and page.figures["corpus.utterances"].value == len(first_copies(frame))


def test_many_pairs_are_drawn_as_a_density(tmp_path) -> None:
    """Above a few thousand utterances a scatter would be a blot: the hexbin branch draws a real picture."""
    import base64
    import io

    from PIL import Image

    from annotate.report.plots import density

    rng = np.random.default_rng(0)
    x = rng.normal(size=20_000)
    uri = density(x, x + rng.normal(size=x.size), "x", "y")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # a colour scale, not a few dots


def test_an_annotation_without_errors_file_or_text_head_is_reported(annotation, tmp_path) -> None:
    audio_only = pq.read_table(annotation).to_pandas().assign(score_text=None, score_fused=None)
    path = _write(audio_only.to_dict("records"), tmp_path / "audio.parquet", errors=None)
    out = tmp_path / "report.html"
    assert report(path, "--out", out)[0] == 0
    page = read_page(out.read_text())
    assert {"head.audio.n"} <= set(page.figures) and not {"head.text.n", "head.fused.n", "text_audio.n"} & set(
        page.figures
    )
    assert "corpus.failed_videos" not in page.figures and "no errors file" in out.read_text()


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (scripts/setup.sh installs it): the page is not rendered"
        if os.environ.get("MMML_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return found


HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_page_renders_in_a_browser_with_every_plot(annotation, earlier, tmp_path) -> None:
    """Headless Chromium draws the page to a PNG, and reports each picture decoded (a broken one is 0 wide)."""
    chromium = _chromium()
    out = tmp_path / "report.html"
    assert report(annotation, "--compare", earlier, "--out", out, "--videos", VIDEOS)[0] == 0
    browser = [chromium, *HEADLESS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,4000"]
    screenshot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={screenshot}", out.as_uri()], check=True, capture_output=True, timeout=120)
    from PIL import Image

    with Image.open(screenshot) as image:
        assert image.size == (1200, 4000)
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels != 255).any(axis=2).mean() > 0.05  # drawn on, not a blank page

    probe = tmp_path / "probe.html"  # a copy of the page that writes each image's decoded width into the DOM
    probe.write_text(
        out.read_text().replace(
            "</body>",
            "<script>window.onload = () => { document.body.dataset.widths = "
            "Array.from(document.images, i => i.complete ? i.naturalWidth : -1).join(' '); };</script></body>",
        )
    )
    dom = subprocess.run(
        [*browser, "--dump-dom", probe.as_uri()], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    widths = [int(w) for w in read_widths(dom)]
    expected_images = 4 + VIDEOS  # histograms, text-audio, confidence, comparison; one timeline per video
    assert len(widths) == expected_images and all(w > 100 for w in widths), widths


def read_widths(dom: str) -> list[str]:
    import re

    found = re.search(r'data-widths="([^"]*)"', dom)
    assert found, "the page's script did not run"
    return found.group(1).split()


def test_a_run_in_which_every_video_failed_is_reported(tmp_path) -> None:
    many = [{**ERRORS[0], "video_path": f"/corpus/broken_{i:03d}.mp4"} for i in range(60)]
    path = _write([], tmp_path / "scores.parquet", errors=many)
    out = tmp_path / "report.html"
    code, output = report(path, "--out", out, "--compare", path)
    assert code == 0, output
    page = read_page(out.read_text())
    figures = {k: f.value for k, f in page.figures.items()}
    assert figures["corpus.utterances"] == 0 and figures["corpus.failed_videos"] == 60
    assert figures["failures.demux.DecodeError"] == 60 and figures["failures.not_listed"] == 10
    assert figures["compare.matched"] == 0 and not page.images
