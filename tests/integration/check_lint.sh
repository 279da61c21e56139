#!/usr/bin/env bash
# check_lint.sh DIR...: fails if a shell test chains a command after
# it_check with && or || ("it_check x [ a ] && [ b ]" runs [ b ] outside
# the check, so its failure is never counted). Quoted text (which may span
# lines, as in bash -c '...') and comments are left out of the search;
# continued lines are joined first.
set -u
bad=$(find "$@" -name '*.sh' -print0 | sort -z | xargs -0 awk '
	# q: 0 outside quotes, 1 in single, 2 in double quotes; cmd: the
	# current logical line with its quoted text removed.
	function flush() {
		if (cmd ~ /(^|[;&|({[:space:]])it_check[[:space:]].*(&&|\|\|)/)
			printf "%s:%d: %s\n", FILENAME, start, first
		cmd = ""; start = 0
	}
	FNR == 1 { q = 0; cmd = ""; start = 0 }
	{
		line = $0
		if (start == 0) { start = FNR; first = $0 }
		n = length(line)
		for (i = 1; i <= n; i++) {
			c = substr(line, i, 1)
			if (q == 1) { if (c == "\x27") q = 0; continue }
			if (q == 2) {
				if (c == "\\") i++
				else if (c == "\"") q = 0
				continue
			}
			if (c == "\\" && i == n) { cmd = cmd " "; next }
			if (c == "\\") { i++; continue }
			if (c == "\x27") { q = 1; continue }
			if (c == "\"") { q = 2; continue }
			if (c == "#" && (i == 1 || substr(line, i - 1, 1) ~ /[[:space:]]/)) break
			cmd = cmd c
		}
		if (q == 0) flush()
		else cmd = cmd " "
	}')
if [ -n "$bad" ]; then
	echo "it_check followed by && or || (put the whole condition in the check):"
	echo "$bad"
	exit 1
fi
echo "no it_check chained with && or || in: $*"
