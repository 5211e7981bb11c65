#!/usr/bin/env bash
# Side by side: `annals agent`, `prometheus --enable-feature=agent` (2.42) and `vmagent` scrape
# the same node-exporter-shaped targets at the same interval and remote-write to the same
# VictoriaMetrics, in alternating runs. Per run: CPU seconds, peak and average RSS, bytes
# written to disk, bytes sent, and samples received against samples scraped.
#
# usage: scripts/compare-agents.sh [--duration=600] [--runs=1] [--targets=20] [--interval=15s]
#            [--template=../shared/data/node-exporter-15s.om.gz] [--out=DIR]
#            [--agents="annals prometheus vmagent"]
# Agents: annals (`annals agent`), annals-agent (the agent-only binary: the same code without
# the CLI's PromQL engine and server, so less code is mapped), prometheus, vmagent.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=600 runs=1 targets=20 interval=15s template=../shared/data/node-exporter-15s.om.gz out="" agents="annals prometheus vmagent"
for a in "$@"; do
    case "$a" in
        --duration=*) duration=${a#*=} ;;
        --runs=*) runs=${a#*=} ;;
        --targets=*) targets=${a#*=} ;;
        --interval=*) interval=${a#*=} ;;
        --template=*) template=${a#*=} ;;
        --out=*) out=${a#*=} ;;
        --agents=*) agents=${a#*=} ;;
        *) echo "unknown argument $a" >&2; exit 2 ;;
    esac
done
for t in prometheus vmagent victoria-metrics; do
    command -v $t >/dev/null || { echo "$t is required (apt-get install prometheus victoria-metrics)" >&2; exit 1; }
done
out=${out:-$(mktemp -d /tmp/compare-agents.XXXXXX)}
mkdir -p "$out"
echo "results in $out"

# Two commands: with --example, cargo would build only the example, not the binaries.
cargo build --release -q -p annals-cli
cargo build --release -q -p annals-agent --example targets --bin annals-agent
annals=$PWD/target/release/annals
annals_agent=$PWD/target/release/annals-agent
targets_bin=$PWD/target/release/examples/targets

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

base=$(( 30000 + RANDOM % 20000 ))
tmpl_arg=""
[ -f "$template" ] && tmpl_arg="--template=$template"
"$targets_bin" --base-port=$base --targets=$targets $tmpl_arg > "$out/targets.log" 2>&1 &
pids+=($!)
vm_port=$(free_port)
"$(command -v victoria-metrics)" -storageDataPath="$out/vm" -httpListenAddr=127.0.0.1:$vm_port \
    -retentionPeriod=100y -search.latencyOffset=0s > "$out/vm.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -sf "127.0.0.1:$vm_port/health" >/dev/null && grep -q serving "$out/targets.log" && break
    sleep 0.2
done
series=$(sed -n 's/.* x \([0-9]*\) series.*/\1/p' "$out/targets.log")
echo "targets: $targets x $series series = $(( targets * series )) series, every $interval; receiver victoria-metrics :$vm_port"

target_list=$(for i in $(seq 0 $(( targets - 1 ))); do printf '"127.0.0.1:%d",' $(( base + i )); done)
target_list="[${target_list%,}]"

config() { # name
    cat <<EOF
global:
  scrape_interval: $interval
  external_labels: {agent: $1}
scrape_configs:
  - job_name: node
    static_configs: [{targets: $target_list}]
EOF
    if [ "$1" != vmagent ]; then
        cat <<EOF
remote_write:
  - url: http://127.0.0.1:$vm_port/api/v1/write
EOF
    fi
}

proc_stat() { # pid -> "cpu_seconds rss_kb hwm_kb write_bytes"
    local pid=$1 ticks
    ticks=$(getconf CLK_TCK)
    local cpu rss hwm wb
    cpu=$(awk -v t="$ticks" '{ sub(/.*\) /, ""); split($0, f, " "); printf "%.2f", (f[12] + f[13]) / t }' /proc/$pid/stat)
    rss=$(awk '/^VmRSS/ { print $2 }' /proc/$pid/status)
    hwm=$(awk '/^VmHWM/ { print $2 }' /proc/$pid/status)
    wb=$(awk '/^write_bytes/ { print $2 }' /proc/$pid/io)
    echo "$cpu $rss $hwm $wb"
}

metric_sum() { # port regex
    curl -s "127.0.0.1:$1/metrics" | grep -E "^($2)[{ ]" | awk '{ s += $NF } END { printf "%.0f", s }'
}

vm_query() { # promql -> scalar
    curl -s "127.0.0.1:$vm_port/api/v1/query" --data-urlencode "query=$1" --data-urlencode "time=$(date +%s)" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)'
}

run_one() { # name round
    local name=$1 round=$2 dir="$out/$1-$2" port
    mkdir -p "$dir"
    port=$(free_port)
    config "$name" > "$dir/config.yml"
    case "$name" in
        annals) "$annals" agent --config="$dir/config.yml" --data-dir="$dir/data" --listen=127.0.0.1:$port > "$dir/log" 2>&1 & ;;
        annals-agent) "$annals_agent" --config="$dir/config.yml" --data-dir="$dir/data" --listen=127.0.0.1:$port > "$dir/log" 2>&1 & ;;
        prometheus) prometheus --enable-feature=agent --config.file="$dir/config.yml" --storage.agent.path="$dir/data" \
                --web.listen-address=127.0.0.1:$port > "$dir/log" 2>&1 & ;;
        vmagent) vmagent -promscrape.config="$dir/config.yml" -remoteWrite.url=http://127.0.0.1:$vm_port/api/v1/write \
                -remoteWrite.tmpDataPath="$dir/data" -httpListenAddr=127.0.0.1:$port > "$dir/log" 2>&1 & ;;
    esac
    local pid=$! start rss_sum=0 n=0 s
    pids+=($pid)
    start=$(date +%s)
    while [ $(( $(date +%s) - start )) -lt "$duration" ]; do
        sleep 5
        s=($(proc_stat $pid))
        rss_sum=$(( rss_sum + s[1] )); n=$(( n + 1 ))
    done
    s=($(proc_stat $pid))
    local sent
    case "$name" in
        vmagent) sent=$(metric_sum $port 'vmagent_remotewrite_bytes_sent_total') ;;
        *) sent=$(metric_sum $port 'prometheus_remote_storage_bytes_total') ;;
    esac
    kill -TERM $pid; wait $pid 2>/dev/null || true
    local dur=$(( $(date +%s) - start ))
    sleep 2
    curl -s "127.0.0.1:$vm_port/internal/force_flush" >/dev/null || true
    local range="$(( dur + 120 ))s"
    local got want
    got=$(vm_query "sum(count_over_time({agent=\"$name\"}[$range]))")
    want=$(vm_query "sum(sum_over_time(scrape_samples_post_metric_relabeling{agent=\"$name\"}[$range])) + 5 * sum(count_over_time(up{agent=\"$name\"}[$range]))")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$dur" "${s[0]}" "${s[2]}" "$(( rss_sum / (n > 0 ? n : 1) ))" "${s[3]}" "$sent" "$got/$want" | tee -a "$out/results.tsv"
}

printf 'agent\tround\tseconds\tcpu_s\tpeak_rss_kb\tavg_rss_kb\tdisk_write_bytes\tbytes_sent\treceived/scraped\n' | tee "$out/results.tsv"
for r in $(seq 1 "$runs"); do
    for a in $agents; do
        run_one $a $r
    done
done

python3 - "$out/results.tsv" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault(r["agent"], []).append(r)
med = lambda a, k: statistics.median(float(r[k]) for r in by[a])
print("\n| agent | CPU s | peak RSS | avg RSS | written to disk | sent | received / scraped |")
print("|---|---|---|---|---|---|---|")
for a in ["annals", "annals-agent", "prometheus", "vmagent"]:
    if a not in by: continue
    recv = ", ".join(r["received/scraped"] for r in by[a])
    print(f"| {a} | {med(a,'cpu_s'):.1f} | {med(a,'peak_rss_kb')/1024:.1f} MiB | {med(a,'avg_rss_kb')/1024:.1f} MiB | {med(a,'disk_write_bytes')/2**20:.1f} MiB | {med(a,'bytes_sent')/2**20:.1f} MiB | {recv} |")
for a in ["annals", "annals-agent"]:
    if a not in by: continue
    for b in ["prometheus", "vmagent"]:
        if b in by:
            print(f"| {a} / {b} | {med(a,'cpu_s')/med(b,'cpu_s'):.2f} | {med(a,'peak_rss_kb')/med(b,'peak_rss_kb'):.2f} | {med(a,'avg_rss_kb')/med(b,'avg_rss_kb'):.2f} | {med(a,'disk_write_bytes')/max(med(b,'disk_write_bytes'),1):.2f} | {med(a,'bytes_sent')/max(med(b,'bytes_sent'),1):.2f} | |")
EOF
