#!/usr/bin/env bash
# Swift throughput: the same file, the same real 3-replica Swift cluster, in
# one run:
#   direct  - curl PUT/GET straight to the Swift proxy (the ceiling)
#   velox   - Velox's upload and download API with the Swift backend
#   rclone  - `rclone serve webdav` over the same Swift account (a peer)
# plus Velox's peak RSS. Usage: bench/swift.sh [SIZE_MIB...] (default 256 1024).
# Loopback only; the cluster is started from Debian's packages and stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-256 1024}")
[ $# -eq 0 ] && sizes=(256 1024)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/velox-swift-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/velox" ./cmd/velox
go build -o "$work/velox-testenv" ./internal/testenv/cmd/velox-testenv
"$work/velox-testenv" swift > "$work/swift.env" 2>"$work/swift.err" &
pids+=($!)
for _ in $(seq 1 600); do grep -q VELOX_TEST_SWIFT_KEY "$work/swift.env" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1090
source <(grep '^export' "$work/swift.env")
read -r storage token < <(curl -fsi -H "X-Auth-User: $VELOX_TEST_SWIFT_USER" -H "X-Auth-Key: $VELOX_TEST_SWIFT_KEY" \
  "$VELOX_TEST_SWIFT_AUTH_URL" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-storage-url" {s=$2} tolower($1)=="x-auth-token" {t=$2} END {print s, t}')
curl -fs -X PUT -H "X-Auth-Token: $token" "$storage/bench-direct" >/dev/null

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$1*1048576/($3-$2)/1e6:.0f}')"; }

vport=$(freeport)
VELOX_ADMIN_PASSWORD=pw VELOX_STORAGE_BACKEND=swift VELOX_STORAGE_SWIFT_AUTH_URL="$VELOX_TEST_SWIFT_AUTH_URL" \
VELOX_STORAGE_SWIFT_USER="$VELOX_TEST_SWIFT_USER" VELOX_STORAGE_SWIFT_KEY="$VELOX_TEST_SWIFT_KEY" \
VELOX_STORAGE_SWIFT_CONTAINER_PREFIX=benchvelox \
  "$work/velox" serve --data "$work/data" --listen "127.0.0.1:$vport" --log-level warn >"$work/velox.log" 2>&1 </dev/null &
vpid=$!; pids+=($vpid)
rport=$(freeport)
RCLONE_CONFIG_SW_TYPE=swift RCLONE_CONFIG_SW_AUTH="$VELOX_TEST_SWIFT_AUTH_URL" RCLONE_CONFIG_SW_USER="$VELOX_TEST_SWIFT_USER" \
RCLONE_CONFIG_SW_KEY="$VELOX_TEST_SWIFT_KEY" rclone serve webdav --config /dev/null --addr "127.0.0.1:$rport" sw:bench-rclone \
  >"$work/rclone.log" 2>&1 </dev/null &
pids+=($!)
vurl="http://127.0.0.1:$vport"
for _ in $(seq 1 300); do curl -fs "$vurl/readyz" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$rport/" >/dev/null 2>&1 && break; sleep 0.1; done
space=$(curl -fs -u admin:pw "$vurl/api/v1/me" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["personal_space_id"])')
root=$(curl -fs -u admin:pw "$vurl/api/v1/spaces/$space" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_id"])')
curl -fs -X MKCOL "http://127.0.0.1:$rport/x" >/dev/null 2>&1 || true

echo "| file | direct PUT | Velox upload | rclone PUT | direct GET | Velox download | rclone GET |"
echo "|---|---|---|---|---|---|---|"
for mib in "${sizes[@]}"; do
  head -c $((mib * 1048576)) /dev/urandom > "$work/src"
  # Direct: one PUT (a single object under Swift's 5 GiB limit), one GET.
  t0=$(now); curl -fs -X PUT -H "X-Auth-Token: $token" -T "$work/src" "$storage/bench-direct/obj$mib" >/dev/null; t1=$(now)
  dput=$(mbps "$mib" "$t0" "$t1")
  t0=$(now); curl -fs -H "X-Auth-Token: $token" -o /dev/null "$storage/bench-direct/obj$mib"; t1=$(now)
  dget=$(mbps "$mib" "$t0" "$t1")
  t0=$(now)
  id=$(curl -fs -u admin:pw -X POST -T "$work/src" -H 'Content-Type: application/octet-stream' \
    "$vurl/api/v1/nodes/$root/files?name=f$mib&conflict=replace" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  t1=$(now); vput=$(mbps "$mib" "$t0" "$t1")
  t0=$(now); curl -fs -u admin:pw -o /dev/null "$vurl/api/v1/nodes/$id/content"; t1=$(now)
  vget=$(mbps "$mib" "$t0" "$t1")
  t0=$(now); curl -fs -T "$work/src" "http://127.0.0.1:$rport/f$mib" >/dev/null; t1=$(now)
  rput=$(mbps "$mib" "$t0" "$t1")
  t0=$(now); curl -fs -o /dev/null "http://127.0.0.1:$rport/f$mib"; t1=$(now)
  rget=$(mbps "$mib" "$t0" "$t1")
  ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
  echo "| $mib MiB | $dput MB/s | $vput MB/s ($(ratio "$vput" "$dput")×) | $rput MB/s ($(ratio "$rput" "$dput")×) | $dget MB/s | $vget MB/s ($(ratio "$vget" "$dget")×) | $rget MB/s ($(ratio "$rget" "$dget")×) |"
done
echo
echo "Velox peak RSS: $(( $(awk '/VmHWM/ {print $2}' /proc/$vpid/status) / 1024 )) MiB"
