#!/usr/bin/env bash
# Installs axe-core, pinned, into an ignored folder for the accessibility checks of the
# end-to-end tests (e2e_test.go reads .ci/node_modules-axe/node_modules/axe-core/axe.min.js).
set -euo pipefail
cd "$(dirname "$0")/.."
AXE_VERSION=4.10.3
if [ -f .ci/node_modules-axe/node_modules/axe-core/package.json ] &&
  grep -q "\"version\": \"$AXE_VERSION\"" .ci/node_modules-axe/node_modules/axe-core/package.json; then
  echo "axe-core $AXE_VERSION already installed"
  exit 0
fi
npm install --no-audit --no-fund --no-save --prefix .ci/node_modules-axe "axe-core@$AXE_VERSION"
