"""Composed training rows follow the written rule; degraded training audio is real and reproducible."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mmml.model import MMML
from mmml.preprocessing import Preprocessor
from samples.tiny import tiny_model_config
from tests.mmsa_corpus import corpus_rows, write_label_csv
from training.augment import Degrader, another_speaker
from training.composition import compose_training, neutral_voices
from training.config import Composition, CorpusConfig, DataConfig, OptimConfig, TrainConfig, load_train_config
from training.dataset import Clip, read_corpus
from training.examples import Example, collate, prepare_examples
from training.trainer import Runtime, composed_training, fit, load_corpora


def clip(key: str, label: float, text: str = "words") -> Clip:
    video, clip_id = key.split("/")
    return Clip(video, clip_id, text, label, label, label, "train", 2)


def entry(tmp_path: Path, name: str, seconds: float = 0.5) -> Path:
    path = tmp_path / f"{name}.npy"
    rng = np.random.default_rng(len(name))
    np.save(path, (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32))
    return path


def test_a_voiced_transcript_learns_its_words_and_its_voice_labels(tmp_path: Path) -> None:
    transcript = Example(clip("mosi/1", 2.4, "it was really good"), None, labels=("text", "audio"))
    neutral = Example(clip("actor_01/n", 0.0), entry(tmp_path, "n"), labels=("audio",))
    angry = Example(clip("actor_01/a", -3.0), entry(tmp_path, "a"), labels=("audio",))
    assert neutral_voices([neutral, angry, transcript]) == [neutral]  # only decoded audio labelled exactly 0

    [[row], _] = compose_training([[transcript], [neutral, angry]], [False, True], Composition(voiced=1.0), seed=1)
    assert row.audio == neutral.audio and row.voice == neutral.clip and row.text == "it was really good"
    # Hand-computed: fused and text follow the words (+2.4), audio the neutral voice lent to them (0).
    assert row.targets() == {"fused": 2.4, "text": 2.4, "audio": 0.0}


def test_a_wordless_voice_teaches_fused_and_audio_the_voice_and_text_nothing(tmp_path: Path) -> None:
    angry = Example(clip("actor_01/a", -3.0, "Kids are talking by the door."), entry(tmp_path, "a"), labels=("audio",))
    [[row]] = compose_training([[angry]], [True], Composition(wordless=1.0), seed=1)
    assert row.text is None and row.audio == angry.audio
    targets = row.targets()
    assert targets["fused"] == -3.0 and targets["audio"] == -3.0 and math.isnan(targets["text"])


def test_words_over_an_emotional_voice_keep_the_words_label_for_fused_and_text(tmp_path: Path) -> None:
    transcripts = [Example(clip(f"mosi/{i}", 2.0, "a wonderful film"), None) for i in range(40)]
    neutral = Example(clip("actor_01/n", 0.0), entry(tmp_path, "n"), labels=("audio",))
    angry = Example(clip("actor_01/a", -3.0), entry(tmp_path, "a"), labels=("audio",))
    lenders = [False, True]
    [rows, _] = compose_training([transcripts, [neutral, angry]], lenders, Composition(voiced=1.0, emotional=1.0), 5)
    lent = {row.voice.clip_id for row in rows}
    assert lent == {"n", "a"}  # any of the lender's voices
    by_voice = {row.voice.clip_id: row.targets() for row in rows}
    # Hand-computed: the words (+2.0) decide fused and text; the audio head learns the voice it hears.
    assert by_voice["a"] == {"fused": 2.0, "text": 2.0, "audio": -3.0}
    assert by_voice["n"] == {"fused": 2.0, "text": 2.0, "audio": 0.0}
    [only_neutral, _] = compose_training([transcripts, [neutral, angry]], lenders, Composition(voiced=1.0), 5)
    assert {row.voice.clip_id for row in only_neutral} == {"n"}


def test_a_voice_heard_as_another_speaker_keeps_its_row_s_targets_and_moves_its_pitch(tmp_path: Path) -> None:
    transcript = Example(clip("mosi/1", -1.8, "a dull film"), None, labels=("text", "audio"))
    neutral = Example(clip("actor_01/n", 0.0), entry(tmp_path, "n"), labels=("audio",))
    rule = Composition(voiced=1.0, other_speakers=1.0)
    [[row], _] = compose_training([[transcript], [neutral]], [False, True], rule, seed=3)
    assert row.speaker is not None and row.audio == neutral.audio
    assert row.targets() == {"fused": -1.8, "text": -1.8, "audio": 0.0}  # still a neutral voice
    [[plain], _] = compose_training([[transcript], [neutral]], [False, True], Composition(voiced=1.0), seed=3)
    assert plain.speaker is None

    # A 200 Hz tone said by other speakers: its pitch lands within ±4 semitones, the same draw the same way.
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)

    def pitch(audio: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
        return float(np.fft.rfftfreq(audio.size, 1 / 16000)[spectrum.argmax()])

    heard = [another_speaker(tone, speaker) for speaker in range(10)]
    pitches = [pitch(h) for h in heard]
    assert all(200 * 2 ** (-4.2 / 12) <= f <= 200 * 2 ** (4.2 / 12) for f in pitches)
    assert sum(abs(f - 200) > 5 for f in pitches) >= 5  # most speakers are not this one
    assert np.array_equal(another_speaker(tone, 4), heard[4])


def test_composition_keeps_sizes_and_order_and_depends_on_the_seed_alone(tmp_path: Path) -> None:
    transcripts = [Example(clip(f"mosi/{i}", float(i % 7 - 3)), None) for i in range(200)]
    voices = [Example(clip(f"actor_01/{i}", 0.0), entry(tmp_path, f"v{i}"), labels=("audio",)) for i in range(3)]
    rule = Composition(voiced=0.25)
    first = compose_training([transcripts, voices], [False, True], rule, seed=7)
    assert [len(rows) for rows in first] == [200, 3]
    assert [e.clip for e in first[0]] == [e.clip for e in transcripts]
    assert first[1] == voices  # a lender's own rows are not voiced again
    share = sum(e.voice is not None for e in first[0]) / 200
    assert 0.15 < share < 0.35
    assert compose_training([transcripts, voices], [False, True], rule, seed=7) == first
    assert compose_training([transcripts, voices], [False, True], rule, seed=8) != first
    # Without a lender nothing is voiced; with shares of 0 nothing changes.
    assert compose_training([transcripts], [False], rule, seed=7) == [transcripts]
    assert compose_training([transcripts, voices], [False, True], Composition(), seed=7) == [transcripts, voices]


def test_a_wordless_row_reaches_the_model_with_its_text_missing(tiny_backbones: Path, mmsa_corpus: Path) -> None:
    config = tiny_model_config(tiny_backbones)
    model, preprocessor = MMML.from_config(config), Preprocessor.from_config(config)
    examples = prepare_examples(read_corpus(mmsa_corpus), ["train"], config, progress=False, labels=("audio",))
    rows = [compose_training([examples.splits["train"][:2]], [True], Composition(wordless=1.0), seed=1)[0][0]]
    rows.append(examples.splits["train"][1])
    inputs, targets = collate(rows, preprocessor, torch.device("cpu"))
    assert inputs["text_present"].tolist() == [False, True]
    with torch.no_grad():
        scores = model.eval()(**inputs)
    assert math.isnan(float(scores.text[0])) and torch.isfinite(scores.fused).all()


def test_degradation_is_real_reproducible_and_only_for_its_share() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    always = Degrader(1.0)
    changed = [always(speech, (1, 1, step, 0)) for step in range(12)]
    assert all(c.shape == speech.shape and c.dtype == np.float32 and np.abs(c).max() <= 1.0 for c in changed)
    assert sum(not np.allclose(c, speech) for c in changed) >= 10  # almost every draw changes something
    assert np.array_equal(always(speech, (1, 1, 3, 0)), changed[3])  # the same draw, the same conditions
    never = Degrader(0.0)
    assert np.array_equal(never(speech, (1, 1, 3, 0)), speech)
    half = Degrader(0.5)
    kept = sum(np.array_equal(half(speech, (2, 1, step, 0)), speech) for step in range(40))
    assert 10 <= kept <= 30
    with pytest.raises(ValueError, match="within"):
        Degrader(1.5)


def test_a_run_with_composed_and_degraded_rows_trains_and_records_its_recipe(
    tiny_backbones: Path, mmsa_corpus: Path, tmp_path: Path
) -> None:
    voices = tmp_path / "voices"
    shutil.copytree(mmsa_corpus, voices)
    rows = corpus_rows()
    for row in rows:
        if row["video_id"] == "vid_b":  # half the voices neutral: the voices lent to the transcripts
            row.update(label="0", label_T="0", label_A="0")
    write_label_csv(voices / "label.csv", rows)
    transcripts = write_label_csv(tmp_path / "transcripts" / "label.csv", corpus_rows())  # no media
    model = tiny_model_config(tiny_backbones)
    model.audio.max_seconds = 2.0
    config = TrainConfig(
        model=model,
        data=DataConfig(
            corpora=(
                CorpusConfig(str(transcripts), "mosi"),
                CorpusConfig(str(voices), "custom", labels=("audio",), lends_voices=True),
            ),
            audio_cache=str(tmp_path / "cache"),
            compose=Composition(voiced=1.0, wordless=0.5),
            augment=1.0,
        ),
        optim=OptimConfig(lr=1e-3, batch_size=4, max_epochs=1),
        seeds=(1,),
    )
    runtime = Runtime(torch.device("cpu"), progress=False, log=lambda m: None)
    corpora = load_corpora(config, runtime)
    train = composed_training(corpora, config, seed=1)
    voiced_rows = [e for e in train if e.voice is not None]
    assert len(voiced_rows) == 8 and all(e.voice.video_id == "vid_b" and e.voice.label == 0 for e in voiced_rows)
    fit(config, tmp_path / "run", runtime)
    saved = load_train_config(tmp_path / "run" / "train_config.json")
    assert saved.data.compose == Composition(voiced=1.0, wordless=0.5) and saved.data.augment == 1.0
    assert saved.data.corpora[1].lends_voices
