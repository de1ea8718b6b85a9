#!/usr/bin/env bash
# The main job, end to end on one machine: a 3-node ragnode cluster on
# 127.0.0.1 (no head node, no NFS), the sample documents indexed with the
# built-in embedder and vector store, then a search. Needs only Go.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/ragnode}
DATA=${DATA:-demo-data}
[ -x "$BIN" ] || go build -o "$BIN" .
rm -rf "$DATA"; mkdir -p "$DATA"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
common=(--bind 127.0.0.1 --timing fast --gpus 1 --task-gpus 0.25 --log-level warn)
"$BIN" start --data-dir "$DATA/n1" --name n1 --http-port 17070 --raft-port 17071 --serf-port 17072 "${common[@]}" 2>"$DATA/n1.log" & pids+=($!)
sleep 1
for i in 2 3; do
  "$BIN" start --data-dir "$DATA/n$i" --name "n$i" --http-port "17${i}70" --raft-port "17${i}71" --serf-port "17${i}72" \
    --join 127.0.0.1:17072 "${common[@]}" 2>"$DATA/n$i.log" & pids+=($!)
done
echo "== waiting for a healthy 3-voter cluster"
"$BIN" status --addr 127.0.0.1:17070 --wait-healthy --timeout 60s
"$BIN" members --addr 127.0.0.1:17070
echo; echo "== indexing examples/docs through node n2 (any node works)"
"$BIN" submit examples/docs --addr 127.0.0.1:17270 --partition demo --metadata source=examples --wait
echo; echo "== search: how does a leader get elected?"
"$BIN" search "how does a candidate become leader" --addr 127.0.0.1:17370 --top-k 3
echo; echo "== search: how many indexing workers fit on one GPU?"
"$BIN" search "how many workers share one graphics card" --addr 127.0.0.1:17070 --top-k 3
echo; echo "== status"
"$BIN" status --addr 127.0.0.1:17070
