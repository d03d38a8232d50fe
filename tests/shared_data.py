"""The real corpora in ../shared/data: required where CI runs (`MMML_REQUIRE_SHARED=1`), else skipped, loudly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared(name: str) -> Path:
    """`../shared/data/<name>`; a test that needs it fails in CI and is skipped, with this reason, elsewhere."""
    path = DATA / name
    if not path.exists():
        message = f"{path} is missing: the real-data tests need ../shared beside the checkout"
        if os.environ.get("MMML_REQUIRE_SHARED"):
            pytest.fail(message)
        pytest.skip(message)
    return path
