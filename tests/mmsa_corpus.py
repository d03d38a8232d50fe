"""A small labelled corpus in the MMSA raw layout, spoken by espeak-ng, for the training tests.

Clips of video `vid_a` are MP4 files under `Raw/`; those of `vid_b` are WAV
files under `wav/` with CH-SIMS style zero-padded names (label.csv says
clip 1, the file is 0001.wav), so both MMSA layouts are exercised.
Positive sentences get positive labels; `label_T`/`label_A` differ from
`label` so tests can tell which label fed which head.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tests.media import require_tools, speak, video_from_audio

POSITIVE = [
    "I loved it, wonderful.",
    "What a great film.",
    "Brilliant and moving.",
    "Really good acting.",
    "Fantastic music.",
    "I laughed a lot, great fun.",
    "A lovely story.",
    "Absolutely brilliant.",
]
NEGATIVE = [
    "Boring and far too long.",
    "The worst film ever.",
    "What a waste of time.",
    "I hated the plot.",
    "Terrible acting.",
    "Dull and bad.",
    "Awful, do not watch.",
    "It makes no sense.",
]
# Split of each (positive, negative) pair: 8 clips train, 4 valid, 4 test, every split balanced.
PAIR_SPLITS = ["train", "valid", "train", "test"] * 2
COLUMNS = ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"]


def corpus_rows() -> list[dict[str, str]]:
    rows = []
    for i, (pos, neg) in enumerate(zip(POSITIVE, NEGATIVE)):
        for j, (text, sign) in enumerate(((pos, 1.0), (neg, -1.0))):
            index = 2 * i + j
            video = "vid_a" if index % 2 == 0 else "vid_b"
            label = sign * (1.0 + 0.25 * (i % 4))
            rows.append(
                {
                    "video_id": video,
                    "clip_id": str(index // 2 + 1),
                    "text": text,
                    "label": f"{label:g}",
                    "label_T": f"{label * 0.8:g}",
                    "label_A": f"{label * 0.6:g}",
                    "label_V": "",
                    "annotation": "Positive" if sign > 0 else "Negative",
                    "mode": PAIR_SPLITS[i],
                }
            )
    return rows


def write_label_csv(path: Path, rows: list[dict[str, str]], columns: list[str] = COLUMNS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def media_path(root: Path, row: dict[str, str]) -> Path:
    if row["video_id"] == "vid_a":
        return root / "Raw" / row["video_id"] / f"{row['clip_id']}.mp4"
    return root / "wav" / row["video_id"] / f"{int(row['clip_id']):04d}.wav"


def build_corpus(root: Path) -> Path:
    """Write label.csv and real media for every clip under `root`; return `root`."""
    require_tools()
    rows = corpus_rows()
    write_label_csv(root / "label.csv", rows)
    for row in rows:
        target = media_path(root, row)
        if target.suffix == ".wav":
            speak(row["text"], target)
        else:
            spoken = speak(row["text"], root / ".speech" / f"{row['video_id']}_{row['clip_id']}.wav")
            video_from_audio(spoken, target)
    return root
