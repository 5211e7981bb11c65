#!/usr/bin/env bash
# Side-by-side PromQL benchmark: Prometheus 2.42 and annals-promql over the same fleet data.
#
#   scripts/bench-promql.sh [--hosts=40] [--runs=7] [--workdir=DIR]
#
# 1. Generates the fleet (../shared/tools/fleet-om.py: HOSTS copies of the node_exporter
#    scrapes, 507 series x 900 scrapes each; 40 hosts = 20,280 series, 18.25 M samples) as
#    OpenMetrics, once per work directory.
# 2. Imports it into Prometheus blocks (`promtool tsdb create-blocks-from openmetrics`) and
#    into annals blocks (`annals import openmetrics`).
# 3. Starts Prometheus on its blocks and `annals bench query` on annals's (both keep their
#    database open, as a server does), runs every query once to warm both up, then RUNS times
#    alternating which engine goes first, and prints medians and ratios.
#
# Timing: each engine's own evaluation timer, so that neither pays for the other's transport:
# Prometheus's `execTotalTime` from `stats=all` (queue + prepare + evaluation + sort, without
# JSON encoding) against annals-promql's `Stats::total` (parse + prepare + evaluation + sort).
# The HTTP round trip of Prometheus is printed too. Memory: peak RSS (VmHWM) of each process
# over the whole run, and Prometheus's RSS before the first query.
#
# Environment: ANNALS_BIN (default: target/release/annals, built if missing), PROMETHEUS,
# PROMTOOL (default: on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

hosts=40
runs=7
workdir=/tmp/annals-bench-promql
for arg in "$@"; do
    case "$arg" in
        --hosts=*) hosts=${arg#*=} ;;
        --runs=*) runs=${arg#*=} ;;
        --workdir=*) workdir=${arg#*=} ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

prometheus=${PROMETHEUS:-$(command -v prometheus)}
promtool=${PROMTOOL:-$(command -v promtool)}
annals=${ANNALS_BIN:-target/release/annals}
if [[ -z ${ANNALS_BIN:-} ]]; then
    cargo build --release -q -p annals-cli
fi
shared=$(cd ../shared && pwd)
mkdir -p "$workdir"
om="$workdir/fleet-$hosts.om"
if [[ ! -s $om ]]; then
    echo "generating $om ($hosts hosts)" >&2
    python3 "$shared/tools/fleet-om.py" "$shared/data/node-exporter-15s.om.gz" "$hosts" > "$om.tmp"
    mv "$om.tmp" "$om"
fi
prom_data="$workdir/prometheus-$hosts"
annals_data="$workdir/annals-$hosts"
if [[ ! -d $prom_data ]]; then
    echo "importing into Prometheus blocks" >&2
    "$promtool" tsdb create-blocks-from openmetrics "$om" "$prom_data.tmp" > /dev/null
    mv "$prom_data.tmp" "$prom_data"
fi
if [[ ! -d $annals_data ]]; then
    echo "importing into annals blocks" >&2
    "$annals" import openmetrics -q "$om" "$annals_data.tmp"
    mv "$annals_data.tmp" "$annals_data"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'global:\n  scrape_interval: 1h\n' > "$workdir/prometheus.yml"
"$prometheus" --config.file="$workdir/prometheus.yml" --storage.tsdb.path="$prom_data" \
    --web.listen-address="127.0.0.1:$port" --storage.tsdb.retention.time=100y \
    --log.level=warn > "$workdir/prometheus.log" 2>&1 &
prom_pid=$!
trap 'kill $prom_pid 2>/dev/null || true; wait $prom_pid 2>/dev/null || true' EXIT

python3 - "$annals" "$annals_data" "$port" "$prom_pid" "$runs" <<'EOF'
import json, statistics, subprocess, sys, time, urllib.error, urllib.parse, urllib.request

annals, data, port, prom_pid, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
S, E = 1763856000000, 1763869485000   # first and last scrape, ms
queries = [
    ("instant selector, one series", "instant", E, 'node_load1{instance="host-0007:9100"}'),
    ("sum(rate[4h]), instant", "instant", E, 'sum(rate(node_cpu_seconds_total[4h]))'),
    ("sum by instance (rate[5m]), range 60 s", "range", (S, E, 60000), 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))'),
    ("topk(5, rate[5m]), range 60 s", "range", (S, E, 60000), 'topk(5, rate(node_network_receive_bytes_total{device!="lo"}[5m]))'),
    ("count by (__name__) ({job}), instant", "instant", E, 'count by (__name__) ({job="node"})'),
    ("count_over_time({job}[1d]), instant (error in both)", "instant", E, 'count_over_time({job="node"}[1d])'),
    ("last_over_time({job}[1d]), instant (full scan)", "instant", E, 'last_over_time({job="node"}[1d])'),
]

def wait_ready():
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5).status == 200:
                return
        except Exception:
            time.sleep(0.2)
    raise SystemExit("prometheus did not become ready")

def cpu_ns(pid):
    # Time on CPU of every thread of Prometheus (schedstat, nanoseconds), its garbage
    # collection included; it is otherwise idle.
    import os
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except (OSError, ValueError):
            pass
    return total

def rss_kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0

def prom(kind, t, q):
    if kind == "instant":
        params, path = {"query": q, "time": t / 1000, "stats": "all"}, "/api/v1/query"
    else:
        params, path = {"query": q, "start": t[0] / 1000, "end": t[1] / 1000, "step": t[2] / 1000, "stats": "all"}, "/api/v1/query_range"
    c0 = cpu_ns(prom_pid)
    t0 = time.perf_counter()
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", urllib.parse.urlencode(params).encode(), timeout=600).read()
    except urllib.error.HTTPError as e:
        body = e.read()
    wall = (time.perf_counter() - t0) * 1000
    cpu = (cpu_ns(prom_pid) - c0) / 1e6
    r = json.loads(body)
    if r["status"] != "success":
        return {"engine_ms": None, "wall_ms": wall, "cpu_ms": cpu, "error": r["error"]}
    return {"engine_ms": r["data"]["stats"]["timings"]["execTotalTime"] * 1000, "wall_ms": wall, "cpu_ms": cpu}

wait_ready()
prom_rss_start = rss_kib(prom_pid, "VmRSS")
ann = subprocess.Popen([annals, "bench", "query", data], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
assert json.loads(ann.stdout.readline()).get("ready")

def annals_q(kind, t, q):
    line = f"instant\t{t}\t{q}\n" if kind == "instant" else f"range\t{t[0]}\t{t[1]}\t{t[2]}\t{q}\n"
    t0 = time.perf_counter()
    ann.stdin.write(line); ann.stdin.flush()
    r = json.loads(ann.stdout.readline())
    wall = (time.perf_counter() - t0) * 1000
    # getrusage in the process: it counts the worker threads that have exited.
    cpu = r["cpu_us"] / 1000
    if "error" in r:
        return {"engine_ms": r["total_us"] / 1000, "wall_ms": wall, "cpu_ms": cpu, "error": r["error"]}
    return {"engine_ms": r["total_us"] / 1000, "wall_ms": wall, "cpu_ms": cpu}

results = {name: {"prom": [], "annals": []} for name, *_ in queries}
for run in range(runs + 1):   # run 0 warms both up and is not counted
    for name, kind, t, q in queries:
        order = [("prom", prom), ("annals", annals_q)]
        if run % 2:
            order.reverse()
        for who, fn in order:
            r = fn(kind, t, q)
            if run:
                results[name][who].append(r)

ann.stdin.close()
ann_rss = json.loads(ann.stdout.read().strip().splitlines()[-1])["max_rss_kib"]
ann.wait()
prom_rss = rss_kib(prom_pid, "VmHWM")

def med(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")

print(f"\n{runs} runs, medians. Time: Prometheus execTotalTime vs annals-promql Stats::total; "
      "CPU: all threads of each process while it answered\n")
print("| query | Prometheus time | annals time | **time ratio** | Prometheus CPU | annals CPU | CPU ratio | Prometheus HTTP round trip |")
print("|---|---|---|---|---|---|---|---|")
for name, *_ in queries:
    p, a = results[name]["prom"], results[name]["annals"]
    pe = med(p, "engine_ms") if p[0]["engine_ms"] is not None else med(p, "wall_ms")
    ae = med(a, "engine_ms")
    pc, ac = med(p, "cpu_ms"), med(a, "cpu_ms")
    note = " (error)" if "error" in p[0] else ""
    print(f"| {name} | {pe:.2f} ms{note} | {ae:.2f} ms | **{ae / pe:.2f}** | {pc:.1f} ms | {ac:.1f} ms | {ac / pc:.2f} | {med(p, 'wall_ms'):.2f} ms |")
print(f"\npeak RSS: Prometheus {prom_rss / 1024:.1f} MiB ({prom_rss_start / 1024:.1f} MiB before the first query), "
      f"annals bench query {ann_rss / 1024:.1f} MiB; annals / Prometheus {ann_rss / prom_rss:.2f}")
errors = {name: (results[name]["prom"][0].get("error"), results[name]["annals"][0].get("error")) for name, *_ in queries}
for name, (pe, ae) in errors.items():
    if pe or ae:
        print(f"{name}: Prometheus error {pe!r}; annals error {ae!r}")
EOF
