#!/usr/bin/env bash
# Remote-write ingest under concurrent remote-read and PromQL range queries, annals serve side by side
# with prometheus --web.enable-remote-write-receiver, in one run on loopback.
#
#   scripts/bench-server.sh [--senders=4] [--readers=2] [--queriers=READERS] [--seconds=30] [--runs=1]
#
# Each server gets the same load (crates/annals-server/examples/load.rs): SENDERS concurrent
# remote-write senders of Prometheus-shaped 2,000-sample requests over 10,000 series, plus
# READERS concurrent remote-read queries (5 minutes of 100 series) and QUERIERS concurrent PromQL
# query_range calls over the same 5 minutes at a 15 s step (`rate` of 100 series, or their `sum by
# (job)`). Reported: samples/s acknowledged, p50/p99 write, read and query latency, queries
# answered, peak RSS (VmHWM) and CPU seconds of the
# server; then every acknowledged sample is read back, and again after SIGKILL and restart.
set -euo pipefail
cd "$(dirname "$0")/.."

senders=4 readers=2 queriers= seconds=30 runs=1
for a in "$@"; do
    case "$a" in
        --senders=*) senders=${a#*=} ;;
        --readers=*) readers=${a#*=} ;;
        --queriers=*) queriers=${a#*=} ;;
        --seconds=*) seconds=${a#*=} ;;
        --runs=*) runs=${a#*=} ;;
        *) echo "unknown argument $a" >&2; exit 2 ;;
    esac
done

queriers=${queriers:-$readers}
cargo build --release -q -p annals-cli -p annals-server --example load
annals=target/release/annals
load=target/release/examples/load
prometheus=${PROMETHEUS:-prometheus}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 600); do curl -fs "http://127.0.0.1:$1/-/ready" >/dev/null && return 0; sleep 0.1; done; echo "server on :$1 not ready" >&2; return 1; }
cpu_seconds() { awk '{ printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$1/stat"; }
hwm_mib() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

start_server() { # name dir port; sets $pid
    case "$1" in
        annals) "$annals" serve --listen="127.0.0.1:$3" --log.level=warn "$2" >/dev/null 2>>"$work/$1.log" & ;;
        prometheus) "$prometheus" --storage.tsdb.path="$2" --web.listen-address="127.0.0.1:$3" \
                --config.file="$work/prometheus.yml" --web.enable-remote-write-receiver \
                --storage.tsdb.retention.time=100y --log.level=warn >/dev/null 2>>"$work/$1.log" & ;;
    esac
    pid=$!
    pids+=("$pid")
}

echo "scrape_configs: []" > "$work/prometheus.yml"
results="$work/results"
: > "$results"
for run in $(seq "$runs"); do
    for name in annals prometheus; do
        dir="$work/$name-data-$run"
        port=$(free_port)
        start_server "$name" "$dir" "$port"
        wait_ready "$port"
        out=$("$load" run --addr="127.0.0.1:$port" --senders="$senders" --readers="$readers" --queriers="$queriers" --seconds="$seconds" --acked="$work/acked-$name")
        cpu=$(cpu_seconds "$pid"); rss=$(hwm_mib "$pid")
        verify=$("$load" verify --addr="127.0.0.1:$port" --acked="$work/acked-$name" | tr '\n' ' ')
        kill -9 "$pid"; wait "$pid" 2>/dev/null || true
        start_server "$name" "$dir" "$port"
        wait_ready "$port"
        after=$("$load" verify --addr="127.0.0.1:$port" --acked="$work/acked-$name" | tr '\n' ' ')
        kill -9 "$pid"; wait "$pid" 2>/dev/null || true
        get() { echo "$out" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
        printf '%s run=%s samples_per_second=%s write_p50_ms=%s write_p99_ms=%s read_p50_ms=%s read_p99_ms=%s read_queries=%s query_p50_ms=%s query_p99_ms=%s queries=%s query_failures=%s query_empty=%s write_failures=%s cpu_s=%s rss_mib=%s verify=[%s] after_sigkill=[%s]\n' \
            "$name" "$run" "$(get samples_per_second)" "$(get write_p50_ms)" "$(get write_p99_ms)" \
            "$(get read_p50_ms)" "$(get read_p99_ms)" "$(get read_queries)" \
            "$(get query_p50_ms)" "$(get query_p99_ms)" "$(get query_count)" "$(get query_failures)" "$(get query_empty)" "$(get write_failures)" "$cpu" "$rss" "$verify" "$after" | tee -a "$results"
    done
done

# Medians over runs, and the ratios.
python3 - "$results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name = line.split()[0]
    kv = dict(re.findall(r'(\w+)=([^\s\[]+)', line))
    rows.setdefault(name, []).append(kv)
def med(name, key):
    return statistics.median(float(r[key]) for r in rows[name])
keys = [("samples_per_second", "samples/s"), ("write_p50_ms", "write p50 ms"), ("write_p99_ms", "write p99 ms"),
        ("read_p50_ms", "read p50 ms"), ("read_p99_ms", "read p99 ms"), ("read_queries", "remote reads"),
        ("query_p50_ms", "query_range p50 ms"), ("query_p99_ms", "query_range p99 ms"), ("queries", "query_range calls"),
        ("cpu_s", "CPU s"), ("rss_mib", "peak RSS MiB")]
print("| server | " + " | ".join(k[1] for k in keys) + " |")
print("|---" * (len(keys) + 1) + "|")
for name in ("prometheus", "annals"):
    print(f"| {name} | " + " | ".join(f"{med(name, k):,.2f}" if 'ms' in k else f"{med(name, k):,.1f}" if k not in ('samples_per_second', 'read_queries', 'queries') else f"{med(name, k):,.0f}" for k, _ in keys) + " |")
print("| annals / prometheus | " + " | ".join(f"{med('annals', k) / med('prometheus', k):.2f}x" for k, _ in keys) + " |")
PY
