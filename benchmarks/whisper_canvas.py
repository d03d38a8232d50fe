"""Does running Whisper's encoder on a clip's own length (not its 30 s window) cost accuracy?

Whisper is trained on 30 s windows; MMML runs it on the clip's own length
with padded frames masked (`mmml.whisper.encode_whisper`), which is
~8x cheaper for a 3.7 s clip. This compares the two on RAVDESS with a
frozen-feature probe, so the encoder's representation is all that differs:

* `clip`: log-mel of the clip's own length, padded frames masked;
* `30s`: Whisper's native input, the clip zero-padded to 30 s, no mask;

each pooled (mean and standard deviation over the clip's own frames), then a
ridge regression fitted on the 12 training actors, its penalty chosen on the
2 validation actors, scored on the 2 test actors (8 and 16) it never heard.

    python benchmarks/whisper_canvas.py [--encoder packaged:whisper-tiny.en] [--data ../shared/data/ravdess]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmml import whisper  # noqa: E402
from mmml.encoders import load_encoder  # noqa: E402
from mmml.metrics import mosi_metrics  # noqa: E402
from pipelines.demux import decode_audio  # noqa: E402
from training.dataset import MediaIndex, read_corpus  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@torch.inference_mode()
def pooled_features(encoder, extractor, audio: np.ndarray, canvas: str) -> np.ndarray:
    if canvas == "30s":
        features = extractor(audio, sampling_rate=16_000, return_tensors="pt")["input_features"]
        mask = torch.ones(1, features.shape[-1] // 2, dtype=torch.bool)  # Whisper's way: attend to everything
    else:
        length = whisper.padded_length(len(audio))
        features = extractor(audio, sampling_rate=16_000, padding="max_length", max_length=length, return_tensors="pt")[
            "input_features"
        ]
        mask = torch.arange(features.shape[-1] // 2)[None] < whisper.frame_lengths(torch.tensor([len(audio)]))[:, None]
    states = whisper.encode_whisper(encoder, features, mask)[0]
    own = states[: int(whisper.frame_lengths(torch.tensor(len(audio))))]
    return torch.cat([own.mean(0), own.std(0)]).numpy()


def ridge(train_x: np.ndarray, train_y: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray, float]:
    mean, scale = train_x.mean(0), train_x.std(0) + 1e-6
    x = (train_x - mean) / scale
    weights = np.linalg.solve(x.T @ x + penalty * np.eye(x.shape[1]), x.T @ (train_y - train_y.mean()))
    return mean, scale, weights, train_y.mean()


def predict(model, x: np.ndarray) -> np.ndarray:
    mean, scale, weights, bias = model
    return ((x - mean) / scale) @ weights + bias


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="packaged:whisper-tiny.en")
    parser.add_argument("--data", type=Path, default=SHARED / "ravdess")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import WhisperFeatureExtractor

    encoder, extractor = load_encoder(args.encoder).eval(), WhisperFeatureExtractor()
    corpus = read_corpus(args.data)
    media = MediaIndex(corpus.root)
    audio = {c.key: decode_audio(media.find(c)) for c in corpus.clips}
    labels = {s: np.array([c.label for c in corpus.split(s)]) for s in ("train", "valid", "test")}
    results = {}
    for canvas in ("clip", "30s"):
        started = time.perf_counter()
        features = {
            s: np.stack([pooled_features(encoder, extractor, audio[c.key], canvas) for c in corpus.split(s)])
            for s in ("train", "valid", "test")
        }
        seconds = time.perf_counter() - started
        penalties = [10.0**k for k in range(-1, 5)]
        fits = [ridge(features["train"], labels["train"], p) for p in penalties]
        valid_mae = [np.abs(predict(fit, features["valid"]) - labels["valid"]).mean() for fit in fits]
        penalty = penalties[int(np.argmin(valid_mae))]
        model = ridge(features["train"], labels["train"], penalty)
        metrics = mosi_metrics(predict(model, features["test"]), labels["test"])
        results[canvas] = {
            "encoder_seconds_per_clip": round(seconds / len(corpus.clips), 4),
            "ridge_penalty": penalty,
            **{k: round(float(metrics[k]), 4) for k in ("Non0_acc_2", "Has0_acc_2", "MAE", "Corr")},
        }
        print(canvas, json.dumps(results[canvas]), flush=True)
    ratio = results["30s"]["encoder_seconds_per_clip"] / results["clip"]["encoder_seconds_per_clip"]
    print(f"30 s canvas costs {ratio:.1f}x the clip-length encoder", flush=True)


if __name__ == "__main__":
    main()
