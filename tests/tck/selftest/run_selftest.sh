#!/bin/sh
# run_selftest.sh - checks that tck_runner fails exactly the "fails:"
# scenarios of RunnerSelfTest.feature and passes the "passes:" ones.
# Self-contained: its named graph lives in selftest/graphs.
# usage: run_selftest.sh TCK_RUNNER
set -eu
runner=${1:?usage: run_selftest.sh TCK_RUNNER}
here=$(cd "$(dirname "$0")" && pwd)
graphs=$here/graphs
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM

"$runner" --graphs "$graphs" "$here/RunnerSelfTest.feature" > "$out" || true
cat "$out"
bad=0
# every scenario line: status then name; "fails:" names must be FAIL,
# "passes:" names PASS, "skipped:" names SKIP
while read -r status rest; do
	case "$rest" in
	*"] fails:"*) want=FAIL ;;
	*"] passes:"*) want=PASS ;;
	*"] skipped:"*) want=SKIP ;;
	*) continue ;;
	esac
	if [ "$status" != "$want" ]; then
		echo "selftest: expected $want: $rest" >&2
		bad=1
	fi
done < "$out"
grep -q '^5 passed, 10 failed$' "$out" || {
	echo "selftest: wrong totals" >&2
	bad=1
}
exit $bad
