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


def result_identity(config: AnnotateConfig, model_id: str) -> dict[str, Any]:
    """What must match for rows of two runs to belong in one output: the settings declared `result=True`.

    Settings that change no output value (`pipelines.options`) are free to
    differ between a run and its resumption; the checkpoint counts by its
    content id, not its path.
    """
    identity: dict[str, Any] = {"model_id": model_id}
    for section in ("score", "asr", "segment"):  # the engine's settings change no output value
        options = getattr(config, section)
        values = to_dict(options)
        identity[section] = {f.name: values[f.name] for f in fields(options) if f.metadata.get("result", True)}
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
