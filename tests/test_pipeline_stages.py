"""The stages as plain functions, no Ray: real ffmpeg, real faster-whisper tiny.en, a tiny MMML checkpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from mmml.config import ModelConfig, TextEncoderConfig, from_dict, to_dict
from pipelines.demux import decode_audio
from pipelines.memory import SHAPE_CACHE_ENTRIES
from pipelines.options import ASROptions, ScoreOptions, SegmentOptions
from pipelines.score import length_batches, load_scorer, readable_words, score
from pipelines.segment import utterance_audio, utterances
from pipelines.transcribe import Decoder, Transcript, lane_batches, load_asr, transcribe_many

ASR = ASROptions(model="packaged:whisper-tiny.en", beam_size=1, cpu_threads=1)


def transcribe(pipeline: Decoder, audio: np.ndarray) -> Transcript:
    """One video's transcript (`audio`: 16 kHz mono float32) as a group of one; the pipeline always has groups."""
    return transcribe_many(pipeline, [audio])[0]


@pytest.fixture(scope="module")
def asr():
    return load_asr(ASR)


def test_each_spoken_sentence_is_one_utterance_at_its_time(annotate_corpus, asr) -> None:
    for path, expected in annotate_corpus.sentences.items():
        audio = decode_audio(path)
        transcript = transcribe(asr, audio)
        found = utterances(transcript.words, transcript.speech)
        assert len(found) == len(expected), (path, [u.text for u in found])
        # Whisper hears a wider margin than the regions keep; its words stay inside the regions all the same.
        assert all(any(s <= w.start <= w.end <= e for s, e in transcript.speech) for w in transcript.words)
        for utterance, (sentence, start, end) in zip(found, expected):
            assert utterance.start == pytest.approx(start, abs=0.5), (sentence, utterance)
            assert utterance.end == pytest.approx(end, abs=0.6), (sentence, utterance)
            assert _words(utterance.text) & _words(sentence), (sentence, utterance.text)
            assert 0.3 < utterance.asr_confidence <= 1.0
        assert transcript.language == "en" and transcript.language_probability == 1.0
        assert transcript.duration == pytest.approx(len(audio) / 16_000)


def test_silence_never_reaches_whisper(annotate_corpus, asr) -> None:
    transcript = transcribe(asr, decode_audio(annotate_corpus.broken / "silent.mp4"))
    assert transcript.words == [] and transcript.speech == []
    assert utterances(transcript.words, transcript.speech) == []


def test_a_group_runs_vad_once_per_video_and_each_video_keeps_its_own_words(annotate_corpus, asr, monkeypatch) -> None:
    """Short videos share Whisper windows; VAD runs once per video (counted where both the project and
    faster-whisper call it); every sentence comes back to its own video at its own time."""
    import faster_whisper.transcribe
    import faster_whisper.vad

    import pipelines.vad

    calls = []
    real = faster_whisper.vad.get_speech_timestamps

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    for module in (pipelines.vad, faster_whisper.vad, faster_whisper.transcribe):
        monkeypatch.setattr(module, "get_speech_timestamps", counted)
    paths = list(annotate_corpus.sentences)
    audios = [decode_audio(p) for p in paths] + [decode_audio(annotate_corpus.broken / "silent.mp4")]
    together = transcribe_many(asr, audios)
    assert len(calls) == len(audios)
    for path, transcript in zip(paths, together):
        found = utterances(transcript.words, transcript.speech)
        expected = annotate_corpus.sentences[path]
        assert len(found) == len(expected), (path, [u.text for u in found])
        for utterance, (sentence, start, end) in zip(found, expected):
            assert utterance.start == pytest.approx(start, abs=0.5) and utterance.end == pytest.approx(end, abs=0.6)
            assert _words(utterance.text) & _words(sentence), (sentence, utterance.text)
    assert together[-1].words == [] and together[-1].speech == []


def test_batch_size_changes_no_word(annotate_corpus, asr) -> None:
    """Windows decoded one at a time or eight together: the same words at the same times (so `--asr-batch-size`
    may differ between a run and its resumption)."""

    from pipelines.vad import speech_samples
    from pipelines.windows import pack

    audios = [decode_audio(p) for p in annotate_corpus.sentences] * 3
    assert len(pack([speech_samples(a, ASR) for a in audios])) >= 3  # several windows, so batches differ
    one = transcribe_many(load_asr(replace(ASR, batch_size=1)), audios)
    eight = transcribe_many(asr, audios)  # ASR.batch_size: 8
    assert [t.words for t in one] == [t.words for t in eight]


def test_lanes_share_the_windows_in_even_batches() -> None:
    assert lane_batches(10, batch_size=8, lanes=1) == [range(0, 5), range(5, 10)]  # 2 batches needed: even sizes
    assert lane_batches(10, batch_size=8, lanes=2) == [range(0, 5), range(5, 10)]
    assert lane_batches(20, batch_size=8, lanes=2) == [range(0, 5), range(5, 10), range(10, 15), range(15, 20)]
    assert lane_batches(3, batch_size=8, lanes=4) == [range(0, 1), range(1, 2), range(2, 3)]  # a window a lane
    assert lane_batches(0, batch_size=8, lanes=2) == []


def test_lanes_change_no_word(annotate_corpus, asr) -> None:
    """Two lanes of one thread decode batches side by side; the words are those of one lane."""
    audios = [decode_audio(p) for p in annotate_corpus.sentences] * 3
    two = load_asr(replace(ASR, cpu_threads=2))
    used = []
    for number, lane in enumerate(two.lanes):
        lane._batch = partial(lambda n, batch, *args: used.append(n) or batch(*args), number, lane._batch)
    assert [t.words for t in transcribe_many(two, audios)] == [t.words for t in transcribe_many(asr, audios)]
    assert sorted(set(used)) == [0, 1]  # both lanes decoded


def test_a_loop_of_a_few_seconds_is_found_among_a_window_of_speech() -> None:
    """A real tiny.en decode of 30 s of speech that looped for a few seconds and came back: the window as a whole
    compresses below faster-whisper's 2.4, the span of the loop does not; speech that repeats itself is no loop."""
    from faster_whisper.transcribe import get_compression_ratio

    from pipelines.transcribe import loops

    said = (
        "Now he's seen at the beginning that really sold me. I mean that was impressive. I liked that scene, where he"
        " had a sword in there, and there's bunch of people that are gonna shoot him, boom, boom, boom, boom, take"
        " him down, take him down, bam, bam, bam, bam, bam, take that with my magical swords. But for this one I just"
        " didn't feel like it. I loved the very first Alvin and the Chipmunks movie because it had a real nostalgic"
        " feel to it, it reminded me of getting up on a Saturday morning and eating fruit loops and watching cartoons"
    )
    heard = said.replace("take that with my magical swords. But for this one I just didn't feel like it.", "bam, " * 14)
    words = [" " + word for word in heard.split()]
    assert get_compression_ratio("".join(words)) < 2.4  # the whole window passes faster-whisper's own test
    assert loops(words, 2.4)  # the loop's span does not
    assert not loops([" " + word for word in said.split()], 2.4)
    assert loops([" bam,"] * 12, 2.4) and not loops([" bam,"] * 5, 2.4) and not loops([], 2.4)


def test_a_window_decoded_into_a_repetition_loop_is_decoded_again_penalising_repeats(annotate_corpus, asr, monkeypatch):
    """Beam search alone can lock into "boom, boom, ..." to the end of a window; such a window is decoded again
    from its features with a repetition penalty (one batched pass), and, if that loops too, segment by segment;
    a window that reads as speech is kept as decoded."""
    from faster_whisper.transcribe import get_compression_ratio

    from pipelines.transcribe import LOOP_REPETITION_PENALTY, DecodedWindow
    from pipelines.vad import speech_samples
    from pipelines.windows import pack
    from pipelines.words import Word

    (path, expected), *_ = annotate_corpus.sentences.items()
    said = _words(" ".join(sentence for sentence, _, _ in expected))
    audio = decode_audio(path)
    window = pack([speech_samples(audio, ASR)])[0].audio([audio])
    lane = asr.lanes[0]
    decoded = lane.decode([window])[0]
    loop = DecodedWindow([Word(0.2 * i, 0.2 * i + 0.15, " boom,", 0.9) for i in range(60)], "en", 1.0)
    penalties, transcribe = [], lane.model.transcribe
    forward = lane._forward

    def counted_forward(*args, decoding=None, **options):
        penalties.append(decoding.repetition_penalty if decoding else None)
        return forward(*args, decoding=decoding, **options)

    def counted_transcribe(audio, **options):
        penalties.append(("alone", options["repetition_penalty"]))
        return transcribe(audio, **options)

    monkeypatch.setattr(lane, "_forward", counted_forward)
    monkeypatch.setattr(lane.model, "transcribe", counted_transcribe)
    monkeypatch.setattr(lane, "_batch", lambda features, seconds: [loop])  # as if beam search had looped
    again = lane.decode([window])[0]
    text = "".join(w.text for w in again.words)
    assert penalties == [LOOP_REPETITION_PENALTY]  # one batched pass, penalising repeats; no decode alone
    assert again.language == "en" and get_compression_ratio(text) < 2.4 and _words(text) & said, text
    assert all(0 <= w.start <= w.end <= len(window) / 16_000 + 0.5 for w in again.words)  # the window's own times

    # A window that loops again when penalised is decoded alone, segment by segment.
    penalties.clear()
    monkeypatch.setattr(lane, "_forward", lambda *args, decoding=None, **options: [loop.words])
    alone = lane.decode([window])[0]
    assert penalties == [("alone", LOOP_REPETITION_PENALTY)] and _words("".join(w.text for w in alone.words)) & said

    penalties.clear()
    monkeypatch.setattr(lane, "_batch", lambda features, seconds: [decoded])
    assert lane.decode([window])[0] is decoded and penalties == []  # speech that does not loop is decoded once


def test_each_video_is_handed_on_as_soon_as_its_windows_are_decoded(annotate_corpus) -> None:
    """Scoring can start on a group's first videos while Whisper decodes the rest."""

    from pipelines.transcribe import transcribe_each

    pipeline = load_asr(replace(ASR, batch_size=1))
    batches = []
    [lane] = pipeline.lanes
    decode_batch = lane._batch
    lane._batch = lambda *args: batches.append(1) or decode_batch(*args)  # counts, then decodes as usual
    audios = [decode_audio(p) for p in annotate_corpus.sentences] * 3
    videos = transcribe_each(pipeline, audios)
    assert next(videos)[0] == 0 and len(batches) <= 2  # the first video's window, at most the next one begun
    assert [v for v, _ in videos] == list(range(1, len(audios))) and len(batches) >= 3


def test_a_recordings_next_part_is_queued_while_this_one_decodes_and_its_words_are_unchanged(annotate_corpus) -> None:
    """Parts of a long recording keep the lanes busy across part boundaries (`transcribe_parts`): the next part
    is read and queued before this part's transcript is handed on, never more than one ahead, and each part
    gets the words it gets alone."""
    from pipelines.parts import Part
    from pipelines.transcribe import transcribe_parts
    from pipelines.vad import speech_samples

    pipeline = load_asr(replace(ASR, cpu_threads=2))
    audios = [decode_audio(p) for p in annotate_corpus.sentences]
    recording = [Part(0, a, speech_samples(a, ASR), last=i == len(audios) - 1) for i, a in enumerate(audios)]
    taken = []

    def read() -> Iterator[Part]:
        for i, part in enumerate(recording):
            taken.append(i)
            yield part

    heard = []
    for part, transcript in transcribe_parts(pipeline, read()):
        assert part is recording[len(heard)]  # in order
        heard.append(transcript)
        assert len(taken) == min(len(heard) + 1, len(recording))  # one part ahead, no more
    alone = [transcribe(pipeline, audio) for audio in audios]
    assert [t.words for t in heard] == [t.words for t in alone] and all(t.words for t in heard)


def test_scores_per_head_and_a_missing_text(tiny_checkpoint) -> None:
    checkpoint = load_scorer(ScoreOptions(checkpoint=str(tiny_checkpoint)))
    rng = np.random.default_rng(0)
    audios = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16_000, 24_000, 40_000)]
    texts = ["I loved it.", "", "It was bad."]
    together = score(checkpoint, texts, audios, batch_size=3)
    alone = score(checkpoint, texts, audios, batch_size=1)
    for head in ("fused", "text", "audio"):
        np.testing.assert_allclose(getattr(together, head), getattr(alone, head), atol=1e-5)  # batch mates don't matter
    assert np.isfinite(together.fused).all() and np.isfinite(together.audio).all()
    assert np.isnan(together.text[1]) and np.isfinite(together.text[[0, 2]]).all()


def test_scoring_calls_side_by_side_give_the_scores_of_one_at_a_time(tiny_checkpoint) -> None:
    """Scoring calls run side by side on one model (`pipelines.sizing.sized`): nothing may be shared unsafely."""
    checkpoint = load_scorer(ScoreOptions(checkpoint=str(tiny_checkpoint)))
    rng = np.random.default_rng(1)
    calls = [
        (
            [f"Call {c}, clip {i}: " + "so good " * int(rng.integers(1, 30)) for i in range(6)],
            [rng.normal(0, 0.1, int(rng.integers(8_000, 64_000))).astype(np.float32) for _ in range(6)],
        )
        for c in range(8)
    ]
    one_at_a_time = [score(checkpoint, texts, audios).fused for texts, audios in calls]
    with ThreadPoolExecutor(4) as pool:
        side_by_side = list(pool.map(lambda call: score(checkpoint, *call).fused, calls))
    for alone, together in zip(one_at_a_time, side_by_side):
        np.testing.assert_allclose(together, alone, atol=1e-5)


def test_a_cpu_scorer_keeps_few_compiled_kernels_per_shape(tiny_checkpoint, monkeypatch) -> None:
    """Nearly every scoring batch has a new shape; 1024 cached kernels each grew a 2-hour run's scorer by 0.25 GiB."""
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "64")  # set by the user: kept
    load_scorer(ScoreOptions(checkpoint=str(tiny_checkpoint), device="cpu"))
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(SHAPE_CACHE_ENTRIES)
    assert os.environ["LRU_CACHE_CAPACITY"] == "64"


def test_length_batches_cut_where_padding_costs_more_than_a_pass() -> None:
    """Hand-computed: [1, 10, 1, 10] s with a 2 s pass cost. One batch: 4 x 10 + 2 = 42; the two short clips
    together and the two long ones together: (2 x 1 + 2) + (2 x 10 + 2) = 26, the least there is."""
    assert length_batches([1.0, 10.0, 1.0, 10.0], max_size=4, overhead=2.0) == [[0, 2], [1, 3]]
    assert length_batches([1.0, 10.0, 1.0, 10.0], max_size=4, overhead=100.0) == [[0, 2, 1, 3]]  # a pass costs more
    assert length_batches([1.0, 10.0, 1.0, 10.0], max_size=1, overhead=0.0) == [[0], [2], [1], [3]]
    assert length_batches([3.0] * 5, max_size=2, overhead=1.0) == [[0], [1, 2], [3, 4]]  # never above max_size
    assert length_batches([], max_size=4, overhead=2.0) == []
    # At most 30 s padded per pass: the four 15 s clips go two by two (2 x 15 = 30), the 1 s ones together.
    assert length_batches([15.0] * 4 + [1.0] * 2, 16, 2.0, max_padded=30.0) == [[4, 5], [0, 1], [2, 3]]
    assert length_batches([40.0], 16, 2.0, max_padded=30.0) == [[0]]  # one clip over the cap still goes alone


def test_scores_come_back_in_input_order_whatever_the_length_grouping(
    tiny_backbones, annotate_corpus, tmp_path
) -> None:
    """A Whisper-encoder checkpoint pads to a batch's longest clip: short and long clips go through in separate
    passes, and each score is the one it gets alone, returned at its own position."""
    import torch

    from mmml.checkpoint import save_checkpoint
    from mmml.config import AudioEncoderConfig
    from mmml.model import MMML
    from mmml.preprocessing import Preprocessor
    from samples.tiny import build_tiny_audio_encoder, tiny_model_config

    config = tiny_model_config(tiny_backbones)
    config.audio = AudioEncoderConfig(
        str(build_tiny_audio_encoder(tmp_path / "whisper", kind="whisper")), max_seconds=15
    )
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ck", MMML.from_config(config).eval(), Preprocessor.from_config(config))
    checkpoint = load_scorer(ScoreOptions(checkpoint=str(tmp_path / "ck")))
    speech = decode_audio(next(iter(annotate_corpus.sentences)))
    long = np.tile(speech, 6)[: 12 * 16_000]
    audios = [speech[:16_000], long, speech[:20_000], long[:-8_000], speech]
    texts = ["short", "a long one", "", "long again", "medium"]
    seen: list[int] = []
    forward = checkpoint.model.forward
    checkpoint.model.forward = lambda **batch: seen.append(len(batch["audio_present"])) or forward(**batch)
    grouped = score(checkpoint, texts, audios, batch_size=16)
    assert sorted(seen) == [2, 3]  # the three short clips in one pass, the two long ones in another
    alone = [score(checkpoint, [t], [a], batch_size=1) for t, a in zip(texts, audios)]
    for head in ("fused", "text", "audio"):
        np.testing.assert_allclose(getattr(grouped, head), [getattr(s, head)[0] for s in alone], atol=1e-5)
    assert np.isnan(grouped.text[2]) and np.isfinite(grouped.text[[0, 1, 3, 4]]).all()


def test_utterance_audio_is_the_slice_between_its_times() -> None:
    waveform = np.arange(48_000, dtype=np.float32)
    piece = utterance_audio(waveform, 0.5, 1.25)
    assert piece[0] == 8_000 and len(piece) == 12_000


def _words(text: str) -> set[str]:
    return {w.strip(".,!?").lower() for w in text.split() if len(w) > 3}


def test_engine_stages_work_without_ray(annotate_corpus, tiny_checkpoint) -> None:
    """Demux -> Transcribe -> Score as plain callables; a wordless utterance still gets fused and audio scores."""
    from pipelines.engine import Score, Transcribe

    transcribe_stage = Transcribe(ASR, SegmentOptions())
    video = next(iter(annotate_corpus.sentences))
    rows = list(transcribe_stage(_demuxed((video, "v"))))
    assert [r["utterance"] for r in rows] == list(range(len(annotate_corpus.sentences[video])))
    assert all(len(r["audio"]) == pytest.approx((r["end"] - r["start"]) * 16_000, abs=2) for r in rows)
    rows[-1]["text"] = ""  # as if ASR had heard no words there

    batch = {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}
    scored = Score(ScoreOptions(checkpoint=str(tiny_checkpoint)))(batch)
    assert "audio" not in scored
    assert np.isfinite(scored["score_fused"]).all() and np.isfinite(scored["score_audio"]).all()
    assert np.isfinite(scored["score_text"][:-1]).all() and np.isnan(scored["score_text"][-1])

    group = _demuxed(
        (annotate_corpus.broken / "silent.mp4", "s"), (annotate_corpus.broken / "zero.mp4", "z"), (video, "v")
    )
    assert group["error_stage"] == ["", "demux", ""] and group["error_type"][1] == "DemuxError"
    rows = list(transcribe_stage(group))
    errors = sorted((r["video_id"], r["error_stage"], r["error_type"]) for r in rows if r["error_stage"])
    assert errors == [("s", "segment", "NoSpeech"), ("z", "demux", "DemuxError")]
    assert len([r for r in rows if r["video_id"] == "v"]) == len(annotate_corpus.sentences[video])  # unharmed


def test_an_utterance_that_cannot_be_scored_costs_only_its_own_video(tiny_checkpoint) -> None:
    """A scoring call holds utterances of many videos: one that fails is reported for its video, the rest scored."""
    from pipelines.engine import Score

    rng = np.random.default_rng(2)
    audios = [rng.normal(0, 0.1, 16_000).astype(np.float32) for _ in range(4)]
    audios[2] = np.zeros((2, 8_000), np.float32)  # two channels: the preprocessor refuses it
    errors = ("error_stage", "error_type", "error_message", "error_traceback")
    batch = {
        "video_path": np.array(["/a.mp4", "/a.mp4", "/b.mp4", "/c.mp4"], dtype=object),
        "text": np.array(["good", "bad", "fine", "ok"], dtype=object),
        "language": np.array(["en"] * 4, dtype=object),
        **{key: np.array([""] * 4, dtype=object) for key in errors},
        "audio": np.empty(4, dtype=object),
    }
    for i, audio in enumerate(audios):
        batch["audio"][i] = audio
    scored = Score(ScoreOptions(checkpoint=str(tiny_checkpoint)))(batch)
    assert list(scored["error_stage"]) == ["", "", "score", ""]
    assert scored["error_message"][2].startswith("/b.mp4: ") and "mono" in scored["error_message"][2]
    assert np.isfinite(scored["score_fused"][[0, 1, 3]]).all() and np.isnan(scored["score_fused"][2])


def test_words_in_a_language_the_text_encoder_does_not_read_are_left_out() -> None:
    assert readable_words(["good", "bueno", "mystery", ""], ["en", "es", "", "es"], ("en",)) == [
        "good",
        "",
        "mystery",
        "",
    ]
    assert readable_words(["好", "good"], ["zh", "en"], ("zh", "en")) == ["好", "good"]


def test_a_checkpoint_reads_its_own_language_unless_it_names_its_languages() -> None:
    assert ModelConfig(language="zh").text_languages == ("zh",)
    assert ModelConfig(text=TextEncoderConfig(languages=("en", "de"))).text_languages == ("en", "de")
    restored = from_dict(
        ModelConfig, json.loads(json.dumps(to_dict(ModelConfig(text=TextEncoderConfig(languages=("en", "de"))))))
    )
    assert restored.text_languages == ("en", "de")


def test_an_utterance_in_another_language_is_scored_from_its_voice_alone(tiny_checkpoint) -> None:
    """Its text score is NaN and its fused score the one its audio gets with no words; other rows are untouched."""
    from pipelines.engine import Score

    rng = np.random.default_rng(3)
    audio = rng.normal(0, 0.1, 16_000).astype(np.float32)
    errors = ("error_stage", "error_type", "error_message", "error_traceback")

    def scored(texts: list[str], languages: list[str]) -> dict[str, np.ndarray]:
        batch = {
            "video_path": np.array(["/a.mp4"] * len(texts), dtype=object),
            "text": np.array(texts, dtype=object),
            "language": np.array(languages, dtype=object),
            **{key: np.array([""] * len(texts), dtype=object) for key in errors},
            "audio": np.empty(len(texts), dtype=object),
        }
        for i in range(len(texts)):
            batch["audio"][i] = audio
        return Score(ScoreOptions(checkpoint=str(tiny_checkpoint)))(batch)

    mixed = scored(["a good film", "una película muy buena", "a good film"], ["en", "es", ""])
    alone = scored(["a good film", ""], ["en", "en"])
    assert list(mixed["text"]) == ["a good film", "una película muy buena", "a good film"]  # the words are kept
    assert np.isnan(mixed["score_text"][1]) and np.isfinite(mixed["score_text"][[0, 2]]).all()
    assert np.isfinite(mixed["score_fused"]).all()
    assert mixed["score_fused"][1] == pytest.approx(alone["score_fused"][1], abs=1e-5)
    assert mixed["score_fused"][[0, 2]] == pytest.approx([alone["score_fused"][0]] * 2, abs=1e-5)


def test_stored_utterances_are_cut_from_the_audio_without_whisper(annotate_corpus) -> None:
    """With every video's utterances given (re-annotation), rows are the stored utterances with their audio."""
    import json

    from pipelines.engine import cut_stored

    video = next(iter(annotate_corpus.sentences))
    stored = [
        {
            "start": 0.25,
            "end": 1.0,
            "text": "kept as it was",
            "language": "en",
            "language_probability": 0.9,
            "asr_confidence": 0.8,
            "asr_model": "earlier-asr",
        },
        {
            "start": 1.5,
            "end": 2.0,
            "text": "",
            "language": "en",
            "language_probability": 0.9,
            "asr_confidence": None,
            "asr_model": "earlier-asr",
        },
    ]
    rows = list(cut_stored(_demuxed((video, "v", json.dumps(stored))), timeout_s=60))
    assert [(r["utterance"], r["start"], r["end"], r["text"], r["asr_model"]) for r in rows] == [
        (0, 0.25, 1.0, "kept as it was", "earlier-asr"),
        (1, 1.5, 2.0, "", "earlier-asr"),
    ]
    assert rows[0]["asr_confidence"] == 0.8 and np.isnan(rows[1]["asr_confidence"])
    assert [len(r["audio"]) for r in rows] == [12_000, 8_000] and all("transcript" not in r for r in rows)


def _demuxed(*videos: tuple) -> dict:
    """A demuxed group row, as the pipeline's first stage makes it: (path, video_id[, stored transcript]) each."""
    from pipelines.engine import demux_group

    group = {
        "video_path": [str(v[0]) for v in videos],
        "video_id": [v[1] for v in videos],
        "transcript": [v[2] if len(v) > 2 else "" for v in videos],
    }
    return demux_group(group, timeout_s=60)


LONG_TALK = [
    "Good evening and welcome to the late news.",
    "The council voted to close the old library.",
    "Residents were angry about the decision.",
    "In sport, the home team won again.",
    "Their coach said the players were wonderful.",
    "Tomorrow will be cold and wet.",
    "Take an umbrella if you go out.",
    "That is all from us tonight.",
]


@pytest.fixture(scope="module")
def long_talk(tmp_path_factory):
    from tests import media

    return media.spoken_video(LONG_TALK, tmp_path_factory.mktemp("long") / "talk.mp4", pause_seconds=1.0)


def test_a_recording_streamed_in_parts_gives_the_utterances_of_the_whole(long_talk) -> None:
    """Cut into 8 s parts (as a 2-hour recording is cut into 4-minute ones): every sentence once, none cut, at
    the times the whole-file run finds; the audio of each row is its slice of the file."""
    from pipelines.engine import Transcribe, demux_group

    group = {"video_path": [str(long_talk)], "video_id": ["t"], "transcript": [""]}
    whole = list(Transcribe(ASR, SegmentOptions())(demux_group(group, timeout_s=60)))
    streamed_group = demux_group(group, timeout_s=60, whole_seconds=10)
    assert streamed_group["streamed"] == [True] and len(streamed_group["audio"]) == 0
    stage = Transcribe(ASR, SegmentOptions(), part_seconds=8)
    streamed = list(stage(streamed_group))

    assert len(whole) == len(streamed) == len(LONG_TALK)
    assert [r["utterance"] for r in streamed] == list(range(len(LONG_TALK)))
    assert [r["n_utterances"] for r in streamed] == [0] * (len(LONG_TALK) - 1) + [len(LONG_TALK)]  # told at the end
    audio = decode_audio(long_talk)
    assert streamed[-1]["duration"] == pytest.approx(len(audio) / 16_000)
    for a, b, sentence in zip(whole, streamed, LONG_TALK):
        assert _words(a["text"]) == _words(b["text"]) and _words(b["text"]) & _words(sentence), (a["text"], b["text"])
        assert b["start"] == pytest.approx(a["start"], abs=0.3) and b["end"] == pytest.approx(a["end"], abs=0.3)
        np.testing.assert_array_equal(b["audio"], utterance_audio(audio, b["start"], b["end"]))


def test_stored_utterances_of_a_streamed_recording_are_cut_from_the_stream(long_talk) -> None:
    """Re-annotating a long recording: each stored utterance gets its exact slice, cut as the stream passes; the
    last row carries the count and the recording's whole duration."""
    import json

    from pipelines.engine import cut_stored, demux_group

    spans = [(0.5, 2.0), (2.0, 4.75), (7.0, 9.5)]
    stored = [
        {
            "start": s,
            "end": e,
            "text": f"u{i}",
            "language": "en",
            "language_probability": 1.0,
            "asr_confidence": None,
            "asr_model": "a",
        }
        for i, (s, e) in enumerate(spans)
    ]
    group = {"video_path": [str(long_talk)], "video_id": ["t"], "transcript": [json.dumps(stored)]}
    streamed = demux_group(group, timeout_s=60, whole_seconds=5)
    assert streamed["streamed"] == [True]
    rows = list(cut_stored(streamed, timeout_s=60))
    assert [(r["text"], r["utterance"], r["n_utterances"]) for r in rows] == [("u0", 0, 0), ("u1", 1, 0), ("u2", 2, 3)]
    audio = decode_audio(long_talk)
    for row, (start, end) in zip(rows, spans):
        np.testing.assert_array_equal(row["audio"], utterance_audio(audio, start, end))
    assert rows[-1]["duration"] == pytest.approx(len(audio) / 16_000)


def test_a_long_recording_gone_before_its_stream_starts_is_one_demux_error(long_talk, tmp_path) -> None:
    """A file deleted between the decode check and the ASR stream (network storage does this): one error row."""
    import shutil

    from pipelines.engine import Transcribe, demux_group

    copy = shutil.copy(long_talk, tmp_path / "gone.mp4")
    group = demux_group({"video_path": [str(copy)], "video_id": ["g"], "transcript": [""]}, 60, whole_seconds=5)
    assert group["streamed"] == [True]
    (tmp_path / "gone.mp4").unlink()
    [row] = list(Transcribe(ASR, SegmentOptions(), part_seconds=4)(group))
    assert (row["utterance"], row["error_stage"], row["error_type"]) == (-1, "demux", "DemuxError")
    assert "no such file" in row["error_message"] and str(copy) in row["error_message"]


@pytest.mark.slow
def test_a_multilingual_whisper_detects_each_windows_language_from_its_decoding_pass(annotate_corpus) -> None:
    """Whisper base (multilingual): without --language, each window's language comes from the pass that decodes it
    (English here, with its probability); with --language, nothing is detected and the probability is 1."""

    base = ASROptions(model="packaged:whisper-base", beam_size=1, cpu_threads=2)
    audios = [decode_audio(p) for p in annotate_corpus.sentences]
    detecting = load_asr(base)
    found = transcribe_many(detecting, audios)
    assert {t.language for t in found} == {"en"} and all(0.5 < t.language_probability < 1.0 for t in found)
    assert sum(len(lane.model.model.detected) for lane in detecting.lanes) == 1  # one window, one detection
    told = load_asr(replace(base, language="en"))
    given = transcribe_many(told, audios)
    assert {(t.language, t.language_probability) for t in given} == {("en", 1.0)} and all(
        lane.model.model.detected == [] for lane in told.lanes
    )
    assert [_words("".join(w.text for w in t.words)) for t in given] == [
        _words("".join(w.text for w in t.words)) for t in found
    ]  # decoded in the detected language: the same words
