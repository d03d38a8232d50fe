"""The stages as plain functions, no Ray: real ffmpeg, real faster-whisper tiny.en, a tiny MMML checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.demux import decode_audio
from pipelines.options import ASROptions, ScoreOptions, SegmentOptions
from pipelines.score import load_scorer, score
from pipelines.segment import utterance_audio, utterances
from pipelines.transcribe import load_asr, transcribe

ASR = ASROptions(model="packaged:whisper-tiny.en", beam_size=1, cpu_threads=1)


@pytest.fixture(scope="module")
def asr():
    return load_asr(ASR)


def test_each_spoken_sentence_is_one_utterance_at_its_time(annotate_corpus, asr) -> None:
    for path, expected in annotate_corpus.sentences.items():
        audio = decode_audio(path)
        transcript = transcribe(asr, audio, ASR)
        found = utterances(transcript.words, transcript.speech)
        assert len(found) == len(expected), (path, [u.text for u in found])
        for utterance, (sentence, start, end) in zip(found, expected):
            assert utterance.start == pytest.approx(start, abs=0.5), (sentence, utterance)
            assert utterance.end == pytest.approx(end, abs=0.6), (sentence, utterance)
            assert _words(utterance.text) & _words(sentence), (sentence, utterance.text)
            assert 0.3 < utterance.asr_confidence <= 1.0
        assert transcript.language == "en" and transcript.language_probability == 1.0
        assert transcript.duration == pytest.approx(len(audio) / 16_000)


def test_silence_never_reaches_whisper(annotate_corpus, asr) -> None:
    transcript = transcribe(asr, decode_audio(annotate_corpus.broken / "silent.mp4"), ASR)
    assert transcript.words == [] and transcript.speech == []
    assert utterances(transcript.words, transcript.speech) == []


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


def test_utterance_audio_is_the_slice_between_its_times() -> None:
    waveform = np.arange(48_000, dtype=np.float32)
    piece = utterance_audio(waveform, 0.5, 1.25)
    assert piece[0] == 8_000 and len(piece) == 12_000


def _words(text: str) -> set[str]:
    return {w.strip(".,!?").lower() for w in text.split() if len(w) > 3}


def test_engine_stages_work_without_ray(annotate_corpus, tiny_checkpoint) -> None:
    """Demux -> Transcribe -> Score as plain callables; a wordless utterance still gets fused and audio scores."""
    from pipelines.engine import Score, Transcribe, demux_row

    transcribe_stage = Transcribe(ASR, SegmentOptions())
    video = next(iter(annotate_corpus.sentences))
    rows = transcribe_stage(demux_row({"video_path": str(video), "video_id": "v"}, timeout_s=60))
    assert [r["utterance"] for r in rows] == list(range(len(annotate_corpus.sentences[video])))
    assert all(len(r["audio"]) == pytest.approx((r["end"] - r["start"]) * 16_000, abs=2) for r in rows)
    rows[-1]["text"] = ""  # as if ASR had heard no words there

    batch = {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}
    scored = Score(ScoreOptions(checkpoint=str(tiny_checkpoint)))(batch)
    assert "audio" not in scored
    assert np.isfinite(scored["score_fused"]).all() and np.isfinite(scored["score_audio"]).all()
    assert np.isfinite(scored["score_text"][:-1]).all() and np.isnan(scored["score_text"][-1])

    silent_row = {"video_path": str(annotate_corpus.broken / "silent.mp4"), "video_id": "s"}
    silent = transcribe_stage(demux_row(silent_row, timeout_s=60))
    assert [(r["error_stage"], r["error_type"]) for r in silent] == [("segment", "NoSpeech")]
    broken = demux_row({"video_path": str(annotate_corpus.broken / "zero.mp4"), "video_id": "z"}, 60)
    assert (broken["error_stage"], broken["error_type"]) == ("demux", "DemuxError")


def test_stored_utterances_skip_whisper_entirely(annotate_corpus) -> None:
    """With every video's utterances given, the ASR stage never loads Whisper (a bogus model would fail)."""
    import json

    from pipelines.engine import Transcribe, demux_row

    stage = Transcribe(ASROptions(model="/no/such/whisper"), SegmentOptions(), needs_asr=False)
    video = next(iter(annotate_corpus.sentences))
    stored = [
        {"start": 0.25, "end": 1.0, "text": "kept as it was", "language": "en", "language_probability": 0.9,
         "asr_confidence": 0.8, "asr_model": "earlier-asr"},
        {"start": 1.5, "end": 2.0, "text": "", "language": "en", "language_probability": 0.9,
         "asr_confidence": None, "asr_model": "earlier-asr"},
    ]
    row = {"video_path": str(video), "video_id": "v", "transcript": json.dumps(stored)}
    rows = stage(demux_row(row, timeout_s=60))
    assert [(r["utterance"], r["start"], r["end"], r["text"], r["asr_model"]) for r in rows] == [
        (0, 0.25, 1.0, "kept as it was", "earlier-asr"), (1, 1.5, 2.0, "", "earlier-asr")
    ]
    assert rows[0]["asr_confidence"] == 0.8 and np.isnan(rows[1]["asr_confidence"])
    assert [len(r["audio"]) for r in rows] == [12_000, 8_000] and all("transcript" not in r for r in rows)
