"""One dataclass tree configures an annotation run; it travels with the output.

The tree is saved as JSON in the output's Parquet metadata, beside the output
(`<stem>.config.json`) and in the run's work directory, where it guards
resumption: a run may only continue work made with the same result-relevant
settings (`result_identity`).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from mmml.config import to_dict
from pipelines.options import ASROptions, EngineOptions, ScoreOptions, SegmentOptions

TOOL = "mmml-annotate"


@dataclass(frozen=True)
class AnnotateConfig:
    score: ScoreOptions = field(default_factory=ScoreOptions)
    asr: ASROptions = field(default_factory=ASROptions)
    segment: SegmentOptions = field(default_factory=SegmentOptions)
    engine: EngineOptions = field(default_factory=EngineOptions)
    transcripts: str | None = None  # an earlier output whose utterances are reused (`--transcripts`)


# Settings that change no output value: free to differ between a run and its resumption.
_NOT_RESULT = {
    "score": {"checkpoint", "batch_size", "device", "torch_threads", "amp"},  # the checkpoint counts by content id
    "asr": {"device", "cpu_threads", "batch_size", "group_videos", "group_mb"},  # grouping moves word times
    # by Whisper's jitter at most (`pipelines.windows`), so `--transcripts` and resumption accept any grouping
}


def result_identity(config: AnnotateConfig, model_id: str) -> dict[str, Any]:
    """What must match for rows of two runs to belong in one output."""
    identity: dict[str, Any] = {"model_id": model_id}
    for section in ("score", "asr", "segment"):
        values = to_dict(getattr(config, section))
        identity[section] = {k: v for k, v in values.items() if k not in _NOT_RESULT.get(section, set())}
    return identity


def with_settings(
    config: AnnotateConfig, settings: Mapping[str, Mapping[str, Any]], keep: Collection[tuple[str, str]]
) -> AnnotateConfig:
    """`config` with the values of `settings` (section -> field -> value, an earlier run's), except those in `keep`.

    A re-annotation reuses an earlier run's utterances, so the settings that
    made them are this run's too unless the user says otherwise; a field this
    version does not know is left for `--transcripts`' check to name.
    """
    changes = {}
    for section, values in settings.items():
        options = getattr(config, section)
        known = {f.name for f in fields(options)}
        taken = {k: v for k, v in values.items() if k in known and (section, k) not in keep}
        changes[section] = replace(options, **taken)
    return replace(config, **changes)


def tool_version() -> str:
    try:
        return importlib.metadata.version(TOOL)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
