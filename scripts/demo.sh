#!/usr/bin/env bash
# The main job, end to end on one machine: a 3-node ragnode cluster on
# 127.0.0.1 (no head node, no NFS), the sample documents indexed with the
# built-in embedder and vector store, then a search. Needs only Go.
#
# Overrides: BIN (the binary), DATA (where the nodes keep their data) and
# RAGNODE_DEMO_PORT_BASE (default 17070): node i listens on BASE+10*(i-1)
# for HTTP, +1 for Raft and +2 for Serf, so the demo uses BASE to BASE+22.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/ragnode}
DATA=${DATA:-demo-data}
BASE=${RAGNODE_DEMO_PORT_BASE:-17070}
if ! [[ "$BASE" =~ ^[0-9]+$ ]] || [ "$BASE" -lt 1024 ] || [ "$BASE" -gt 65500 ]; then
  echo "demo: RAGNODE_DEMO_PORT_BASE=$BASE: want a port from 1024 to 65500" >&2
  exit 1
fi
http() { echo $((BASE + 10 * ($1 - 1))); }
raft() { echo $((BASE + 10 * ($1 - 1) + 1)); }
serf() { echo $((BASE + 10 * ($1 - 1) + 2)); }
[ -x "$BIN" ] || go build -o "$BIN" .
rm -rf "$DATA"; mkdir -p "$DATA"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
common=(--bind 127.0.0.1 --timing fast --gpus 1 --task-gpus 0.25 --log-level warn)
for i in 1 2 3; do
  join=()
  [ "$i" = 1 ] || join=(--join "127.0.0.1:$(serf 1)")
  "$BIN" start --data-dir "$DATA/n$i" --name "n$i" --http-port "$(http "$i")" --raft-port "$(raft "$i")" --serf-port "$(serf "$i")" \
    "${join[@]}" "${common[@]}" 2>"$DATA/n$i.log" & pids+=($!)
  [ "$i" = 1 ] && sleep 1
done
logs() { for i in 1 2 3; do echo "== n$i ($DATA/n$i.log)" >&2; tail -n 3 "$DATA/n$i.log" >&2; done; }
sleep 1
for p in "${pids[@]}"; do
  # A node that cannot start exits at once, saying why in one line.
  kill -0 "$p" 2>/dev/null || { echo "demo: a node exited at start" >&2; logs; exit 1; }
done
echo "== waiting for a healthy 3-voter cluster (ports $BASE-$(serf 3))"
if ! "$BIN" status --addr "127.0.0.1:$(http 1)" --wait-healthy --min-tolerance 1 --timeout 60s; then
  logs
  exit 1
fi
"$BIN" members --addr "127.0.0.1:$(http 1)"
echo; echo "== indexing examples/docs through node n2 (any node works)"
"$BIN" submit examples/docs --addr "127.0.0.1:$(http 2)" --partition demo --metadata source=examples --wait
echo; echo "== search: how does a leader get elected?"
"$BIN" search "how does a candidate become leader" --addr "127.0.0.1:$(http 3)" --top-k 3
echo; echo "== search: how many indexing workers fit on one GPU?"
"$BIN" search "how many workers share one graphics card" --addr "127.0.0.1:$(http 1)" --top-k 3
echo; echo "== status"
"$BIN" status --addr "127.0.0.1:$(http 1)"
