#!/usr/bin/env bash
# Set up autocap on a fresh machine: a virtualenv in .venv with autocap installed (editable).
#   ops/bootstrap.sh          runtime only (enough for `autocap up --demo`)
#   ops/bootstrap.sh --test   plus everything the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "autocap needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip

extras=""
if [ "${1:-}" = "--test" ]; then
    extras="[test]"
    # promtool checks and unit-tests the alert rules; the prometheus server runs in the
    # integration test. The package may try to start a service: the tests never use :9090.
    if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        apt_install() {
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
                install -y --no-install-recommends prometheus
        }
        apt_install || { $sudo apt-get -o DPkg::Lock::Timeout=600 update && apt_install; }
    fi
fi
.venv/bin/python -m pip install --quiet --editable ".${extras}"
if [ "${1:-}" = "--test" ]; then
    # Browser tests drive Debian's chromium: Playwright cannot download its own browser here.
    if [ ! -x /usr/bin/chromium ]; then
        sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
        $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium
    fi
    # autocap.js's build and unit-test tools (esbuild, jsdom, ajv), pinned by the lock file.
    if ! command -v npm >/dev/null || ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
        echo "autocap's JavaScript tests need Node.js 20.19 or later with npm (jsdom needs it)" >&2
        exit 1
    fi
    (cd collectors/js && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "autocap installed in .venv ($(.venv/bin/autocap --version))"
