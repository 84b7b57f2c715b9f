# Sourced by scripts/demo and scripts/test: a project virtualenv with everything installed.
# Needs only Python >= 3.11 on PATH (python3.11+ or python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STREAM_APP_VENV:-$ROOT/.venv}"

find_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "error: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PY="$(find_python)"
  echo "creating virtualenv $VENV with $PY" >&2
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    echo "error: '$PY -m venv' failed; on Debian/Ubuntu install python3-venv first" >&2
    exit 1
  fi
fi
# Reinstall only when the dependency list changed (a stamp of pyproject.toml).
STAMP="$VENV/.cx-installed"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "installing cx-stream and its test tools into $VENV (first run takes a minute)" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test]" >&2
  echo "$WANT" >"$STAMP"
fi
export PATH="$VENV/bin:$PATH"
