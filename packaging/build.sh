#!/usr/bin/env bash
# Build the one-folder app packaging/dist/kpstudio/ with PyInstaller and check that it starts.
# Usage: packaging/build.sh            (from anywhere; uses or creates the repository's .venv)
#   PYTHON=python3.12 packaging/build.sh   Python used to create .venv when it is missing
#   VENV=/path/to/venv packaging/build.sh   another virtual environment
#   KPSTUDIO_FREEZE_EXPORT=1 ...            also bundle the `export` extra (ONNX, LiteRT)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "build.sh: creating $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# kpstudio itself and PyInstaller (the `packaging` extra), when missing
if [ "${KPSTUDIO_FREEZE_EXPORT:-0}" != "0" ]; then extras="packaging,export"; else extras="packaging"; fi
if ! "$PY" -c 'import kpstudio, PyInstaller' 2>/dev/null || [ "$extras" != "packaging" ]; then
    "$PY" -m pip install -q -e ".[$extras]"
fi

start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath packaging/dist --workpath packaging/build packaging/kpstudio.spec
end=$(date +%s)

APP="packaging/dist/kpstudio/kpstudio"
want="kpstudio $("$PY" -c 'import kpstudio; print(kpstudio.__version__)')"
got="$("$APP" --version)"
if [ "$got" != "$want" ]; then
    echo "build.sh: $APP --version printed '$got', expected '$want'" >&2
    exit 1
fi
echo "build.sh: built $APP in $((end - start)) s; $(du -sh packaging/dist/kpstudio | cut -f1) in all"
echo "build.sh: $APP --version -> $got"
