#!/usr/bin/env bash
# Node RSS while a PDF bomb is parsed: the same one-node cluster with the
# parser in a contained child (the default) and with --parser-inprocess.
# The bomb is a one-page PDF whose content stream inflates to INFLATE
# bytes of text operators (default 1 GiB, from a few MB of file). Prints,
# per mode: the task's end and error, the node's peak RSS, the children's
# peak RSS and how long the task took. Linux (reads /proc). Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/ragnode}
INFLATE=${INFLATE:-1073741824}
LIMIT=${LIMIT:-2GiB}
TIMEOUT=${TIMEOUT:-180s}
WORK=${WORK:-$(mktemp -d)}
[ -x "$BIN" ] || go build -o "$BIN" .
mkdir -p "$WORK"

python3 - "$WORK/bomb.pdf" "$INFLATE" <<'EOF'
import sys, zlib
path, size = sys.argv[1], int(sys.argv[2])
line = b"BT /F1 12 Tf 72 712 Td (A) Tj ET\n"
block = line * (1 << 16)
z = zlib.compressobj(9)
parts, n = [], 0
while n < size:
    parts.append(z.compress(block)); n += len(block)
parts.append(z.flush())
stream = b"".join(parts)
objs = [
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
]
out = bytearray(b"%PDF-1.4\n")
offs = []
for i, o in enumerate(objs, 1):
    offs.append(len(out))
    out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for o in offs:
    out += b"%010d 00000 n \n" % o
out += b"trailer\n<< /Root 1 0 R /Size %d >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
open(path, "wb").write(out)
print("bomb: %d bytes of PDF, content stream inflates to %d bytes" % (len(out), n))
EOF

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# descendants lists every process below pid (the parser children and
# anything they started).
descendants() {
  local kids; kids=$(pgrep -P "$1" || true)
  for k in $kids; do echo "$k"; descendants "$k"; done
}

run_mode() {
  local mode=$1; shift
  local dir="$WORK/$mode"; rm -rf "$dir"; mkdir -p "$dir"
  "$BIN" start --data-dir "$dir" --name "$mode" --bind 127.0.0.1 --http-port 17570 --raft-port 17571 --serf-port 17572 \
    --timing fast --gpus 0 --cpu-slots 1 --task-timeout "$TIMEOUT" --parser-memory "$LIMIT" --log-level warn "$@" 2>"$dir/node.log" &
  local pid=$!
  for _ in $(seq 100); do "$BIN" status --addr 127.0.0.1:17570 >/dev/null 2>&1 && break; sleep 0.2; done
  sleep 1
  local base; base=$(rss_kb "$pid")
  "$BIN" submit "$WORK/bomb.pdf" --addr 127.0.0.1:17570 --partition bomb >/dev/null
  local t0; t0=$(date +%s.%N)
  local peak=0 cpeak=0 state=""
  while :; do
    local r; r=$(rss_kb "$pid"); [ "${r:-0}" -gt "$peak" ] && peak=$r
    local c=0
    for k in $(descendants "$pid"); do c=$((c + $(rss_kb "$k"))); done
    [ "$c" -gt "$cpeak" ] && cpeak=$c
    state=$("$BIN" tasks --addr 127.0.0.1:17570 -o json 2>/dev/null | python3 -c 'import json,sys; t=json.load(sys.stdin); t=t.get("tasks",t) if isinstance(t,dict) else t; print(t[0]["state"] if t else "")' 2>/dev/null || true)
    case "$state" in completed|failed|cancelled) break ;; esac
    kill -0 "$pid" 2>/dev/null || { state="node died"; break; }
    sleep 0.2
  done
  local took; took=$(python3 -c "import time; print('%.1f' % (time.time() - $t0))")
  local err; err=$("$BIN" tasks --addr 127.0.0.1:17570 -o json 2>/dev/null | python3 -c 'import json,sys; t=json.load(sys.stdin); t=t.get("tasks",t) if isinstance(t,dict) else t; print(t[0].get("error","").splitlines()[0] if t and t[0].get("error") else "")' 2>/dev/null || true)
  printf '%-10s %-10s node RSS %5d MiB at start, peak %5d MiB; children peak %5d MiB; %6ss; %s\n' \
    "$mode" "$state" $((base / 1024)) $((peak / 1024)) $((cpeak / 1024)) "$took" "$err"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

run_mode child
run_mode inprocess --parser-inprocess
