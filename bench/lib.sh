# shellcheck shell=bash disable=SC2016
# bench/lib.sh: shared helpers for silo benchmark scripts. Source it; do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   bench_init                         # once, before any case
#   bench_require openssl cp xargs     # fail clearly if a tool is missing
#   bench_case --setup 'rm -rf S; bench_warm F' 'put 1 GiB' silo "$bytes" "silo --store S put F"
#   bench_case ...                     # peers of the same case, same data, same run
#   bench_note "free text shown under the table"
#   bench_table                        # print the table (markdown, aligned)
#   bench_record bench/RESULTS.md "bench/store --quick"
#
# Timing: every case runs under GNU `/usr/bin/time -f '%e %M'`: wall seconds (10 ms
# resolution) and the peak RSS of the largest process in the command (ru_maxrss of the
# waited-for children, so `bash -c 'a | b'` reports the bigger of a and b, not the sum).
#
# Page cache: we cannot drop it here (no privileges for /proc/sys/vm/drop_caches, and it
# would disturb other work on the machine). Instead every case warms its inputs by
# reading them once before the timer starts (bench_warm in --setup), so silo and its
# peers all read from memory and the comparison is of CPU and write paths, not of who
# got the cold cache. Cases that write to a disk end with `sync -f` inside the timed
# command (and start with a sync outside it), so a tool that only fills the page cache
# is not credited with speed it does not have; RocksDB syncs its own files anyway.
#
# Rows live in a TSV file ($BENCH_ROWS: case, tool, seconds, bytes, rss KiB, command);
# the table and the notes are made from it. Nothing here asserts a number: benchmarks
# measure, they never fail a build over a figure.

# Exit status 2 and a clear message: used for missing tools, bad usage, failed commands.
bench_die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 2
}

bench_say() {
	[[ ${BENCH_QUIET:-0} == 1 ]] || printf 'bench: %s\n' "$*" >&2
}

# bench_require TOOL...: every tool must be on PATH (or be an executable path).
# GNU time is checked specially: the busybox or shell-keyword `time` does not do -f/%M.
bench_require() {
	local t missing=()
	for t in "$@"; do
		if [[ $t == */* ]]; then
			[[ -x $t ]] || missing+=("$t")
		else
			command -v "$t" >/dev/null 2>&1 || missing+=("$t")
		fi
	done
	((${#missing[@]} == 0)) || bench_die "missing tool(s): ${missing[*]} (install them, e.g. apt-get install time openssl zstd coreutils findutils)"
}

bench_require_gnu_time() {
	[[ -x /usr/bin/time ]] || bench_die "/usr/bin/time not found: install GNU time (apt-get install time)"
	/usr/bin/time --version 2>&1 | grep -q 'GNU' ||
		bench_die "/usr/bin/time is not GNU time (need -f '%e %M'): install the 'time' package"
}

# bench_init: scratch files for rows and logs. Call once per script.
bench_init() {
	bench_require_gnu_time
	bench_require awk bash sort date uname nproc mktemp
	BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/silo-bench-meta.XXXXXX")
	BENCH_ROWS=$BENCH_TMP/rows.tsv
	BENCH_NOTES=$BENCH_TMP/notes.txt
	BENCH_LOG=${BENCH_LOG:-$BENCH_TMP/commands.log}
	: >"$BENCH_ROWS"
	: >"$BENCH_NOTES"
	: >"$BENCH_LOG"
	BENCH_REPS=${BENCH_REPS:-1}
	export -f bench_warm
}

bench_cleanup_meta() {
	[[ -n ${BENCH_TMP:-} && -d $BENCH_TMP ]] && rm -rf -- "$BENCH_TMP"
	return 0
}

# bench_warm PATH...: read files (directories recursively) once so they sit in the page
# cache before a timed run. Exported, so --setup snippets can call it.
bench_warm() {
	local p
	for p in "$@"; do
		if [[ -d $p ]]; then
			find "$p" -type f -print0 | xargs -0 -r cat >/dev/null
		elif [[ -e $p ]]; then
			cat -- "$p" >/dev/null
		fi
	done
}

# bench_machine: one line describing the machine.
bench_machine() {
	local cpu mem
	cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)
	mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576; exit}' /proc/meminfo 2>/dev/null)
	printf 'nproc %s, CPU %s, RAM %s, kernel %s %s' \
		"$(nproc)" "${cpu:-unknown}" "${mem:-unknown}" "$(uname -s)" "$(uname -r)"
}

# bench_fstype DIR: filesystem type of DIR (ext4, tmpfs, ...).
bench_fstype() {
	local t
	t=$(findmnt -n -o FSTYPE -T "$1" 2>/dev/null | head -n 1) || t=''
	[[ -n $t ]] || t=$(stat -f -c %T "$1" 2>/dev/null) || t=unknown
	printf '%s\n' "${t:-unknown}"
}

# The blob-info cache of skopeo and podman (containers/image) for root. It persists across
# runs and grows with each one (40 MB after two days of benchmarks and tests made a skopeo
# copy of the large set 23 s instead of 9.5 s), so every timed command gets an empty one
# of its own, as silo's rows start from an empty store: see bench_time_once.
BENCH_CONTAINERS_CACHE=/var/lib/containers/cache

# bench_fresh_cache_prefix: the command words that run what follows in a private mount
# namespace with an empty tmpfs over $BENCH_CONTAINERS_CACHE; none when that is not
# possible (not root, no unshare), with a note saying so.
bench_fresh_cache_prefix() {
	if [[ -z ${BENCH_FRESH_CACHE_CHECKED:-} ]]; then
		BENCH_FRESH_CACHE_CHECKED=1
		BENCH_FRESH_CACHE=0
		if (($(id -u) == 0)) && command -v unshare >/dev/null &&
			mkdir -p "$BENCH_CONTAINERS_CACHE" &&
			unshare -m sh -c "mount -t tmpfs tmpfs $BENCH_CONTAINERS_CACHE" 2>/dev/null; then
			BENCH_FRESH_CACHE=1
			bench_note "every timed command ran with an empty containers blob-info cache ($BENCH_CONTAINERS_CACHE on a private tmpfs)"
		else
			bench_note "skopeo ran with the machine's persistent blob-info cache ($BENCH_CONTAINERS_CACHE): not root or no unshare"
		fi
	fi
	((BENCH_FRESH_CACHE)) || return 0
	# shellcheck disable=SC2016
	printf '%s\0' unshare -m sh -c 'mount -t tmpfs tmpfs "$0" && exec bash -c "$1"' "$BENCH_CONTAINERS_CACHE"
}

# bench_time_once SNIPPET: run SNIPPET with bash -c under GNU time; sets BENCH_SECS and
# BENCH_RSS_KIB. The snippet's stdout and stderr go to $BENCH_LOG unless it redirects
# them itself. A failing snippet stops the script with the tail of the log.
bench_time_once() {
	local snippet=$1 tf rc=0 line prefix=()
	tf=$BENCH_TMP/time.out
	: >"$tf"
	printf '\n$ %s\n' "$snippet" >>"$BENCH_LOG"
	bench_fresh_cache_prefix >/dev/null # decides once, in this shell
	mapfile -d '' prefix < <(bench_fresh_cache_prefix)
	if ((${#prefix[@]})); then
		/usr/bin/time -o "$tf" -f '%e %M' "${prefix[@]}" "set -o pipefail; $snippet" >>"$BENCH_LOG" 2>&1 || rc=$?
	else
		/usr/bin/time -o "$tf" -f '%e %M' bash -c "set -o pipefail; $snippet" >>"$BENCH_LOG" 2>&1 || rc=$?
	fi
	if ((rc != 0)); then
		tail -n 20 "$BENCH_LOG" >&2
		bench_die "command failed (exit $rc): $snippet"
	fi
	line=$(tail -n 1 "$tf")
	read -r BENCH_SECS BENCH_RSS_KIB <<<"$line"
	[[ $BENCH_SECS =~ ^[0-9.]+$ && $BENCH_RSS_KIB =~ ^[0-9]+$ ]] ||
		bench_die "could not parse /usr/bin/time output '$line' for: $snippet"
}

# bench_case [--setup SNIPPET] [--reps N] CASE TOOL BYTES SNIPPET
#   Runs SETUP (untimed) then SNIPPET (timed), N times (default $BENCH_REPS); records the
#   median seconds and the largest peak RSS as one row. BYTES is the payload the case
#   moves (for MB/s). TOOL "silo" marks the row the others in CASE are compared with.
bench_case() {
	local setup='' reps=$BENCH_REPS
	while (($#)); do
		case $1 in
		--setup) setup=$2; shift 2 ;;
		--reps) reps=$2; shift 2 ;;
		*) break ;;
		esac
	done
	(($# == 4)) || bench_die "bench_case: want CASE TOOL BYTES SNIPPET, got $#: $*"
	local case=$1 tool=$2 bytes=$3 snippet=$4 i secs=() rss=0 median
	for ((i = 0; i < reps; i++)); do
		if [[ -n $setup ]]; then
			printf '\n# setup: %s\n' "$setup" >>"$BENCH_LOG"
			bash -c "set -euo pipefail; $setup" >>"$BENCH_LOG" 2>&1 ||
				{ tail -n 20 "$BENCH_LOG" >&2; bench_die "setup failed for '$case' / $tool: $setup"; }
		fi
		bench_time_once "$snippet"
		secs+=("$BENCH_SECS")
		((BENCH_RSS_KIB > rss)) && rss=$BENCH_RSS_KIB
	done
	median=$(printf '%s\n' "${secs[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$tool" "$median" "$bytes" "$rss" "$snippet" >>"$BENCH_ROWS"
	bench_say "$(printf '%-34s %-22s %8.2f s  %8s MB/s  %7.1f MiB RSS' "$case" "$tool" "$median" \
		"$(bench_mbps "$bytes" "$median")" "$(awk -v k="$rss" 'BEGIN{print k/1024}')")"
}

# bench_mbps BYTES SECONDS: decimal megabytes (1e6 bytes) per second, or "-".
bench_mbps() {
	awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0 && b > 0) printf "%.1f", b / 1e6 / s; else print "-" }'
}

# bench_secs CASE TOOL / bench_rss_mib CASE TOOL: look a recorded row up.
bench_secs() {
	awk -F'\t' -v c="$1" -v t="$2" '$1 == c && $2 == t {print $3; exit}' "$BENCH_ROWS"
}
bench_rss_mib() {
	awk -F'\t' -v c="$1" -v t="$2" '$1 == c && $2 == t {printf "%.1f", $5/1024; exit}' "$BENCH_ROWS"
}

# bench_note TEXT: a line shown under the table (and recorded).
bench_note() {
	printf '%s\n' "$*" >>"$BENCH_NOTES"
}

# bench_compare CASE PEER: "silo at X% of PEER's throughput (PEER time / silo time = R)".
bench_compare() {
	local s p
	s=$(bench_secs "$1" silo)
	p=$(bench_secs "$1" "$2")
	[[ -n $s && -n $p ]] || { echo "n/a"; return; }
	awk -v s="$s" -v p="$p" -v peer="$2" 'BEGIN {
		if (s <= 0 || p <= 0) { print "n/a (time below resolution)"; exit }
		printf "silo at %.0f%% of %s throughput (%s time / silo time = %.2f)", 100 * p / s, peer, peer, p / s }'
}

# bench_table: the results as an aligned markdown table on stdout.
#   ratio vs silo = peer seconds / silo seconds of the same case: >1 means silo is faster.
bench_table() {
	awk -F'\t' '
	BEGIN { n = 0 }
	{ n++; c[n] = $1; t[n] = $2; s[n] = $3; b[n] = $4; r[n] = $5
	  if ($2 == "silo") silo[$1] = $3 }
	END {
		h[1] = "case"; h[2] = "tool"; h[3] = "seconds"; h[4] = "MB/s"; h[5] = "peak RSS MiB"; h[6] = "ratio vs silo"
		for (i = 1; i <= n; i++) {
			v[i,1] = c[i]; v[i,2] = t[i]; v[i,3] = sprintf("%.2f", s[i])
			v[i,4] = (s[i] > 0 && b[i] > 0) ? sprintf("%.1f", b[i] / 1e6 / s[i]) : "-"
			v[i,5] = sprintf("%.1f", r[i] / 1024)
			if (t[i] == "silo") v[i,6] = "1.00"
			else if ((c[i] in silo) && silo[c[i]] > 0 && s[i] > 0) v[i,6] = sprintf("%.2f", s[i] / silo[c[i]])
			else v[i,6] = "-"
		}
		for (j = 1; j <= 6; j++) { w[j] = length(h[j]); for (i = 1; i <= n; i++) if (length(v[i,j]) > w[j]) w[j] = length(v[i,j]) }
		line = "|"; sep = "|"
		for (j = 1; j <= 6; j++) {
			line = line sprintf(j <= 2 ? " %-*s |" : " %*s |", w[j], h[j])
			d = ""; for (k = 0; k < w[j]; k++) d = d "-"
			sep = sep (j <= 2 ? " " d " |" : " " substr(d, 2) ": |")
		}
		print line; print sep
		for (i = 1; i <= n; i++) {
			line = "|"
			for (j = 1; j <= 6; j++) line = line sprintf(j <= 2 ? " %-*s |" : " %*s |", w[j], v[i,j])
			print line
		}
	}' "$BENCH_ROWS"
}

# bench_notes: the notes, one markdown bullet each.
bench_notes() {
	[[ -s $BENCH_NOTES ]] && sed 's/^/- /' "$BENCH_NOTES"
	return 0
}

# bench_commands: every timed command, exactly as run (bash -c), one bullet per row.
bench_commands() {
	awk -F'\t' '{ printf "- %s / %s: `%s`\n", $1, $2, $6 }' "$BENCH_ROWS"
}

# bench_record FILE CMDLINE [EXTRA_LINE...]: append a markdown section with the exact
# command line, date, machine, table, notes and per-row commands. Creates FILE with a
# header if it does not exist yet.
bench_record() {
	local file=$1 cmdline=$2 extra
	shift 2
	if [[ ! -e $file ]]; then
		cat >"$file" <<-'EOF'
			# silo benchmark results

			Measured figures only, appended by the scripts in `bench/` (see `bench/README.md`).
			Each section gives the exact command line, the date, the machine and the table;
			silo and its peers ran side by side in the same run on the same data. Figures are
			never edited by hand and never asserted by tests.
		EOF
	fi
	{
		printf '\n## %s — %s\n\n' "$cmdline" "$(date -u '+%Y-%m-%d %H:%M UTC')"
		printf -- '- Command: `%s`\n' "$cmdline"
		printf -- '- Date: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
		printf -- '- Machine: %s\n' "$(bench_machine)"
		for extra in "$@"; do printf -- '- %s\n' "$extra"; done
		printf '\n'
		bench_table
		if [[ -s $BENCH_NOTES ]]; then
			printf '\nNotes:\n\n'
			bench_notes
		fi
		printf '\n<details><summary>Timed commands (each run with <code>bash -c</code> under <code>/usr/bin/time -f %%e %%M</code>)</summary>\n\n'
		bench_commands
		printf '\n</details>\n'
	} >>"$file"
	bench_say "recorded in $file"
}
