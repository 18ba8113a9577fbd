#!/usr/bin/env bash
# Rebuild the front-end files mlthreat ships or tests with, from the npm registry (development
# time only: the installed tool never needs npm or the network). Pinned versions; run from the
# repository's root, then commit the changed files.
#   elkjs     (EPL-2.0)  -> src/mlthreat/report/static/vendor/  the board's and report's layout
#   axe-core  (MPL-2.0)  -> tests/web/vendor/                accessibility checks in the tests
set -euo pipefail
ELKJS=0.12.1
AXE=4.14.1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "elkjs@$ELKJS" "axe-core@$AXE" >/dev/null)
tar xzf "$work/elkjs-$ELKJS.tgz" -C "$work" && mv "$work/package" "$work/elkjs"
tar xzf "$work/axe-core-$AXE.tgz" -C "$work" && mv "$work/package" "$work/axe"
cp "$work/elkjs/lib/elk.bundled.js" src/mlthreat/report/static/vendor/elk.bundled.js
cp "$work/elkjs/LICENSE.md" src/mlthreat/report/static/vendor/elkjs-LICENSE.md
cp "$work/axe/axe.min.js" tests/web/vendor/axe.min.js
cp "$work/axe/LICENSE" tests/web/vendor/axe-core-LICENSE
echo "elkjs $ELKJS and axe-core $AXE copied"
