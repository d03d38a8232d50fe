"""The annotation stages, one module each, every one a plain function usable without Ray.

discover (inputs -> videos) -> demux (ffmpeg -> 16 kHz PCM) -> transcribe (VAD + faster-whisper)
-> segment (utterances) -> score (MMML heads) -> write (Parquet); `options` holds their settings and
`engine` wires them into a streaming Ray Data pipeline.
"""
