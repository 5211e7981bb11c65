#!/usr/bin/env bash
# Compares annals with Prometheus 2.42 on promtool's write benchmark and on reopening the
# directory it leaves (WAL replay).
#
#   scripts/compare-prometheus.sh [--metrics=N] [--scrapes=N] [--runs=N] [--keep] FILE
#
# write:  `promtool tsdb bench write` and `annals bench write` (release build) on the same
#         label file and flags, alternating, --runs times each, under `/usr/bin/time -v`.
# replay: `prometheus` started on a copy of promtool's bench data (empty scrape config,
#         loopback listener), timed from start until /-/ready answers, then stopped; against
#         `annals bench replay` on a copy of annals's bench data, with its memory snapshot
#         and without it (as after a crash: chunks_head/ and the WAL).
# Prints the median samples/s, CPU seconds (user+sys) and peak RSS of each, and the ratios
# annals/Prometheus. FILE holds one JSON object of labels per line; `.gz` is decompressed
# first (promtool reads plain files). Work files go to a temporary directory, removed at the
# end unless --keep. ANNALS_BIN=path uses that annals binary instead of building one.
set -euo pipefail

metrics=10000
scrapes=3000
runs=3
keep=0
file=""
ready_timeout=600 # seconds Prometheus may take to become ready

usage() {
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

for arg in "$@"; do
	case "$arg" in
	--metrics=*) metrics="${arg#*=}" ;;
	--scrapes=*) scrapes="${arg#*=}" ;;
	--runs=*) runs="${arg#*=}" ;;
	--keep) keep=1 ;;
	-h | --help) usage ;;
	-*) echo "unknown flag $arg" >&2; usage ;;
	*) [[ -z "$file" ]] || usage; file="$arg" ;;
	esac
done
[[ -n "$file" && -f "$file" ]] || { echo "input file missing: '$file'" >&2; usage; }
for n in "$metrics" "$scrapes" "$runs"; do
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "not a positive number: $n" >&2; exit 2; }
done
for tool in promtool prometheus curl /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/compare-prometheus.XXXXXX")"
server_pid=""
cleanup() {
	if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	if [[ "$keep" == 1 ]]; then
		echo "work files kept in $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n "${ANNALS_BIN:-}" ]]; then
	annals="$ANNALS_BIN"
else
	echo "building annals (release)..." >&2
	cargo build --quiet --release -p annals-cli --manifest-path "$repo/Cargo.toml"
	annals="$repo/target/release/annals"
fi

input="$work/labels.jsonl"
if [[ "$file" == *.gz ]]; then
	gzip -dc "$file" >"$input"
else
	cp "$file" "$input"
fi

# time_field FILE LABEL: a field of /usr/bin/time -v's report.
time_field() { sed -n "s/^[[:space:]]*$2: //p" "$1"; }
cpu_secs() { echo "$(time_field "$1" 'User time (seconds)') $(time_field "$1" 'System time (seconds)')" | awk '{print $1 + $2}'; }
rss_mib() { time_field "$1" 'Maximum resident set size (kbytes)' | awk '{printf "%.1f", $1 / 1024}'; }
printed() { sed -n "s|^ > $2: ||p" "$1" | head -n1; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "n/a"; else printf "%.2f", a / b}'; }
now() { date +%s.%N; }

flags=(--metrics="$metrics" --scrapes="$scrapes")
: >"$work/pt.write" && : >"$work/an.write"
for i in $(seq "$runs"); do
	echo "write run $i/$runs: promtool" >&2
	(cd "$work" && /usr/bin/time -v -o "$work/pt-$i.time" \
		promtool tsdb bench write "${flags[@]}" --out="$work/pt-bench" "$input" \
		>"$work/pt-$i.out" 2>"$work/pt-$i.log")
	echo "$(printed "$work/pt-$i.out" 'samples/sec') $(cpu_secs "$work/pt-$i.time") $(rss_mib "$work/pt-$i.time") $(printed "$work/pt-$i.out" 'total samples')" >>"$work/pt.write"
	echo "write run $i/$runs: annals" >&2
	/usr/bin/time -v -o "$work/an-$i.time" \
		"$annals" bench write "${flags[@]}" --out="$work/an-bench" "$input" >"$work/an-$i.out"
	echo "$(printed "$work/an-$i.out" 'samples/sec') $(cpu_secs "$work/an-$i.time") $(rss_mib "$work/an-$i.time") $(printed "$work/an-$i.out" 'total samples')" >>"$work/an.write"
done
pt_total=$(awk 'NR == 1 {print $4}' "$work/pt.write")
an_total=$(awk 'NR == 1 {print $4}' "$work/an.write")
[[ "$pt_total" == "$an_total" ]] || echo "WARNING: total samples differ: promtool $pt_total, annals $an_total" >&2

col() { awk -v c="$2" '{print $c}' "$1" | median; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}
printf 'global:\n  scrape_interval: 1h\nscrape_configs: []\n' >"$work/prometheus.yml"

: >"$work/pt.replay" && : >"$work/an.replay" && : >"$work/anw.replay"
for i in $(seq "$runs"); do
	echo "replay run $i/$runs: prometheus" >&2
	rm -rf "$work/pt-copy" && cp -a "$work/pt-bench/storage" "$work/pt-copy"
	port=$(free_port)
	start=$(now)
	/usr/bin/time -v -o "$work/prom-$i.time" prometheus \
		--storage.tsdb.path="$work/pt-copy" --config.file="$work/prometheus.yml" \
		--web.listen-address="127.0.0.1:$port" --storage.tsdb.retention.time=100y \
		>"$work/prom-$i.log" 2>&1 &
	server_pid=$!
	ready=""
	# Integer seconds: awk's default output format (%.6g) would print 1.79658e+09.
	deadline=$(($(date +%s) + ready_timeout))
	while kill -0 "$server_pid" 2>/dev/null; do
		if curl -sf --max-time 1 "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
			ready=$(now)
			break
		fi
		if (($(date +%s) > deadline)); then break; fi
		sleep 0.02
	done
	# /usr/bin/time forwards nothing: stop its child (prometheus) so time reports its usage.
	child=$(pgrep -P "$server_pid" || true)
	[[ -n "$child" ]] && kill -TERM $child 2>/dev/null || true
	for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$server_pid" 2>/dev/null && { [[ -n "$child" ]] && kill -KILL $child 2>/dev/null; kill -KILL "$server_pid" 2>/dev/null; }
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
	if [[ -z "$ready" ]]; then
		echo "prometheus did not become ready within ${ready_timeout}s; log:" >&2
		tail -n 20 "$work/prom-$i.log" >&2
		exit 1
	fi
	secs=$(awk -v a="$start" -v b="$ready" 'BEGIN {printf "%.3f", b - a}')
	echo "$secs $(awk -v n="$pt_total" -v s="$secs" 'BEGIN {printf "%.0f", n / s}') $(cpu_secs "$work/prom-$i.time") $(rss_mib "$work/prom-$i.time")" >>"$work/pt.replay"

	echo "replay run $i/$runs: annals" >&2
	rm -rf "$work/an-copy" && cp -a "$work/an-bench/storage" "$work/an-copy"
	/usr/bin/time -v -o "$work/anr-$i.time" "$annals" bench replay "$work/an-copy" >"$work/anr-$i.out"
	echo "$(printed "$work/anr-$i.out" 'open seconds') $(printed "$work/anr-$i.out" 'samples/sec') $(cpu_secs "$work/anr-$i.time") $(rss_mib "$work/anr-$i.time")" >>"$work/an.replay"

	# As after a crash: no memory snapshot, so the head comes from chunks_head/ and the WAL
	# (what Prometheus, started without memory-snapshot-on-shutdown, does above).
	echo "replay run $i/$runs: annals without its memory snapshot" >&2
	rm -rf "$work/an-copy" && cp -a "$work/an-bench/storage" "$work/an-copy"
	rm -rf "$work/an-copy"/chunk_snapshot.*
	/usr/bin/time -v -o "$work/anw-$i.time" "$annals" bench replay "$work/an-copy" >"$work/anw-$i.out"
	echo "$(printed "$work/anw-$i.out" 'open seconds') $(printed "$work/anw-$i.out" 'samples/sec') $(cpu_secs "$work/anw-$i.time") $(rss_mib "$work/anw-$i.time")" >>"$work/anw.replay"
done

echo
echo "write: promtool tsdb bench write vs annals bench write --metrics=$metrics --scrapes=$scrapes ($pt_total samples), median of $runs runs"
printf '%-22s %14s %10s %14s\n' "" "samples/s" "CPU s" "peak RSS MiB"
for t in pt an; do
	name=$([[ $t == pt ]] && echo "prometheus 2.42" || echo "annals")
	printf '%-22s %14.0f %10.2f %14.1f\n' "$name" "$(col "$work/$t.write" 1)" "$(col "$work/$t.write" 2)" "$(col "$work/$t.write" 3)"
done
printf '%-22s %14s %10s %14s\n' "annals/prometheus" \
	"$(ratio "$(col "$work/an.write" 1)" "$(col "$work/pt.write" 1)")" \
	"$(ratio "$(col "$work/an.write" 2)" "$(col "$work/pt.write" 2)")" \
	"$(ratio "$(col "$work/an.write" 3)" "$(col "$work/pt.write" 3)")"
echo
echo "replay: prometheus start until /-/ready vs annals bench replay (open), median of $runs runs"
printf '%-22s %10s %14s %10s %14s\n' "" "open s" "samples/s" "CPU s" "peak RSS MiB"
for t in pt an anw; do
	case $t in pt) name="prometheus 2.42" ;; an) name="annals" ;; *) name="annals, no snapshot" ;; esac
	printf '%-22s %10.3f %14.0f %10.2f %14.1f\n' "$name" "$(col "$work/$t.replay" 1)" "$(col "$work/$t.replay" 2)" "$(col "$work/$t.replay" 3)" "$(col "$work/$t.replay" 4)"
done
printf '%-22s %10s %14s %10s %14s\n' "annals/prometheus" \
	"$(ratio "$(col "$work/an.replay" 1)" "$(col "$work/pt.replay" 1)")" \
	"$(ratio "$(col "$work/an.replay" 2)" "$(col "$work/pt.replay" 2)")" \
	"$(ratio "$(col "$work/an.replay" 3)" "$(col "$work/pt.replay" 3)")" \
	"$(ratio "$(col "$work/an.replay" 4)" "$(col "$work/pt.replay" 4)")"
printf '%-22s %10s %14s %10s %14s\n' "no snapshot/prometheus" \
	"$(ratio "$(col "$work/anw.replay" 1)" "$(col "$work/pt.replay" 1)")" \
	"$(ratio "$(col "$work/anw.replay" 2)" "$(col "$work/pt.replay" 2)")" \
	"$(ratio "$(col "$work/anw.replay" 3)" "$(col "$work/pt.replay" 3)")" \
	"$(ratio "$(col "$work/anw.replay" 4)" "$(col "$work/pt.replay" 4)")"
