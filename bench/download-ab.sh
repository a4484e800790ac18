#!/usr/bin/env bash
# bench/download-ab.sh OLD_VELOX NEW_VELOX [SIZE_MIB [ROUNDS]]
#
# Downloads of one file through the REST API from three servers side by
# side on the local backend: OLD_VELOX and NEW_VELOX with encryption on,
# NEW_VELOX with it off (the baseline), in interleaved rounds, with
# bench/cmd/xfer (to /dev/null and into a file) and curl (to /dev/null).
# For A/B comparisons of two builds: build each with `go build -o FILE
# ./cmd/velox` at the commits to compare. Prints one line per round, MB/s.
set -euo pipefail
old=$1 new=$2 size_mib=${3:-1024} rounds=${4:-5}
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/var/tmp}/velox-ab.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/xfer" ./bench/cmd/xfer
pw=bench-password
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
head -c $((size_mib * 1048576)) /dev/urandom >"$work/src"
declare -A url id
start() {
  local name=$1 bin=$2 enc=$3 port sp root
  port=$(freeport)
  url[$name]="http://127.0.0.1:$port"
  VELOX_ENCRYPTION_ENABLED=$enc VELOX_ADMIN_PASSWORD=$pw "$bin" serve --data "$work/data-$name" \
    --listen "127.0.0.1:$port" --log-level warn >"$work/$name.log" 2>&1 </dev/null &
  pids+=("$!")
  for _ in $(seq 1 2000); do curl -fs "${url[$name]}/healthz" >/dev/null 2>&1 && break; sleep 0.005; done
  sp=$(curl -fs -u admin:$pw "${url[$name]}/api/v1/me" | json '["user"]["personal_space_id"]')
  root=$(curl -fs -u admin:$pw "${url[$name]}/api/v1/spaces/$sp" | json '["root_id"]')
  id[$name]=$("$work/xfer" -put "$work/src" -user admin:$pw -method POST -print-body \
    "${url[$name]}/api/v1/nodes/$root/files?name=ab.bin" 2>/dev/null | json '["id"]')
}
start old "$old" true
start new "$new" true
start plain "$new" false
for r in $(seq "$rounds"); do
  line="round $r:"
  for name in old new plain; do
    u=${url[$name]}/api/v1/nodes/${id[$name]}/content
    n=$("$work/xfer" -get - -user admin:$pw "$u")
    f=$("$work/xfer" -get "$work/dl" -user admin:$pw "$u"); rm -f "$work/dl"
    c=$(curl -fs -u admin:$pw -o /dev/null -w '%{speed_download}' "$u" | awk '{printf "%.0f", $1/1e6}')
    line+=" $name null=$n file=$f curl=$c"
  done
  echo "$line"
done
