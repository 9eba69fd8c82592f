#!/usr/bin/env bash
# Install sfxmatch for the current user on Linux or macOS. Safe to run again (it updates).
#
#   bash installer/install.sh [options]
#
# Steps: a Python virtual environment; torch 2.13.0 built for this machine (CUDA when
# nvidia-smi sees a GPU, CPU otherwise); sfxmatch itself; the default model's weights; the
# background service; the client discovery file the editor plugins read; the DaVinci Resolve
# script. Every step prints what it does; --dry-run prints the steps and changes nothing.
set -euo pipefail

TORCH_VERSION=2.13.0
TORCH_INDEX_CPU=https://download.pytorch.org/whl/cpu
TORCH_INDEX_CUDA=https://download.pytorch.org/whl/cu128

usage() {
  cat <<'EOF'
usage: install.sh [options]

  --prefix DIR        put the environment in DIR/venv
                      (default: the per-user data folder, ~/.local/share/sfxmatch on Linux,
                      ~/Library/Application Support/sfxmatch on macOS)
  --source DIR        the sfxmatch source to install (default: the checkout this script is in)
  --python PROGRAM    the Python (3.11 or newer) to build the environment from
  --torch KIND        auto (default), cpu or cuda: which torch build to install
  --torch-index URL   install torch from this package index instead
  --no-env            do not create or update the environment (use the one at --prefix)
  --model NAME        the model whose weights to download (default: pe-av-base with a GPU,
                      pe-av-small without; `sfxmatch models` lists them)
  --no-model          do not download model weights (3.4 to 9 GB)
  --no-service        do not install the background service
  --no-plugins        do not write the client file or install the DaVinci Resolve script
  --dry-run           print every action, change nothing
  -h, --help          this help
EOF
}

say() { printf '[sfxmatch] %s\n' "$*"; }
warn() { printf '[sfxmatch] warning: %s\n' "$*" >&2; WARNINGS=$((WARNINGS + 1)); }
die() { printf '[sfxmatch] error: %s\n' "$*" >&2; exit 1; }

# Print a command (shell-quoted), then run it unless this is a dry run.
run() {
  local line
  printf -v line '%q ' "$@"
  printf '+ %s\n' "${line% }"
  if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE=$(cd "$SCRIPT_DIR/.." && pwd)
PREFIX=""
PYTHON=""
TORCH=auto
TORCH_INDEX=""
DO_ENV=1
DO_MODEL=1
MODEL=
DO_SERVICE=1
DO_PLUGINS=1
DRY_RUN=0
WARNINGS=0

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --source) SOURCE=${2:?--source needs a folder}; shift 2 ;;
    --source=*) SOURCE=${1#*=}; shift ;;
    --python) PYTHON=${2:?--python needs a program}; shift 2 ;;
    --python=*) PYTHON=${1#*=}; shift ;;
    --torch) TORCH=${2:?--torch needs auto, cpu or cuda}; shift 2 ;;
    --torch=*) TORCH=${1#*=}; shift ;;
    --torch-index) TORCH_INDEX=${2:?--torch-index needs a URL}; shift 2 ;;
    --torch-index=*) TORCH_INDEX=${1#*=}; shift ;;
    --no-env) DO_ENV=0; shift ;;
    --no-model) DO_MODEL=0; shift ;;
    --model) [ $# -ge 2 ] || die "--model needs a NAME"; MODEL=$2; shift 2 ;;
    --no-service) DO_SERVICE=0; shift ;;
    --no-plugins) DO_PLUGINS=0; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
case "$TORCH" in auto|cpu|cuda) ;; *) die "--torch must be auto, cpu or cuda, not $TORCH" ;; esac
[ -n "${HOME:-}" ] || die "HOME is not set"

# --- where things go ------------------------------------------------------------------------

OS=${SFXMATCH_INSTALL_OS:-$(uname -s)}  # the variable lets tests plan for the other platform
case "$OS" in
  Linux)
    DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/sfxmatch"
    CLIENT_FILE="${XDG_CONFIG_HOME:-$HOME/.config}/sfxmatch/client.json"
    RESOLVE_DIR="$HOME/.local/share/DaVinciResolve/Fusion/Scripts/Utility"
    ;;
  Darwin)
    DATA_DIR="$HOME/Library/Application Support/sfxmatch"
    CLIENT_FILE="$HOME/Library/Application Support/sfxmatch/client.json"
    RESOLVE_DIR="$HOME/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility"
    ;;
  *) die "this script is for Linux and macOS (found $OS); on Windows run installer/install.ps1" ;;
esac
PREFIX=${PREFIX:-$DATA_DIR}
VENV="$PREFIX/venv"
VENV_PY="$VENV/bin/python"
EXE="$VENV/bin/sfxmatch"

[ "$DRY_RUN" = 1 ] && say "dry run: nothing will be changed"
say "platform: $OS"
say "venv: $VENV"
say "source: $SOURCE"

# --- which torch ------------------------------------------------------------------------------
# sfxmatch pins torch==2.13.0 exactly. On Linux, PyPI's torch wheel is the CUDA build and pulls
# several GB of nvidia-* packages, so torch is installed first from PyTorch's own index: the
# CPU build (.../whl/cpu) when there is no NVIDIA GPU, the CUDA 12.8 build (.../whl/cu128) when
# nvidia-smi lists one. Either wheel (2.13.0+cpu, 2.13.0+cu128) satisfies the ==2.13.0 pin,
# so installing sfxmatch afterwards keeps it. macOS wheels come from PyPI (CPU and Metal).

gpu_name() {
  command -v nvidia-smi >/dev/null 2>&1 || return 1
  local listing
  listing=$(nvidia-smi -L 2>/dev/null) || return 1
  printf '%s\n' "$listing" | grep -m1 '^GPU ' || return 1
}

TORCH_KIND=$TORCH
TORCH_REASON="chosen with --torch"
if [ "$TORCH" = auto ]; then
  if [ "$OS" = Darwin ]; then
    TORCH_KIND=macos; TORCH_REASON="macOS wheels from PyPI (CPU and Metal)"
  elif GPU=$(gpu_name); then
    TORCH_KIND=cuda; TORCH_REASON="nvidia-smi: $GPU"
  else
    TORCH_KIND=cpu; TORCH_REASON="no NVIDIA GPU found by nvidia-smi"
  fi
fi
if [ -z "$TORCH_INDEX" ]; then
  case "$TORCH_KIND" in
    cuda) TORCH_INDEX=$TORCH_INDEX_CUDA ;;
    cpu) TORCH_INDEX=$TORCH_INDEX_CPU ;;
    *) TORCH_INDEX=https://pypi.org/simple ;;
  esac
fi
say "torch: $TORCH_KIND $TORCH_VERSION from $TORCH_INDEX ($TORCH_REASON)"

# --- Python -----------------------------------------------------------------------------------

python_ok() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

find_python() {
  local candidate
  if [ -n "$PYTHON" ]; then
    python_ok "$PYTHON" || die "$PYTHON is not Python 3.11 or newer"
    printf '%s\n' "$PYTHON"; return
  fi
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
      command -v "$candidate"; return
    fi
  done
  die "no Python 3.11 or newer found; install one (Debian/Ubuntu: apt install python3 python3-venv; macOS: python.org or Homebrew) or pass --python"
}

BASE_PY=$(find_python)
say "python: $BASE_PY"

# --- 1. the environment -------------------------------------------------------------------------

if [ "$DO_ENV" = 1 ]; then
  [ -f "$SOURCE/pyproject.toml" ] || die "$SOURCE has no pyproject.toml; pass --source"
  if [ -x "$VENV_PY" ]; then
    say "updating the environment in $VENV"
  else
    "$BASE_PY" -c 'import ensurepip, venv' >/dev/null 2>&1 ||
      die "$BASE_PY cannot create virtual environments (Debian/Ubuntu: apt install python3-venv)"
    run mkdir -p "$PREFIX"
    run "$BASE_PY" -m venv "$VENV"
  fi
  run "$VENV_PY" -m pip install --quiet --upgrade pip
  # Exactly this version, from the index chosen above (see "which torch").
  run "$VENV_PY" -m pip install --quiet --index-url "$TORCH_INDEX" "torch==$TORCH_VERSION"
  run "$VENV_PY" -m pip install --quiet "$SOURCE"
else
  say "skipping the environment (--no-env)"
  [ "$DRY_RUN" = 1 ] || [ -x "$EXE" ] || die "no sfxmatch at $EXE; run without --no-env first"
fi

# --- 2. the model's weights ---------------------------------------------------------------------

if [ "$DO_MODEL" = 1 ]; then
  say "model weights (3.4 GB for pe-av-small, 4.1 GB for pe-av-base; resumable, hash-checked)."
  say "PE-AV is Apache-2.0; ImageBind (--model imagebind-huge) is non-commercial only."
  # `sfxmatch models fetch` downloads into the user cache, checks each file's hash and resumes
  # an interrupted download on the next run; files already in place are used as they are.
  fetch=("$EXE" models fetch)
  [ -z "$MODEL" ] || fetch+=("$MODEL")
  if ! run "${fetch[@]}"; then
    warn "the weights could not be had (see above); run this script again to resume, or use --no-model and set SFXMATCH_WEIGHTS to a folder holding them"
  fi
else
  say "skipping the model download (--no-model)"
fi

# --- 3. the background service -------------------------------------------------------------------

if [ "$DO_SERVICE" = 1 ]; then
  if [ "$DRY_RUN" = 1 ] || "$EXE" daemon install --help >/dev/null 2>&1; then
    SERVICE_CMD=("$EXE" daemon install)
  else  # an sfxmatch whose command line does not offer it yet: the module itself does
    SERVICE_CMD=("$VENV_PY" -m sfxmatch.user_service install)
  fi
  if ! run "${SERVICE_CMD[@]}"; then
    warn "the background service could not be installed (see above); start it by hand with: $EXE daemon run"
  fi
  if [ "$OS" = Linux ]; then
    say "the service starts when you log in; to keep it running without a login session:"
    say "  loginctl enable-linger \"\$USER\"   (logs: journalctl --user -u sfxmatch)"
  fi
else
  say "skipping the background service (--no-service)"
fi

# --- 4. editor plugins -------------------------------------------------------------------------

write_client_file() {
  local content
  content=$("$BASE_PY" -c 'import json, sys; print(json.dumps({"executable": sys.argv[1]}))' "$EXE")
  say "write $CLIENT_FILE: $content"
  if [ "$DRY_RUN" = 0 ]; then
    mkdir -p "$(dirname "$CLIENT_FILE")"
    printf '%s\n' "$content" > "$CLIENT_FILE.tmp"
    mv -f "$CLIENT_FILE.tmp" "$CLIENT_FILE"
  fi
}

install_resolve_scripts() {
  local script name found=0
  say "DaVinci Resolve scripts folder: $RESOLVE_DIR"
  for script in "$SOURCE"/plugins/resolve/*.py; do
    [ -f "$script" ] || continue
    name=$(basename "$script")
    [ "$name" = live_check.py ] && continue  # a developer's check against a running Resolve
    if [ "$found" = 0 ]; then run mkdir -p "$RESOLVE_DIR"; fi
    found=1
    run cp -f "$script" "$RESOLVE_DIR/$name"
  done
  if [ "$found" = 0 ]; then
    warn "no DaVinci Resolve scripts found in $SOURCE/plugins/resolve"
  else
    say "in Resolve: Workspace > Scripts > Utility"
  fi
}

if [ "$DO_PLUGINS" = 1 ]; then
  write_client_file
  install_resolve_scripts
else
  say "skipping the client file and the Resolve script (--no-plugins)"
fi

# --- checks ----------------------------------------------------------------------------------

if ! command -v ffmpeg >/dev/null 2>&1; then
  if [ "$OS" = Darwin ]; then hint="brew install ffmpeg"; else hint="sudo apt install ffmpeg"; fi
  # Not a failure: PyAV decodes most formats by itself.
  say "note: ffmpeg is not installed; some compressed sound formats need it ($hint)"
fi

if [ "$WARNINGS" -gt 0 ]; then
  say "done, with $WARNINGS warning(s) above"
  exit 1
fi
say "done: $EXE"
