#!/usr/bin/env bash
# Install everything Flowgate needs into this checkout: the Python virtual environment
# (.venv), the model service's environment (.venv-models), the front-end packages (node_modules) and the front-end build (static/dist).
# Safe to run again: each step is skipped when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m[flowgate]\033[0m %s\n' "$*"; }

apt_install() {
  # Debian packages, only when missing and only where we may install them.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    say "please install these Debian packages: ${missing[*]}"; return 1
  fi
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

python_bin() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  apt_install python3 python3-venv python3-dev >&2 && echo python3
}

newer() { # newer TARGET SOURCES...: true when TARGET is missing or older than a source
  local target=$1; shift
  [ -e "$target" ] || return 0
  for source in "$@"; do [ "$source" -nt "$target" ] && return 0; done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$(python_bin)" -m venv .venv
fi
if newer .venv/.installed pyproject.toml; then
  say "installing Python packages (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch .venv/.installed
fi

# The model service's own environment, .venv-models: torch (the CPU build where there is no
# GPU), transformers and tokenizers, which only the model service and the language model
# trainer import. It reads .venv's packages through a .pth file, so it holds only what the
# model service adds (pinned in workers/serving/requirements.txt).
if newer .venv-models/.installed workers/serving/requirements.txt .venv/.installed; then
  say "installing the model service's packages (torch, transformers) into .venv-models"
  [ -x .venv-models/bin/python ] || .venv/bin/python -m venv .venv-models
  web_packages=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  models_packages=$(.venv-models/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  printf 'import site; site.addsitedir(%s)\n' "'$web_packages'" > "$models_packages/flowgate-web-packages.pth"
  # FLOWGATE_TORCH_INDEX=https://download.pytorch.org/whl/cpu picks torch's CPU build where
  # pip would otherwise take the CUDA one (PyPI's Linux wheels); here it is in /opt/wheels.
  .venv-models/bin/python -m pip install -q -r workers/serving/requirements.txt \
    ${FLOWGATE_TORCH_INDEX:+--extra-index-url "$FLOWGATE_TORCH_INDEX"}
  touch .venv-models/.installed
fi

command -v npm >/dev/null || apt_install nodejs npm
if newer node_modules/.installed package.json package-lock.json; then
  say "installing front-end packages"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
  touch node_modules/.installed
fi
if newer static/dist/.built vite.config.js package.json $(find static/src -type f); then
  say "building the front end"
  npx vite build --logLevel error
  touch static/dist/.built
fi
