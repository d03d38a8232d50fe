"""Test media: the same espeak-ng + ffmpeg synthesis the demo and benchmarks use."""

from samples.media import (  # noqa: F401  (re-exported for the tests)
    SAMPLE_RATE,
    concat_with_pauses,
    require_tools,
    silence,
    speak,
    spoken_video,
    truncate,
    video_from_audio,
    video_without_audio,
)
