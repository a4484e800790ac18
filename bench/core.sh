#!/usr/bin/env bash
# Core benchmark of the embedded default (SQLite + local disk), measured
# against `cp` of the same file on the same disk in the same run:
#   - upload and download of a large file through the REST API (curl),
#     with the server's peak RSS;
#   - cold start of `velox serve` on an existing data directory to the
#     first answered request, and idle RSS.
# Usage: bench/core.sh [SIZE_MIB]   (default 1024). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/velox-bench.XXXXXX")
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
pid=""

go build -o "$work/velox" ./cmd/velox
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
pw=bench-password

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2-$1:.3f}')"; }
mbps() { python3 -c "print(f'{$1*1048576/($3-$2)/1e6:.0f}')"; }

echo "== generating ${size_mib} MiB"
head -c $((size_mib * 1048576)) /dev/urandom > "$work/src"
sync

t0=$(now); cp "$work/src" "$work/cp-copy"; t1=$(now)
cp_mbps=$(mbps "$size_mib" "$t0" "$t1")
t0=$(now); cp "$work/src" "$work/cp-copy2"; sync "$work/cp-copy2"; t1=$(now)
cpsync_mbps=$(mbps "$size_mib" "$t0" "$t1")
rm -f "$work/cp-copy" "$work/cp-copy2"

start() {
  VELOX_ADMIN_PASSWORD=$pw "$work/velox" serve --data "$work/data" --listen "127.0.0.1:$port" --log-level warn \
    >"$work/out.log" 2>&1 </dev/null &
  pid=$!
}
wait_up() {
  for _ in $(seq 1 2000); do
    curl -fs "$url/healthz" >/dev/null 2>&1 && return 0
    sleep 0.005
  done
  echo "velox did not start"; cat "$work/out.log"; exit 1
}

start; wait_up
space=$(curl -fs -u admin:$pw "$url/api/v1/me" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["personal_space_id"])')
root=$(curl -fs -u admin:$pw "$url/api/v1/spaces/$space" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_id"])')

echo "== upload"
t0=$(now)
id=$(curl -fs -u admin:$pw -X POST -T "$work/src" -H 'Content-Type: application/octet-stream' \
  "$url/api/v1/nodes/$root/files?name=big.bin" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
t1=$(now)
up_mbps=$(mbps "$size_mib" "$t0" "$t1")
echo "== download"
t0=$(now); curl -fs -u admin:$pw -o "$work/dl" "$url/api/v1/nodes/$id/content"; t1=$(now)
down_mbps=$(mbps "$size_mib" "$t0" "$t1")
cmp "$work/src" "$work/dl" || { echo "downloaded bytes differ"; exit 1; }
peak_kib=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
kill -TERM $pid; wait $pid || true

echo "== encrypted vs plain, same file, same run"
enc_rows=""
for mode in true false; do
  kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  rm -rf "$work/data"
  VELOX_ENCRYPTION_ENABLED=$mode start; wait_up
  space=$(curl -fs -u admin:$pw "$url/api/v1/me" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["personal_space_id"])')
  root=$(curl -fs -u admin:$pw "$url/api/v1/spaces/$space" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_id"])')
  best_up=0; best_down=0
  for _ in 1 2 3; do
    t0=$(now)
    id=$(curl -fs -u admin:$pw -X POST -T "$work/src" -H 'Content-Type: application/octet-stream' \
      "$url/api/v1/nodes/$root/files?name=big.bin&conflict=replace" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    t1=$(now); u=$(mbps "$size_mib" "$t0" "$t1")
    t0=$(now); curl -fs -u admin:$pw -o /dev/null "$url/api/v1/nodes/$id/content"; t1=$(now)
    d=$(mbps "$size_mib" "$t0" "$t1")
    [ "$u" -gt "$best_up" ] && best_up=$u
    [ "$d" -gt "$best_down" ] && best_down=$d
  done
  enc_rows="$enc_rows| encryption=$mode: upload / download to /dev/null (best of 3) | $best_up / $best_down MB/s |\n"
done
kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
rm -rf "$work/data"
start; wait_up; kill -TERM $pid; wait $pid || true

echo "== cold start (5 runs)"
best=""
for _ in 1 2 3 4 5; do
  t0=$(now); start; wait_up; t1=$(now)
  s=$(secs "$t0" "$t1")
  if [ -z "$best" ] || python3 -c "exit(0 if $s < $best else 1)"; then best=$s; fi
  sleep 0.5
  idle_kib=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
done

cat <<REPORT
| measure | value |
|---|---|
| cp (page cache) | $cp_mbps MB/s |
| cp + fsync (baseline) | $cpsync_mbps MB/s |
| API upload (curl -T, fsync'd) | $up_mbps MB/s ($(python3 -c "print(f'{$up_mbps/$cpsync_mbps:.2f}')")× cp+fsync, $(python3 -c "print(f'{$up_mbps/$cp_mbps:.2f}')")× cp) |
| API download (curl -o) | $down_mbps MB/s ($(python3 -c "print(f'{$down_mbps/$cp_mbps:.2f}')")× cp) |
| server peak RSS during the transfers | $((peak_kib / 1024)) MiB |
| cold start to first answered request (best of 5) | $(python3 -c "print(f'{$best*1000:.0f}')") ms |
| idle RSS after start | $((idle_kib / 1024)) MiB |
REPORT
printf "%b" "$enc_rows"
