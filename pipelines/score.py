"""Stage 4: score utterances with an MMML checkpoint: fused, text and audio heads.

Utterances are scored in batches that may mix videos (the caller decides
what goes into a call); a score does not depend on its batch mates (the
checkpoint masks padding, or pads every clip to one fixed canvas). Within a
call, utterances are regrouped by length (`length_batches`): Whisper-style
encoders pad a batch to its longest clip, so a 2 s clip batched with a 13 s
one costs 13 s of encoder; sorted, 64 utterances of 2-13 s scored in 5 s
instead of 13 s (default model, one CPU thread). An utterance without words is
scored with its text missing (`None`): the fused head still answers from
the audio, the text head gives NaN. So is an utterance heard in a language
the text encoder does not read (`readable_words`). On a GPU the forward pass runs under
float16 autocast (`ScoreOptions.amp`): the encoders are the cost, and
their matrix products run several times faster in half precision.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mmml.checkpoint import Checkpoint, load_checkpoint
from mmml.onednn import use_onednn_linears
from mmml.preprocessing import Preprocessor

from .memory import bound_shape_caches, release_freed_memory
from .options import ScoreOptions

# What one more forward pass costs, in seconds of padded audio. CPU: measured with the default model on one
# thread (64 utterances of 2-13 s: 2 s and 4 s gave the same time within noise, 8 s was slower). A GPU pays per
# launch rather than per padded frame, so it keeps batches whole unless their lengths differ by much (unmeasured).
BATCH_OVERHEAD_S = {"cpu": 2.0, "cuda": 30.0}
# Most padded seconds of audio in one forward pass on a CPU. Activation memory grows with them (16 utterances of
# 15 s took 395 MiB more at peak than 4 of them, 66 MiB), and a 2-hour recording meets that worst case where a
# 10-minute one does not: peak memory would grow with the corpus. A pass of 60 s is 30 times the per-pass
# overhead above, so the cap costs next to no speed.
MAX_BATCH_SECONDS = {"cpu": 60.0, "cuda": math.inf}
CHARACTERS_PER_SECOND = 15.0  # a text-only model's length unit: about how fast people speak


@dataclass(frozen=True)
class HeadScores:
    fused: np.ndarray  # float32 [N]; NaN where a head is absent or its modality missing
    text: np.ndarray
    audio: np.ndarray


def load_scorer(options: ScoreOptions, device: str | None = None) -> Checkpoint:
    """Load (and checksum-verify) the checkpoint once per worker."""
    device = device or options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        bound_shape_caches()
        if options.torch_threads > 0:
            torch.set_num_threads(options.torch_threads)
    checkpoint = load_checkpoint(options.checkpoint, device=device)
    if device == "cpu":
        use_onednn_linears(checkpoint.model)  # MKL's sgemm runs at AVX2 speed on AMD CPUs (`mmml.onednn`)
    return checkpoint


def autocast_dtype(device_type: str, amp: bool) -> torch.dtype | None:
    """float16 on CUDA when `amp` is on; full precision elsewhere (CPU autocast gains nothing here)."""
    return torch.float16 if amp and device_type == "cuda" else None


@torch.inference_mode()
def score(
    checkpoint: Checkpoint,
    texts: Sequence[str],
    audios: Sequence[np.ndarray],
    batch_size: int = 16,
    amp: bool = True,
) -> HeadScores:
    """Scores of every (text, audio) pair, in their order; empty text or audio counts as that modality missing.

    At most `batch_size` utterances go through the model at once, grouped by
    length; the order they are scored in changes no score.
    """
    texts = [t if t and t.strip() else None for t in texts]
    audios = [a if a is not None and len(a) else None for a in audios]
    heads = np.full((3, len(texts)), np.nan, np.float32)
    device = next(checkpoint.model.parameters()).device
    dtype = autocast_dtype(device.type, amp)
    precision = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    lengths = [canvas_seconds(checkpoint.preprocessor, t, a) for t, a in zip(texts, audios)]
    kind = device.type if device.type in BATCH_OVERHEAD_S else "cpu"
    for batch in length_batches(lengths, batch_size, BATCH_OVERHEAD_S[kind], MAX_BATCH_SECONDS[kind]):
        inputs = checkpoint.preprocessor([texts[i] for i in batch], [audios[i] for i in batch])
        with precision:
            scores = checkpoint.model(**{k: v.to(device) for k, v in inputs.items()})
        for row, head in enumerate((scores.fused, scores.text, scores.audio)):
            heads[row, batch] = _numpy(head, len(batch))
    if texts:
        release_freed_memory()
    return HeadScores(*heads)


def readable_words(texts: Sequence[str], languages: Sequence[str], reads: Sequence[str]) -> list[str]:
    """The words the text encoder is given: none for an utterance heard in a language it does not read.

    An encoder trained on English turns Spanish words into a confident, meaningless score; without them the
    fused head answers from the voice, as for an utterance without words. An unknown language ("") keeps
    its words: the caller named none and Whisper detected none.
    """
    return [text if not language or language in reads else "" for text, language in zip(texts, languages)]


def canvas_seconds(preprocessor: Preprocessor, text: str | None, audio: np.ndarray | None) -> float:
    """How long an utterance is to the model: the audio canvas it fills, or its text for a text-only model."""
    if not preprocessor.config.uses_audio:
        return len(text or "") / CHARACTERS_PER_SECOND
    if preprocessor.fixed_canvas:
        return preprocessor.config.audio.max_seconds
    samples = 0 if audio is None else min(len(audio), preprocessor.max_samples)
    return samples / preprocessor.config.audio.sampling_rate


def length_batches(
    lengths: Sequence[float], max_size: int, overhead: float, max_padded: float = math.inf
) -> list[list[int]]:
    """Indices of `lengths`, sorted and cut into batches of at most `max_size` that minimise the padded work.

    A batch costs its size times its longest member (all are padded to it)
    plus `overhead` (one more forward pass), and holds at most `max_padded`
    of padded length unless it is a single item. Cutting the sorted lengths
    optimally is a small dynamic programme: the best cost of the first j
    lengths is the best, over the last batch's start i, of the first i's
    best plus that batch.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = [0.0] + [math.inf] * len(order)
    start = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        longest = lengths[order[j - 1]]
        for i in range(max(0, j - max_size), j):
            if j - i > 1 and (j - i) * longest > max_padded:
                continue
            cost = best[i] + (j - i) * longest + overhead
            if cost < best[j]:
                best[j], start[j] = cost, i
    batches: list[list[int]] = []
    j = len(order)
    while j:
        batches.append(order[start[j] : j])
        j = start[j]
    return batches[::-1]


def _numpy(head: torch.Tensor | None, size: int) -> np.ndarray:
    if head is None:  # the variant has no such head
        return np.full(size, np.nan, np.float32)
    return head.detach().float().cpu().numpy().reshape(size)
