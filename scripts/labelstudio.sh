#!/usr/bin/env bash
# Label Studio for the labelling loop's end-to-end test (tests/test_label_studio_loop.py), in a virtual
# environment of its own: its pinned dependencies (Django and friends) are not the project's. Every package is
# locked (scripts/labelstudio-lock.txt): an unpinned dependency's new release stops the server starting. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LABEL_STUDIO_VENV:-.venv-labelstudio}
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r scripts/labelstudio-lock.txt
echo "label studio $("$VENV/bin/python" -c "import label_studio; print(label_studio.__version__)")"
