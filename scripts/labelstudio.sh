#!/usr/bin/env bash
# Label Studio for the labelling loop's end-to-end test (tests/test_label_studio_loop.py), in a virtual
# environment of its own: its pinned dependencies (Django and friends) are not the project's. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LABEL_STUDIO_VENV:-.venv-labelstudio}
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "label-studio>=1.23,<1.24"
echo "label studio: $("$VENV/bin/label-studio" version 2>/dev/null | grep -m1 -i 'label-studio' || echo installed)"
