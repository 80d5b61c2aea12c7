#!/usr/bin/env bash
# perf/harness/ringsip-router.sh -- ringsip as ROUTER_CMD of ../shared/bench/run-sip-bench.sh
#
#   ROUTER_CMD="$PWD/perf/harness/ringsip-router.sh" ROUTER_NAME=ringsip \
#       ../shared/bench/run-sip-bench.sh stateless 8000
#
# Writes a config equal to config/examples/stateless-lb.toml (ROUTER_MODE=stateless, the
# default) or config/examples/stateful-lb.toml (ROUTER_MODE=stateful) except for the addresses
# the harness hands over (ROUTER_LISTEN, ROUTER_BACKENDS), and runs ringsip in the foreground
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
case "${ROUTER_MODE:-stateless}" in
    stateful) example="$root/config/examples/stateful-lb.toml" ;;
    *) example="$root/config/examples/stateless-lb.toml" ;;
esac
cfg="$out/ringsip.toml"
# the example with this run's addresses; no control socket, no metrics endpoint
sed -e "s|^listen = .*|listen = [\"udp:$listen\"]|" \
    -e "s|^destinations = .*|destinations = [${dests%, }]|" \
    -e '/^control_socket = /d' -e '/^metrics = /d' "$example" >"$cfg"
"$bin" check "$cfg" >&2
exec "$bin" --config "$cfg" --shards "$workers"
