#!/usr/bin/env bash
# Core benchmark of the embedded default (SQLite + local disk). In one run,
# on the same file and disk:
#   - baselines: cp (page cache), cp + fsync, and SHA-256 of the file on
#     one core (every upload is hashed on the way in, so no upload can be
#     faster than that);
#   - upload and download of the file through the REST API, to an
#     encrypted server (the default) and a plain one running side by side,
#     in interleaved rounds, with bench/cmd/xfer (sendfile uploads, 1 MiB
#     writes) and with curl (16 KiB reads and writes, so often the limit);
#   - each server's peak RSS;
#   - cold start of `velox serve` on an existing data directory to the
#     first answered request, and idle RSS.
# Usage: bench/core.sh [SIZE_MIB [ROUNDS]]   (defaults 1024, 5). Loopback only.
# Figures are medians over the rounds, in MB/s (10^6 bytes/s).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
rounds=${2:-5}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/velox-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/velox" ./cmd/velox
go build -o "$work/xfer" ./bench/cmd/xfer
xfer=$work/xfer
pw=bench-password
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$1*1048576/($3-$2)/1e6:.0f}')"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
settle() { sync; sleep 1; }

echo "== generating ${size_mib} MiB" >&2
head -c $((size_mib * 1048576)) /dev/urandom >"$work/src"
settle

declare -a cp_r cps_r sha_r
for _ in $(seq "$rounds"); do
  t0=$(now); cp "$work/src" "$work/cp-copy"; t1=$(now)
  cp_r+=("$(mbps "$size_mib" "$t0" "$t1")")
  rm -f "$work/cp-copy"; settle
  t0=$(now); cp "$work/src" "$work/cp-copy"; sync "$work/cp-copy"; t1=$(now)
  cps_r+=("$(mbps "$size_mib" "$t0" "$t1")")
  rm -f "$work/cp-copy"; settle
  sha_r+=("$("$xfer" -sha256 "$work/src")")
done

# start NAME ENCRYPTION: a server on its own port and data directory.
declare -A url pid root space
start() {
  local name=$1 enc=$2 port
  port=$(freeport)
  url[$name]="http://127.0.0.1:$port"
  VELOX_ENCRYPTION_ENABLED=$enc VELOX_ADMIN_PASSWORD=$pw "$work/velox" serve --data "$work/data-$name" \
    --listen "127.0.0.1:$port" --log-level warn >"$work/$name.log" 2>&1 </dev/null &
  pid[$name]=$!
  pids+=("$!")
  for _ in $(seq 1 2000); do
    curl -fs "${url[$name]}/healthz" >/dev/null 2>&1 && break
    sleep 0.005
  done
  space[$name]=$(curl -fs -u admin:$pw "${url[$name]}/api/v1/me" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["personal_space_id"])')
  root[$name]=$(curl -fs -u admin:$pw "${url[$name]}/api/v1/spaces/${space[$name]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_id"])')
}
start enc true
start plain false

declare -A up down null cup cdown
for r in $(seq "$rounds"); do
  echo "== round $r" >&2
  for name in enc plain; do
    u=${url[$name]}
    settle
    id=$("$xfer" -put "$work/src" -user admin:$pw -method POST -print-body \
      "$u/api/v1/nodes/${root[$name]}/files?name=big.bin" 2>"$work/rate" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    up[$name]+="$(cat "$work/rate") "
    settle
    down[$name]+="$("$xfer" -get "$work/dl" -user admin:$pw "$u/api/v1/nodes/$id/content") "
    cmp "$work/src" "$work/dl" || { echo "downloaded bytes differ ($name)" >&2; exit 1; }
    rm -f "$work/dl"
    settle
    null[$name]+="$("$xfer" -get - -user admin:$pw "$u/api/v1/nodes/$id/content") "
    settle
    rate=$(curl -fs -u admin:$pw -o "$work/curl.json" -w '%{speed_upload}' -X POST -T "$work/src" \
      -H 'Content-Type: application/octet-stream' "$u/api/v1/nodes/${root[$name]}/files?name=curl.bin")
    cup[$name]+="$(python3 -c "print(f'{$rate/1e6:.0f}')") "
    settle
    rate=$(curl -fs -u admin:$pw -o "$work/dl" -w '%{speed_download}' "$u/api/v1/nodes/$id/content")
    cdown[$name]+="$(python3 -c "print(f'{$rate/1e6:.0f}')") "
    rm -f "$work/dl"
    # Delete and purge both files, so rounds start from the same disk.
    curl -fs -u admin:$pw -X DELETE "$u/api/v1/nodes/$id" >/dev/null
    curl -fs -u admin:$pw -X DELETE "$u/api/v1/nodes/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/curl.json")" >/dev/null
    curl -fs -u admin:$pw -X DELETE "$u/api/v1/spaces/${space[$name]}/trash" >/dev/null
  done
done
declare -A peak
for name in enc plain; do
  peak[$name]=$(( $(awk '/VmHWM/ {print $2}' /proc/${pid[$name]}/status) / 1024 ))
  kill -TERM "${pid[$name]}"; wait "${pid[$name]}" || true
done

echo "== cold start (5 runs)" >&2
best=""
for _ in 1 2 3 4 5; do
  port=$(freeport)
  t0=$(now)
  "$work/velox" serve --data "$work/data-enc" --listen "127.0.0.1:$port" --log-level warn >"$work/cold.log" 2>&1 </dev/null &
  p=$!
  until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.002; done
  t1=$(now)
  s=$(python3 -c "print(f'{($t1-$t0)*1000:.0f}')")
  if [ -z "$best" ] || [ "$s" -lt "$best" ]; then best=$s; fi
  sleep 0.5
  idle_kib=$(awk '/VmRSS/ {print $2}' /proc/$p/status)
  kill -TERM $p; wait $p || true
done

cp_m=$(median "${cp_r[@]}"); cps_m=$(median "${cps_r[@]}"); sha_m=$(median "${sha_r[@]}")
row() { # label name array
  local -n a=$3
  median ${a[$2]}
}
for name in enc plain; do
  eval "up_$name=$(row x $name up) down_$name=$(row x $name down) null_$name=$(row x $name null) cup_$name=$(row x $name cup) cdown_$name=$(row x $name cdown)"
done
cat <<REPORT
Baselines (median of $rounds): cp $cp_m MB/s, cp + fsync $cps_m MB/s, SHA-256 on one core $sha_m MB/s

| ${size_mib} MiB through the API, median of $rounds | encrypted (default) | plain | encrypted vs plain |
|---|---|---|---|
| upload, xfer (fsync'd before the answer) | $up_enc MB/s ($(ratio "$up_enc" "$cps_m")× cp+fsync, $(ratio "$up_enc" "$sha_m")× SHA-256) | $up_plain MB/s ($(ratio "$up_plain" "$cps_m")× cp+fsync, $(ratio "$up_plain" "$sha_m")× SHA-256) | $(ratio "$up_enc" "$up_plain") |
| download into a file, xfer | $down_enc MB/s ($(ratio "$down_enc" "$cp_m")× cp) | $down_plain MB/s ($(ratio "$down_plain" "$cp_m")× cp) | $(ratio "$down_enc" "$down_plain") |
| download to /dev/null, xfer | $null_enc MB/s | $null_plain MB/s | $(ratio "$null_enc" "$null_plain") |
| upload, curl -T | $cup_enc MB/s | $cup_plain MB/s | $(ratio "$cup_enc" "$cup_plain") |
| download into a file, curl -o | $cdown_enc MB/s | $cdown_plain MB/s | $(ratio "$cdown_enc" "$cdown_plain") |
| server peak RSS over all rounds | ${peak[enc]} MiB | ${peak[plain]} MiB | |

Rounds (xfer up / down / null; curl up / down):
- encrypted: ${up[enc]}/ ${down[enc]}/ ${null[enc]}; ${cup[enc]}/ ${cdown[enc]}
- plain: ${up[plain]}/ ${down[plain]}/ ${null[plain]}; ${cup[plain]}/ ${cdown[plain]}
- baselines: cp ${cp_r[*]}; cp+fsync ${cps_r[*]}; SHA-256 ${sha_r[*]}

Cold start to first answered request (best of 5): $best ms; idle RSS after start: $((idle_kib / 1024)) MiB
REPORT
