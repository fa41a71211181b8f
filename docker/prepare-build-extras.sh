#!/bin/sh
# Fill docker/build-extras/ for an image build on this machine: the host CA bundle (pip behind a
# TLS-inspecting proxy) and wheels for the whole dependency tree built on the host, so the build
# needs no index. Wheels are reused while pyproject.toml (and constraints.txt) are unchanged.
set -eu
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
OUT=docker/build-extras
mkdir -p "$OUT"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$OUT/ca-certificates.crt"
fi
STAMP="$(cat pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -c1-16)"
if [ -f "$OUT/wheels/.stamp" ] && [ "$(cat "$OUT/wheels/.stamp")" = "$STAMP" ]; then
    echo "wheels up to date"
    exit 0
fi
rm -rf "$OUT/wheels" && mkdir -p "$OUT/wheels"
set --
if [ -f constraints.txt ]; then set -- --constraint constraints.txt; fi
# The project's own wheel is built inside the image from the copied source; only dependencies
# and the build backend come from here.
"$PY" -m pip wheel --quiet --wheel-dir "$OUT/wheels" "$@" .
rm -f "$OUT"/wheels/nilecare_payments-*.whl
BACKEND="$("$PY" -c 'import tomllib;print(" ".join(tomllib.load(open("pyproject.toml","rb"))["build-system"]["requires"]))')"
# shellcheck disable=SC2086
"$PY" -m pip download --quiet --only-binary :all: --dest "$OUT/wheels" $BACKEND
# Debian bookworm's python3 is 3.11.2; redis needs async-timeout below 3.11.3, which a newer
# host Python never resolves.
"$PY" -m pip download --quiet --only-binary :all: --no-deps --dest "$OUT/wheels" \
    "async-timeout>=4.0.3"
echo "$STAMP" > "$OUT/wheels/.stamp"
echo "wheels in $OUT/wheels: $(ls "$OUT/wheels" | wc -l)"
