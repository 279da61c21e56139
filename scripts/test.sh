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
status=0
ctest --output-on-failure -j"$(nproc)" "$@" || status=$?
if [ "$status" -ne 0 ]; then
	# A CI log may keep only its last lines: repeat what failed and why
	# there, and every input a fuzz target saved (libFuzzer's artifacts),
	# escaped, so a crash found in 20 s of CI can be replayed.
	echo "--- why (sanitizer and libFuzzer lines of the failed tests):"
	grep -ahE "^(SUMMARY: |==[0-9]+== ?ERROR|.*: runtime error: )" \
		Testing/Temporary/LastTest.log 2>/dev/null | sort -u | head -n 20 || true
	for f in tests/fuzz/work/*-crash-* tests/fuzz/work/*-timeout-* \
		tests/fuzz/work/*-oom-* tests/fuzz/work/*-leak-* \
		tests/fuzz/work/*-slow-unit-*; do
		[ -f "$f" ] || continue
		echo "--- fuzz input $f ($(wc -c <"$f") bytes):"
		head -c 2048 "$f" | LC_ALL=C sed -n l | head -n 30 || true
	done
fi
exit "$status"
