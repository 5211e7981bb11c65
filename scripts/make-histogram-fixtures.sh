#!/usr/bin/env bash
# Regenerates the Prometheus 2.42 fixtures with native histograms and out-of-order samples:
#
#   scripts/make-histogram-fixtures.sh [--keep]
#
# (tests/fixtures/README.md describes the result.)
#
# tests/fixtures/prometheus-2.42-histograms/: a data directory written by
#   `prometheus --enable-feature=native-histograms --web.enable-remote-write-receiver` that
#   received 4 h of integer and float, counter and gauge native histograms (and one float
#   series) through remote write: one compacted block, chunks_head/ and the WAL.
# tests/fixtures/prometheus-2.42-ooo/: a data directory written with
#   `storage.tsdb.out_of_order_time_window: 1h` that received in-order and late float
#   samples: blocks (one from out-of-order data merged with an in-order one), wbl/ with
#   samples and m-map markers, out-of-order chunks in chunks_head/, and the WAL.
#
# The request bodies come from `cargo run -p annals-prompb --example fixture_requests`
# (deterministic); its `steps` file says when to wait for Prometheus's compactions. Each
# server listens on 127.0.0.1 on a free port, is stopped with SIGTERM (a clean shutdown), and
# the directory is copied without `lock` and `queries.active`. Needs prometheus 2.42, curl,
# python3 (to pick a free port) and cargo.
set -euo pipefail

keep=0
for arg in "$@"; do
	case "$arg" in
	--keep) keep=1 ;;
	*) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
for tool in prometheus curl python3 cargo; do
	command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
prometheus --version 2>&1 | head -1 | grep -q 'version 2\.42\.' ||
	{ echo "prometheus 2.42 is required, found: $(prometheus --version 2>&1 | head -1)" >&2; exit 1; }

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/histogram-fixtures.XXXXXX")"
server_pid=""
cleanup() {
	if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	if [[ "$keep" == 1 ]]; then echo "work files kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server DATA CONFIG PORT LOG: starts prometheus and waits until it is ready.
start_server() {
	local data="$1" config="$2" port="$3" log="$4"
	prometheus \
		--storage.tsdb.path="$data" \
		--config.file="$config" \
		--web.listen-address="127.0.0.1:$port" \
		--web.enable-remote-write-receiver \
		--enable-feature=native-histograms \
		--storage.tsdb.retention.time=100y \
		>"$log" 2>&1 &
	server_pid=$!
	for _ in $(seq 600); do
		curl -sf -o /dev/null "http://127.0.0.1:$port/-/ready" && return 0
		kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; echo "prometheus exited" >&2; exit 1; }
		sleep 0.1
	done
	cat "$log" >&2
	echo "prometheus did not become ready" >&2
	exit 1
}

stop_server() {
	kill -TERM "$server_pid"
	wait "$server_pid" || true
	server_pid=""
}

blocks_in() {
	find "$1" -mindepth 1 -maxdepth 1 -type d -name '01*' ! -name '*.tmp*' | wc -l
}

# make KIND CONFIG_BODY: generates the requests, runs a server through the steps, and copies
# the directory into tests/fixtures/prometheus-2.42-KIND.
make() {
	local kind="$1" config_body="$2"
	local dir="$work/$kind" port
	mkdir -p "$dir"
	cargo run -q --release -p annals-prompb --example fixture_requests -- "$kind" "$dir/requests"
	printf '%s\n' "$config_body" >"$dir/prometheus.yml"
	port="$(free_port)"
	start_server "$dir/data" "$dir/prometheus.yml" "$port" "$dir/prometheus.log"
	while read -r cmd arg; do
		case "$cmd" in
		post)
			code="$(curl -s -o "$dir/response" -w '%{http_code}' \
				-H 'Content-Encoding: snappy' \
				-H 'Content-Type: application/x-protobuf' \
				-H 'X-Prometheus-Remote-Write-Version: 0.1.0' \
				--data-binary @"$dir/requests/$arg" \
				"http://127.0.0.1:$port/api/v1/write")"
			[[ "$code" == 204 ]] || { echo "$arg: HTTP $code: $(cat "$dir/response")" >&2; exit 1; }
			;;
		wait-blocks)
			for _ in $(seq 600); do
				(($(blocks_in "$dir/data") >= arg)) && break
				sleep 0.1
			done
			(($(blocks_in "$dir/data") >= arg)) || { echo "no block $arg after 60 s" >&2; exit 1; }
			;;
		sleep) sleep "$arg" ;;
		*) echo "unknown step $cmd" >&2; exit 1 ;;
		esac
	done <"$dir/requests/steps"
	stop_server
	# Expected: the shutdown, and out-of-order blocks overlapping in-order ones until they merge.
	if grep -E 'level=(error|warn)' "$dir/prometheus.log" |
		grep -v -e 'Received SIGTERM' -e 'Overlapping blocks found during reloadBlocks' >&2; then
		echo "prometheus logged unexpected errors or warnings (above)" >&2
		exit 1
	fi
	local out="$repo/tests/fixtures/prometheus-2.42-$kind"
	rm -rf "$out.new"
	mkdir -p "$out.new"
	(cd "$dir/data" && find . -type f ! -name lock ! -name queries.active) | while read -r f; do
		mkdir -p "$(dirname "$out.new/$f")"
		cp "$dir/data/$f" "$out.new/$f"
	done
	rm -rf "$out"
	mv "$out.new" "$out"
	echo "$kind: $(du -sh "$out" | cut -f1) in $out" >&2
}

make histograms 'global:
  scrape_interval: 1h
scrape_configs: []'

make ooo 'global:
  scrape_interval: 1h
scrape_configs: []
storage:
  tsdb:
    out_of_order_time_window: 1h'
