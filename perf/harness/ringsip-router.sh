#!/usr/bin/env bash
# perf/harness/ringsip-router.sh -- ringsip as ROUTER_CMD of ../shared/bench/run-sip-bench.sh
#
#   ROUTER_CMD="$PWD/perf/harness/ringsip-router.sh" ROUTER_NAME=ringsip \
#       ../shared/bench/run-sip-bench.sh stateless 8000
#
# Writes a config equal to config/examples/stateless-lb.toml except for the addresses the
# harness hands over (ROUTER_LISTEN, ROUTER_BACKENDS) and runs ringsip in the foreground
# with ROUTER_WORKERS shards on the CPUs the harness pinned it to (taskset). The metrics
# endpoint and control socket are left out so runs never collide with a running ringsip.
# RINGSIP_BIN overrides the binary (default: target/release/ringsip, built if missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
listen=${ROUTER_LISTEN:-127.0.0.1:5060}
backends=${ROUTER_BACKENDS:-127.0.0.1:5080,127.0.0.1:5081}
workers=${ROUTER_WORKERS:-1}
out=${BENCH_OUTDIR:-$(mktemp -d)}
bin=${RINGSIP_BIN:-$root/target/release/ringsip}
if [ ! -x "$bin" ]; then
    (cd "$root" && cargo build --release --bin ringsip >&2)
fi
dests=""
IFS=',' read -ra list <<<"$backends"
for b in "${list[@]}"; do
    dests+="\"sip:$b\", "
done
cfg="$out/ringsip.toml"
cat >"$cfg" <<CFG
[server]
listen = ["udp:$listen"]

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = [${dests%, }]
probe = { method = "OPTIONS", interval = "2s", failure_threshold = 1, success_threshold = 1 }

[[route.request]]
name = "max-forwards"
if = "\$hdr(Max-Forwards) == 0"
do = 'reply 483 "Too Many Hops"'

[[route.request]]
name = "in-dialog"
if = "has_totag and \$rd != myself"
do = "forward"

[[route.request]]
name = "dispatch"
do = ['select 1 else reply 503 "No destination"', "forward"]
CFG
"$bin" check "$cfg" >&2
exec "$bin" --config "$cfg" --shards "$workers"
