"""Training throughput: clips per second and peak memory, with and without length-aware batching.

Runs the trainer's own epoch loop (`training.trainer.train_epoch`: collate,
forward, multi-loss, backward, AdamW step) over the first `--clips` training
clips of a corpus, once per (model, batching) pair, each in a fresh process
so that peak memory (max RSS on CPU, max allocated on CUDA) belongs to that
pair alone. A first, untimed epoch warms up kernels and allocators; the
second epoch is timed.

    python benchmarks/train_throughput.py --data ../shared/data/mosi_label.csv

Models: `tiny` (2-layer, 32-wide random RoBERTa; `samples.tiny`) and `minilm`
(packaged all-MiniLM-L6-v2), text-only by default so the real MOSI labels
need no media; `--modalities text,audio` adds the tiny Data2Vec-audio
encoder and a 2-layer fusion network, and needs media: either an MMSA
corpus that has them, or `--speak` to have espeak-ng read the first
`--clips` training transcripts into a temporary corpus.

    python benchmarks/train_throughput.py --data ../shared/data/mosi_label.csv \
        --modalities text,audio --speak --clips 128
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmml.config import ModelConfig  # noqa: E402
from mmml.model import MMML  # noqa: E402
from mmml.preprocessing import Preprocessor  # noqa: E402
from samples.media import speak  # noqa: E402
from samples.tiny import tiny_model_config  # noqa: E402
from tests.mmsa_corpus import write_label_csv  # noqa: E402
from training.batching import padding_fraction, training_batches  # noqa: E402
from training.config import CorpusConfig, DataConfig, OptimConfig, TrainConfig  # noqa: E402
from training.dataset import read_corpus  # noqa: E402
from training.examples import prepare_examples, sort_lengths  # noqa: E402
from training.trainer import Runtime, autocast_for, make_optimizer, train_epoch  # noqa: E402

MODELS = ("tiny", "minilm")


def model_config(name: str, modalities: str, max_tokens: int, workdir: Path) -> ModelConfig:
    """The tiny configuration of `samples.tiny`; `minilm` swaps in the packaged MiniLM text encoder."""
    config = tiny_model_config(workdir / "tiny", variant="text-only" if modalities == "text" else "fused")
    config.text.max_tokens = max_tokens
    if name == "minilm":
        config.text.name_or_path = "packaged:all-minilm-l6-v2"
    return config


def spoken_corpus(data: str, clips: int, root: Path) -> Path:
    """The first `clips` training transcripts of `data`, spoken into wav/<video>/<clip>.wav."""
    train = read_corpus(data).split("train")[:clips]
    rows = [
        {"video_id": c.video_id, "clip_id": c.clip_id, "text": c.text, "label": c.label, "mode": "train"} for c in train
    ]
    for clip in train:
        speak(clip.text, root / "wav" / clip.video_id / f"{clip.clip_id}.wav")
    write_label_csv(root / "label.csv", rows, ["video_id", "clip_id", "text", "label", "mode"])
    return root


def measure(args: argparse.Namespace) -> dict:
    """One (model, batching) pair in this process."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as workdir:
        model_cfg = model_config(args.model, args.modalities, args.max_tokens, Path(workdir))
        config = TrainConfig(
            model=model_cfg,
            data=DataConfig(corpora=(CorpusConfig(args.data),)),
            optim=OptimConfig(lr=5e-5, batch_size=args.batch_size, length_batching=args.length_batching),
            seeds=(0,),
        )
        corpus = read_corpus(args.data)
        train = prepare_examples(corpus, ["train"], model_cfg, progress=False).splits["train"][: args.clips]
        model = MMML.from_config(model_cfg).to(device)
        preprocessor = Preprocessor.from_config(model_cfg)
        optimizer = make_optimizer(model, config)
        scaler = torch.amp.GradScaler(device.type, enabled=False)
        runtime = Runtime(device, progress=False, log=lambda m: None)
        lengths = sort_lengths(train, preprocessor)
        warm_up, batches = (
            training_batches(lengths, args.batch_size, seed=0, epoch=epoch, length_aware=args.length_batching)
            for epoch in (1, 2)
        )
        amp = autocast_for(config, device)
        train_epoch(model, optimizer, scaler, amp, train, warm_up, preprocessor, config, runtime, "warm-up")
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        train_epoch(model, optimizer, scaler, amp, train, batches, preprocessor, config, runtime, "benchmark")
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "model": args.model,
        "modalities": args.modalities,
        "length_batching": args.length_batching,
        "clips": len(train),
        "batch_size": args.batch_size,
        "padding_fraction": round(padding_fraction(lengths, batches), 3),
        "clips_per_second": round(len(train) / seconds, 1),
        "peak_memory_mib": round(peak, 1),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def measure_in_child(model: str, length_batching: int, data: str) -> dict:
    """`measure` in a fresh process, so peak memory is this pair's alone."""
    arguments = [a for a in sys.argv[1:] if a != "--speak"] + ["--data", data]
    child = [sys.executable, __file__, *arguments, "--model", model, "--length-batching", str(length_batching)]
    output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
    row = json.loads(output.strip().splitlines()[-1])
    print(json.dumps(row), file=sys.stderr)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="corpus directory or label.csv")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--modalities", default="text", choices=["text", "text,audio"])
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--speak", action="store_true", help="speak the transcripts into a temporary corpus (espeak-ng)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--model", help=argparse.SUPPRESS)  # child process: measure one pair
    parser.add_argument("--length-batching", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model:
        args.length_batching = bool(args.length_batching)
        print(json.dumps(measure(args)))
        return
    with tempfile.TemporaryDirectory() as workdir:
        data = str(spoken_corpus(args.data, args.clips, Path(workdir))) if args.speak else args.data
        rows = [
            measure_in_child(model, length_batching, data)
            for model in args.models.split(",")
            for length_batching in (1, 0)
        ]
    print("| model | length-aware batching | clips/s | peak memory (MiB) | padding share |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} ({r['modalities']}) | {'on' if r['length_batching'] else 'off'} | "
            f"{r['clips_per_second']} | {r['peak_memory_mib']} | {r['padding_fraction']:.0%} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
