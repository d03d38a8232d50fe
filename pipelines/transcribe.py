"""Stage 3c: transcribe the speech of a group of videos with faster-whisper, word by word.

A group's speech is packed into shared 30 s windows (`pipelines.windows`)
and the windows are decoded `batch_size` at a time by faster-whisper's
`BatchedInferencePipeline`: silence is never decoded, many short clips share
one encoder pass, and the decoder works on a batch at a time. Like the
batched pipeline, this drops cross-window conditioning, which is what lets
windows run in parallel, and decodes each batch by beam search alone (no
temperature fallback).

Repetition loops. Beam search over a whole window without timestamp
tokens sometimes locks into a loop ("bam, bam, bam, ...", for seconds or
to the end of the window). A window in which any `LOOP_WORDS` consecutive
words compress better than faster-whisper's `compression_ratio_threshold`
(2.4: what its own fallback tests on a whole decode, where a loop of a few
seconds among 30 s of speech would pass) is decoded again, from its own
features, with a repetition penalty of 1.1: one batched pass. One that still
loops is decoded by `WhisperModel.transcribe`, segment by segment with
timestamp tokens, which ends a segment where the speaker pauses and so
breaks most loops. The batched pass comes first because it is cheap: on a
looping tiny.en window of the benchmark recordings it took 1.4 s against 8.1
s segment by segment, and gave the same number of words. By beam search
only: faster-whisper's sampled fallback at higher temperatures would not give
the same words on every run (CTranslate2 seeds its random generator once per
thread), and a re-run or a resumed run must hear what the first run heard.

Language. With `--language`, or an English-only model, every window is
decoded in that language. Otherwise Whisper detects the language of each
window from the very encoder pass that decodes it (faster-whisper's
`multilingual` mode), so detection costs no extra pass; a video takes the
language of the window that holds most of its speech. On a corpus that mixes
languages clip by clip, pass `--language` or keep clips of one language
per folder: window mates share a language.

Lanes. On a CPU, a worker's threads are lanes of one thread each over one
CTranslate2 model (`Decoder`): windows are split into batches, at least one
per lane, that decode side by side. CTranslate2 gets more from separate
lanes than from more threads on one batch (see benchmarks/README.md), and
since batch size changes no word, lanes change none either.

Word timestamps are requested because utterances are built from words
(`pipelines.segment`); the speech regions are returned too: speech in which
ASR recognised nothing still becomes a (wordless) utterance.
"""

from __future__ import annotations

import copy
import math
import queue
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio

from mmml.packaged import resolve

from .options import SAMPLE_RATE, WINDOW_SECONDS, ASROptions
from .parts import Part, Regions
from .vad import heard, speech_samples, within_speech
from .windows import Window, pack
from .words import Word

# Words in the span a loop is looked for in: of CMU-MOSI's transcripts (natural speech, repetitions included)
# no 24 consecutive words compress better than 1.7; a loop over half of them, 3.4.
LOOP_WORDS = 24
LOOP_REPETITION_PENALTY = 1.1  # a looping window is decoded again penalising repeats
_SPACING = 2 * WINDOW_SECONDS  # seconds between windows on faster-whisper's time line (see `_forward`)


@dataclass(frozen=True)
class Transcript:
    words: list[Word]
    speech: list[tuple[float, float]]  # VAD speech regions, seconds
    language: str
    language_probability: float
    duration: float  # seconds of audio


@dataclass(frozen=True)
class DecodedWindow:
    words: list[Word]  # times in the window's own seconds
    language: str
    language_probability: float


def compute_type(options: ASROptions, device: str) -> str:
    """`auto`: float16 on a GPU, int8 on a CPU (CTranslate2's fastest accurate choice on each)."""
    if options.compute_type != "auto":
        return options.compute_type
    return "float16" if device == "cuda" else "int8"


def load_asr(options: ASROptions, device: str | None = None) -> Decoder:
    """Load Whisper once (per worker): the expensive part, kept out of the per-video path."""
    device = device or options.device
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    lanes = max(1, options.cpu_threads) if device == "cpu" else 1  # a GPU wants large batches, not lanes
    model = WhisperModel(
        resolve(options.model),
        device=device,
        compute_type=compute_type(options, device),
        cpu_threads=1 if lanes > 1 else options.cpu_threads,
        num_workers=lanes,
    )
    return Decoder(model, options, lanes)


def lane_batches(windows: int, batch_size: int, lanes: int) -> list[range]:
    """Consecutive windows in batches of at most `batch_size`, as many as a multiple of the lanes where there are
    enough windows, and of even sizes: no lane waits while another decodes a large batch."""
    count = min(windows, lanes * math.ceil(math.ceil(windows / batch_size) / lanes))
    bounds = [round(k * windows / count) for k in range(count + 1)] if count else [0]
    return [range(low, high) for low, high in zip(bounds, bounds[1:])]


def loops(words: Sequence[str], threshold: float) -> bool:
    """Whether some `LOOP_WORDS` consecutive words (all of them, if fewer) compress better than `threshold`."""
    spans = range(max(1, len(words) - LOOP_WORDS + 1))
    return bool(words) and any(get_compression_ratio("".join(words[i : i + LOOP_WORDS])) > threshold for i in spans)


def transcribe_many(
    pipeline: Decoder, audios: Sequence[np.ndarray], regions: Sequence[Regions] | None = None
) -> list[Transcript]:
    """Timed words of every video of a group (see `transcribe_each`), in input order."""
    found = dict(transcribe_each(pipeline, audios, regions))
    return [found[v] for v in range(len(audios))]


def transcribe_each(
    pipeline: Decoder, audios: Sequence[np.ndarray], regions: Sequence[Regions] | None = None
) -> Iterator[tuple[int, Transcript]]:
    """(index, transcript) of each video of a group, in order, as soon as the windows holding its speech are decoded.

    VAD runs once per video (unless its `regions` are given) and the group's
    windows are queued on the lanes before this returns; the group's speech
    is decoded in shared windows. Yielding video by video lets scoring start
    on the first videos of a group while Whisper works on the rest.
    """
    if regions is None:
        regions = [speech_samples(audio, pipeline.options) for audio in audios]
    return _queued(pipeline, audios, regions)[1]


def transcribe_parts(pipeline: Decoder, parts: Iterable[Part]) -> Iterator[tuple[Part, Transcript]]:
    """Each part of a long recording with its transcript, in order, the next part queued before this one is done.

    Part by part, each lane would sit idle at the end of every part until
    the slowest lane finished and the next part was read and its VAD run (on
    two cores about a tenth of a 10-minute recording's time). Here the next
    part is read, its VAD run and its windows queued while this part
    decodes: a lane that finishes goes straight on to the next part. Each
    part's windows and batches are the same as alone, so are its words.
    """
    in_flight: list[tuple[Part, Decoding, Iterator[tuple[int, Transcript]]]] = []
    try:
        for part in parts:
            in_flight.append((part, *_queued(pipeline, [part.audio], [part.regions])))
            if len(in_flight) > 1:
                yield _oldest(in_flight)
        while in_flight:
            yield _oldest(in_flight)
    finally:
        for _, decoding, _ in in_flight:  # parts not collected (an error, a run stopped): batches not begun dropped
            decoding.cancel()


def _oldest(in_flight: list[tuple[Part, Decoding, Iterator[tuple[int, Transcript]]]]) -> tuple[Part, Transcript]:
    part, _, found = in_flight[0]
    [(_, transcript)] = found
    del in_flight[0]
    return part, transcript


def _queued(
    pipeline: Decoder, audios: Sequence[np.ndarray], regions: Sequence[Regions]
) -> tuple[Decoding, Iterator[tuple[int, Transcript]]]:
    """The group's speech packed into windows and queued on the lanes; its transcripts, as they come."""
    windows = pack([heard(r, len(audio), pipeline.options) for r, audio in zip(regions, audios, strict=True)])
    decoding = pipeline.decode(windows, audios)
    return decoding, _transcripts(windows, decoding, audios, regions, pipeline.options)


def _transcripts(
    windows: Sequence[Window],
    decoding: Decoding,
    audios: Sequence[np.ndarray],
    regions: Sequence[Regions],
    options: ASROptions,
) -> Iterator[tuple[int, Transcript]]:
    """Each video's transcript as soon as the last window holding its speech is decoded (see `transcribe_each`)."""
    last_window = {p.video: i for i, window in enumerate(windows) for p in window.pieces}
    speech = [[(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in video] for video in regions]
    words: list[list[Word]] = [[] for _ in audios]
    decoded: list[DecodedWindow] = []
    results = iter(decoding)
    try:
        for video in range(len(audios)):
            while last_window.get(video, -1) >= len(decoded):
                window, result = windows[len(decoded)], next(results)
                for word in result.words:
                    owner, start, end = window.video_time(word.start, word.end)
                    words[owner].append(Word(*within_speech(start, end, speech[owner]), word.text, word.probability))
                decoded.append(result)
            yield (
                video,
                Transcript(
                    sorted(words[video], key=lambda w: w.start),
                    speech[video],
                    *_language(video, windows, decoded, options),
                    len(audios[video]) / SAMPLE_RATE,
                ),
            )
    finally:
        decoding.cancel()


def _language(
    video: int, windows: Sequence[Window], decoded: Sequence[DecodedWindow], options: ASROptions
) -> tuple[str, float]:
    """The language of the window that holds most of the video's speech."""
    share = [(window.speech_of(video), result) for window, result in zip(windows, decoded)]
    speech, best = max(share, key=lambda pair: pair[0], default=(0, None))
    if not speech or best is None:
        return options.language or "", float("nan")
    return best.language, best.language_probability


class Decoding:
    """Batches of windows queued on a Decoder's lanes: their results in window order; `cancel` drops those not
    begun."""

    def __init__(self, batches: list[Future[list[DecodedWindow]]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[DecodedWindow]:
        for batch in self.batches:
            yield from batch.result()

    def cancel(self) -> None:
        for batch in self.batches:
            batch.cancel()


class Decoder:
    """Whisper for one ASR worker: one model, decoding in `lanes` WindowPipelines side by side (see Lanes above).

    Batches run on the lanes' own threads (one lane: one thread), so the
    caller reads and runs VAD on what comes next while they decode.
    """

    def __init__(self, model: WhisperModel, options: ASROptions, lanes: int = 1) -> None:
        self.options = options
        first = WindowPipeline(model, options)
        self.lanes = [first] + [WindowPipeline(model, options, first.decoding) for _ in range(lanes - 1)]
        self.free: queue.SimpleQueue[WindowPipeline] = queue.SimpleQueue()
        for lane in self.lanes:
            self.free.put(lane)
        self.pool = ThreadPoolExecutor(lanes, thread_name_prefix="whisper-lane")

    def decode(self, windows: Sequence[Window], audios: Sequence[np.ndarray]) -> Decoding:
        """Queue every window's batch on the lanes now; iterate the result for words and language, in order."""
        batches = lane_batches(len(windows), self.options.batch_size, len(self.lanes))
        run = partial(self._on_a_lane, windows, audios)
        return Decoding([self.pool.submit(run, batch) for batch in batches])

    def _on_a_lane(self, windows: Sequence[Window], audios: Sequence[np.ndarray], batch: range) -> list[DecodedWindow]:
        lane = self.free.get()
        try:
            return lane.decode([windows[i].audio(audios) for i in batch])
        finally:
            self.free.put(lane)


class _Detecting:
    """A lane's CTranslate2 Whisper, keeping the languages it last detected.

    faster-whisper's batched step detects each window's language to decode it
    and drops the answer; asking again would cost as much once more (0.13 s a
    window for Whisper base on one thread, 5 % of its decoding).
    """

    def __init__(self, model: Any) -> None:
        self.whisper = model
        self.detected: list[Any] = []

    def detect_language(self, *args: Any, **kwargs: Any) -> list[Any]:
        self.detected = self.whisper.detect_language(*args, **kwargs)
        return self.detected

    def __getattr__(self, name: str) -> Any:
        return getattr(self.whisper, name)


class WindowPipeline(BatchedInferencePipeline):
    """faster-whisper's batched pipeline, decoding ready-made windows and reporting their languages."""

    def __init__(self, model: WhisperModel, options: ASROptions, decoding: Any = None) -> None:
        model = copy.copy(model)  # the lane's own view of the shared model (weights shared), to see what it detects
        model.model = _Detecting(model.model)
        super().__init__(model)
        self.options = options
        multilingual = model.model.is_multilingual
        self.language = options.language if multilingual else "en"  # None: detect per window
        self.decoding = decoding or self._decoding_options()
        self.guess = "en"  # the language tried first when detecting; only speed depends on it

    def decode(self, batch: Sequence[np.ndarray]) -> list[DecodedWindow]:
        """Words and language of each window of one batch (at most 30 s of 16 kHz audio each)."""
        extractor = self.model.feature_extractor
        features = np.stack([pad_or_trim(extractor(w)[..., :-1]) for w in batch])
        decoded = self._batch(features, [len(w) / SAMPLE_RATE for w in batch])
        return [self._without_loop(audio, f, result) for audio, f, result in zip(batch, features, decoded)]

    def _without_loop(self, audio: np.ndarray, features: np.ndarray, result: DecodedWindow) -> DecodedWindow:
        """The window again, penalising repeats, if its words are a repetition loop (see the module doc)."""
        if not self._loops(result.words):
            return result
        penalised = replace(self.decoding, repetition_penalty=LOOP_REPETITION_PENALTY)
        [words] = self._forward(features[None], [len(audio) / SAMPLE_RATE], result.language, decoding=penalised)
        if self._loops(words):
            segments, _ = self.model.transcribe(
                audio,
                language=result.language if self.model.model.is_multilingual else None,
                beam_size=self.options.beam_size,
                repetition_penalty=LOOP_REPETITION_PENALTY,
                temperature=0.0,
                word_timestamps=True,
                vad_filter=False,
                condition_on_previous_text=False,
            )
            words = [
                Word(round(w.start, 2), round(w.end, 2), w.word, float(w.probability))
                for segment in segments
                for w in segment.words or ()
                if w.word.strip()
            ]
        return replace(result, words=words)

    def _loops(self, words: Sequence[Word]) -> bool:
        threshold = self.decoding.compression_ratio_threshold
        return threshold is not None and loops([word.text for word in words], threshold)

    def _batch(self, features: np.ndarray, seconds: list[float]) -> list[DecodedWindow]:
        if self.language is not None:
            return [
                DecodedWindow(words, self.language, 1.0) for words in self._forward(features, seconds, self.language)
            ]
        words = self._forward(features, seconds, self.guess, detect=True)
        detected = [(token[2:-2], probability) for token, probability in (r[0] for r in self.model.model.detected)]
        # A window detected as another language than the guess was decoded in it, but its words were
        # aligned with the guess's start-of-transcript tokens: decode those windows again in their language.
        for language in sorted({language for language, _ in detected} - {self.guess}):
            redo = [i for i, (found, _) in enumerate(detected) if found == language]
            for i, again in zip(redo, self._forward(features[redo], [seconds[i] for i in redo], language)):
                words[i] = again
        self.guess = Counter(language for language, _ in detected).most_common(1)[0][0]
        return [
            DecodedWindow(w, language, probability) for w, (language, probability) in zip(words, detected, strict=True)
        ]

    def _forward(
        self, features: np.ndarray, seconds: list[float], language: str, detect: bool = False, decoding: Any = None
    ) -> list[list[Word]]:
        """One faster-whisper batch.

        Windows are placed a minute apart on faster-whisper's time line: its
        word-timing heuristics carry the end of the last speech from one chunk
        to the next, and this way every window starts "after a pause",
        whichever windows share its batch. Times come back at faster-whisper's
        0.01 s precision, relative to their window.
        """
        offsets = [(k + 1) * _SPACING for k in range(len(seconds))]
        metadata = [{"offset": offset, "duration": s, "segments": []} for offset, s in zip(offsets, seconds)]
        tokenizer = Tokenizer(
            self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language=language
        )
        self.last_speech_timestamp = 0.0  # word-timing state starts afresh with each batch
        options = replace(decoding or self.decoding, multilingual=detect)
        segments = self.forward(features, tokenizer, metadata, options)
        return [
            [
                Word(round(w["start"] - offset, 2), round(w["end"] - offset, 2), w["word"], float(w["probability"]))
                for segment in window
                for w in segment["words"]
                if w["word"].strip()
            ]
            for offset, window in zip(offsets, segments)
        ]

    def _decoding_options(self) -> Any:
        """The decoding options faster-whisper's own batched `transcribe` would use, with word timestamps.

        Asked of faster-whisper (its generator is never run), so its defaults
        (suppressed tokens, punctuation merging, the loop threshold) stay its own.
        """
        _, info = self.transcribe(
            np.zeros(SAMPLE_RATE, np.float32),
            language="en" if self.model.model.is_multilingual else None,
            beam_size=self.options.beam_size,
            word_timestamps=True,
            clip_timestamps=[{"start": 0.0, "end": 1.0}],
        )
        return info.transcription_options
