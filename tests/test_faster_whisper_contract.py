"""The faster-whisper internals `pipelines.transcribe.WindowPipeline` relies on, checked by name.

`WindowPipeline` overrides `BatchedInferencePipeline.generate_segment_batched`, calls its `forward` with
ready-made chunk metadata, resets its `last_speech_timestamp` word-timing state, and reuses the
`TranscriptionOptions` its `transcribe` builds. None of that is public API: pyproject.toml pins
faster-whisper to the minor releases this test passed on, and this test fails loudly, naming what moved,
before a new release can change annotation silently.
"""

from __future__ import annotations

import dataclasses
import inspect

from faster_whisper.transcribe import BatchedInferencePipeline, TranscriptionOptions, get_compression_ratio


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_overridden_and_called_methods_keep_their_signatures() -> None:
    forward = ["self", "features", "tokenizer", "chunks_metadata", "options"]
    assert parameters(BatchedInferencePipeline.forward) == forward


def test_forward_goes_through_the_overridden_step_and_the_word_timing_state() -> None:
    forward = inspect.getsource(BatchedInferencePipeline.forward)
    assert "self.generate_segment_batched(" in forward  # the step that detects languages (next test)
    assert "self.last_speech_timestamp" in forward  # the state WindowPipeline resets per batch
    assert 'chunk_metadata["offset"]' in forward and 'chunk_metadata["duration"]' in forward


def test_the_batched_step_detects_languages_on_the_model_the_lane_watches() -> None:
    """`pipelines.transcribe._Detecting` keeps what this call returns instead of detecting a second time."""
    assert "self.model.model.detect_language(" in inspect.getsource(BatchedInferencePipeline.generate_segment_batched)


def test_transcription_options_carry_the_fields_replaced_per_batch() -> None:
    fields = {f.name for f in dataclasses.fields(TranscriptionOptions)}
    assert {"multilingual", "word_timestamps", "beam_size", "clip_timestamps", "compression_ratio_threshold"} <= fields
    assert "transcription_options" in inspect.getsource(BatchedInferencePipeline.transcribe)


def test_the_loop_test_is_faster_whisper_s_own() -> None:
    """`WindowPipeline` decodes a window again when its text compresses like a repetition loop, by this function."""
    assert get_compression_ratio("boom, " * 40) > 2.4 > get_compression_ratio("I liked that scene a lot, it was great.")
