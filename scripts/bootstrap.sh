#!/usr/bin/env bash
# Install what Wuye needs into .venv (idempotent): Python packages from PyPI and, where the
# browser tests or PDF rendering need them, Debian's chromium and a CJK font.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Wuye needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "Python's venv module is missing: apt-get install python3-venv" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.wuye-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[dev]'
  touch "$stamp"
fi
if [ "${WUYE_SYSTEM_PACKAGES:-1}" = "1" ] && command -v apt-get >/dev/null 2>&1 \
   && [ "$(id -u)" = "0" ]; then
  need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  # grep without -q reads all of fc-list, so pipefail never sees a SIGPIPE.
  fc-list 2>/dev/null | grep -i "wenquanyi\|noto sans cjk" >/dev/null || need+=(fonts-wqy-zenhei)
  command -v msgfmt >/dev/null 2>&1 || need+=(gettext)
  command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing Debian packages: ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
