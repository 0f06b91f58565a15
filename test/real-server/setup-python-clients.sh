#!/usr/bin/env bash
# Creates the Python venv with the real Python clients (the openai SDK, LangChain's ChatOpenAI) that
# test/integration/python-clients.test.ts runs against the simulator and the real servers, into a
# cache outside the checkout. Idempotent: a finished venv exits at once, without the network.
#
#   test/real-server/setup-python-clients.sh     # last line: PYTHON=<the venv's python>
#
# Cache: ${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}/python-clients-<sha256 of requirements.txt, 16 hex>/
#   bin/python ...  ready (pip freeze of the venv, written last)
# The pins live in test/python/requirements.txt; changing it changes the directory, so the test
# never runs against a stale venv. Needs python3 >= 3.10 with the venv module (Debian: python3-venv)
# and PyPI through pip. Set PYTHON3 to choose the interpreter (default: python3 on PATH).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REQ="$ROOT/test/python/requirements.txt"
CACHE_ROOT=${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}
HASH=$(sha256sum "$REQ" | cut -c1-16)
DEST="$CACHE_ROOT/python-clients-$HASH"
PY="$DEST/bin/python"
BASE_PYTHON=${PYTHON3:-python3}

log() { printf '[setup-python-clients] %s\n' "$*" >&2; }

done_line() { printf 'PYTHON=%s\n' "$PY"; }

# `ready` alone is not enough: the venv's python is a symlink to the base interpreter, which an
# upgrade (pyenv, apt) can remove; then the venv is rebuilt.
finished() { [[ -f "$DEST/ready" && -x "$PY" ]] && "$PY" -c '' 2>/dev/null; }

apt_install() {
  if [[ $(id -u) -ne 0 ]]; then
    log "$1: apt-get install ${*:2}"; exit 1
  fi
  log "installing ${*:2} ($1)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${@:2}" >/dev/null
}

if finished; then
  log "already set up ($DEST)"
  done_line
  exit 0
fi
mkdir -p "$CACHE_ROOT"
# One setup at a time per cache; its own lock, so it does not wait for a llama.cpp build.
exec 9>"$CACHE_ROOT/.lock-python-clients"
flock 9
if finished; then
  log "set up by a concurrent run"
  done_line
  exit 0
fi

if ! command -v "$BASE_PYTHON" >/dev/null; then
  [[ "$BASE_PYTHON" == python3 ]] || { log "$BASE_PYTHON not found"; exit 1; }
  apt_install "python3 not found" python3 python3-venv
fi
if ! "$BASE_PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
  log "$BASE_PYTHON is $("$BASE_PYTHON" -V 2>&1): langchain-core needs Python >= 3.10"; exit 1
fi
# Debian's python3 comes without ensurepip (so `python3 -m venv` fails) unless python3-venv is in.
if ! "$BASE_PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  apt_install "$BASE_PYTHON has no venv/ensurepip module" python3-venv
fi

start=$SECONDS
# Built in place under the lock; `ready` (written last) is what readers trust. A venv cannot be
# moved after creation (its scripts name their own path), so there is no build-then-rename.
rm -rf "$DEST"
log "creating $DEST with $("$BASE_PYTHON" -V 2>&1)"
"$BASE_PYTHON" -m venv "$DEST"
# Wheels only: nothing is compiled, so no compiler or Python headers are needed, and what is
# installed is what was tested. No cache of pip's own outside the venv's directory.
"$PY" -m pip install --quiet --no-input --disable-pip-version-check --no-cache-dir \
  --only-binary=:all: --requirement "$REQ"
"$PY" -m pip check >&2
"$PY" -c 'import openai, langchain_openai, langchain_core' >&2
"$PY" -m pip freeze --exclude-editable >"$DEST/ready.tmp"
mv "$DEST/ready.tmp" "$DEST/ready"
log "done in $((SECONDS - start)) s: $(grep -E '^(openai|langchain-openai|langchain-core)==' "$DEST/ready" | tr '\n' ' ')"
done_line
