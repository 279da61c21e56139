#!/usr/bin/env bash
# Installs what LoraDB needs, builds it with AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs the whole test suite through CTest.
# Usage: scripts/test.sh [extra ctest args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
build="$root/build/asan"
# The node's test hooks (*_TESTING, docs/node.md) are for this build only.
cmake -S "$root" -B "$build" -DLORA_SANITIZE=ON -DLORA_TEST_HOOKS=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
# The official Neo4j JavaScript driver for client_bolt_driver (pinned in
# tests/client/bolt/package.json; node_modules is ignored by git). Without
# it (no network) that test is skipped.
npm install --prefix "$root/tests/client/bolt" --no-package-lock --no-audit \
	--no-fund --loglevel=error ||
	echo "npm install failed: client_bolt_driver will be skipped"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp}
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"
