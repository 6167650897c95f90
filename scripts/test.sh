#!/usr/bin/env bash
# The whole test suite: builds the example bundles once, then the JS tests (node --test) and
# the Python tests (pytest) run against them. Exits non-zero if any suite fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "test: no .venv here; run: bash scripts/setup.sh" >&2; exit 2; }

export POLYONNX_EXAMPLE_BUNDLES="$PWD/build/test-bundles"
export POLYONNX_JS_FIXTURES="$PWD/build/js-fixtures"
mkdir -p test-artifacts

echo "== building example bundles and reference vectors ($POLYONNX_EXAMPLE_BUNDLES)"
"$PY" tests/make_bundles.py "$POLYONNX_EXAMPLE_BUNDLES" || { echo "test: building example bundles failed" >&2; exit 1; }
status=0
if [ -f tests/js/fixtures/make_fixtures.py ]; then
  "$PY" tests/js/fixtures/make_fixtures.py "$POLYONNX_JS_FIXTURES" || { echo "test: JS fixtures failed" >&2; exit 1; }
fi

echo "== JavaScript tests (node --test tests/js/*.test.js)"
node --test --test-concurrency=1 tests/js/*.test.js || status=1

echo "== Python tests (pytest)"
"$PY" -m pytest -q "$@" || status=1

exit $status
