#!/usr/bin/env bash
# Idempotent set-up: Debian audio/browser tools, a virtual environment, and hf_ser with pinned CPU wheels.
# Usage: scripts/setup.sh [--with-browser]
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
[[ "${1:-}" == "--with-browser" ]] && want_browser=1

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
if [[ $want_browser == 1 ]] && ! [[ -x /usr/bin/chromium ]]; then need+=(chromium); fi
if ((${#need[@]})); then
  echo "[setup] installing Debian packages: ${need[*]}"
  SUDO=""
  [[ $(id -u) == 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "[setup] creating .venv"
  $PY -m venv .venv
fi
stamp=.venv/.hf_ser-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp || constraints.txt -nt $stamp ]]; then
  echo "[setup] installing hf_ser and pinned dependencies (constraints.txt)"
  quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
  quiet .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned, so that nothing pulls a CUDA build.
  quiet .venv/bin/python -m pip install -q -c constraints.txt torch
  # dev includes the ONNX extra (onnx, onnxruntime), so `make test` runs the ONNX tests too.
  quiet .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,onnx]"
  touch "$stamp"
fi
echo "[setup] ready"
