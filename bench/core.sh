#!/usr/bin/env bash
# Core benchmark of the embedded default (SQLite + local disk). In one run,
# on the same file and disk:
#   - baselines: cp (page cache), cp + fsync, and SHA-256 of the file on
#     one core (every upload is hashed on the way in, so no upload can be
#     faster than that);
#   - upload and download of the file through the REST API, to an
#     encrypted server (the default) and a plain one running side by side,
#     each measure on both back to back in alternating order, with
#     bench/cmd/xfer (sendfile uploads, 1 MiB writes) and with curl (16 KiB
#     reads and writes, so often the limit);
#   - each server's CPU seconds per GiB moved, and its peak RSS;
#   - cold start of `velox serve` on an existing data directory to the
#     first answered request, and idle RSS.
# Usage: bench/core.sh [SIZE_MIB [ROUNDS]]   (defaults 1024, 6). Loopback only.
# An even number of rounds lets each server go first equally often: on a
# small VM the first or the second transfer of a pair can be faster by
# position alone (curl uploads have alternated 440 and 830 MB/s).
# Figures are medians over the rounds, in MB/s (10^6 bytes/s), with the
# median of the per-round encrypted/plain ratios next to the ratio of the
# medians.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
rounds=${2:-6}
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
fmedian() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float,sys.argv[1:])):.2f}')" "$@"; }
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

# cpu PID: user + system CPU seconds the process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14+$15)/hz}' "/proc/$1/stat"; }
# run NAME ARRAY CMD...: runs CMD against server NAME, appends what it
# prints (MB/s) to ARRAY[NAME] and the server's CPU seconds per GiB to
# ARRAY_cpu[NAME].
run() {
  local name=$1 arr=$2 c0 c1 out
  shift 2
  local -n a=$arr c=${arr}_cpu
  settle
  c0=$(cpu "${pid[$name]}")
  out=$("$@")
  c1=$(cpu "${pid[$name]}")
  a[$name]+="$out "
  c[$name]+="$(python3 -c "print(f'{($c1-$c0)*1024/$size_mib:.2f}')") "
}
xfer_up() { # NAME: uploads the file with xfer, prints MB/s, leaves its id in $work/id-NAME
  "$xfer" -put "$work/src" -user admin:$pw -method POST -print-body \
    "${url[$1]}/api/v1/nodes/${root[$1]}/files?name=big.bin" 2>"$work/rate" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' >"$work/id-$1"
  cat "$work/rate"
}
xfer_down() { # NAME DEST
  "$xfer" -get "$2" -user admin:$pw "${url[$1]}/api/v1/nodes/$(cat "$work/id-$1")/content"
}
curl_up() { # NAME
  local rate
  rate=$(curl -fs -u admin:$pw -o "$work/curl-$1.json" -w '%{speed_upload}' -X POST -T "$work/src" \
    -H 'Content-Type: application/octet-stream' "${url[$1]}/api/v1/nodes/${root[$1]}/files?name=curl.bin")
  python3 -c "print(f'{$rate/1e6:.0f}')"
}
curl_down() { # NAME
  local rate
  rate=$(curl -fs -u admin:$pw -o "$work/dl" -w '%{speed_download}' "${url[$1]}/api/v1/nodes/$(cat "$work/id-$1")/content")
  python3 -c "print(f'{$rate/1e6:.0f}')"
}

# Each measure runs on both servers back to back, first one then the
# other, alternating which goes first from round to round: the host's
# speed drifts over a run, and a pair taken seconds apart in both orders
# keeps that drift out of the ratio.
declare -A up down null cup cdown up_cpu down_cpu null_cpu cup_cpu cdown_cpu
for r in $(seq "$rounds"); do
  echo "== round $r" >&2
  if ((r % 2)); then order=(enc plain); else order=(plain enc); fi
  for name in "${order[@]}"; do run "$name" up xfer_up "$name"; done
  for name in "${order[@]}"; do
    run "$name" down xfer_down "$name" "$work/dl"
    cmp "$work/src" "$work/dl" || { echo "downloaded bytes differ ($name)" >&2; exit 1; }
    rm -f "$work/dl"
  done
  for name in "${order[@]}"; do run "$name" null xfer_down "$name" -; done
  for name in "${order[@]}"; do run "$name" cup curl_up "$name"; done
  for name in "${order[@]}"; do run "$name" cdown curl_down "$name"; rm -f "$work/dl"; done
  # Delete and purge both files, so rounds start from the same disk.
  for name in "${order[@]}"; do
    u=${url[$name]}
    curl -fs -u admin:$pw -X DELETE "$u/api/v1/nodes/$(cat "$work/id-$name")" >/dev/null
    curl -fs -u admin:$pw -X DELETE "$u/api/v1/nodes/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/curl-$name.json")" >/dev/null
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
# prr A B: median of the per-round ratios of the lists A and B.
prr() { python3 -c "import statistics,sys; a,b=(list(map(float,x.split())) for x in sys.argv[1:]); print(f'{statistics.median(x/y for x,y in zip(a,b)):.2f}')" "$1" "$2"; }
# line LABEL ARRAY: one table row.
line() {
  local -n a=$2 c=${2}_cpu
  local e p
  e=$(median ${a[enc]}); p=$(median ${a[plain]})
  echo "| $1 | $e | $p | $(ratio "$e" "$p") | $(prr "${a[enc]}" "${a[plain]}") | $(fmedian ${c[enc]}) / $(fmedian ${c[plain]}) |"
}
up_enc=$(median ${up[enc]}); up_plain=$(median ${up[plain]}); down_enc=$(median ${down[enc]}); down_plain=$(median ${down[plain]})
cat <<REPORT
Baselines (median of $rounds): cp $cp_m MB/s, cp + fsync $cps_m MB/s, SHA-256 on one core $sha_m MB/s

| ${size_mib} MiB through the API, MB/s, median of $rounds | encrypted (default) | plain | ratio of the medians | median of the per-round ratios | server CPU s per GiB, encrypted / plain |
|---|---|---|---|---|---|
$(line "upload, xfer (fsync'd before the answer)" up)
$(line "download into a file, xfer" down)
$(line "download to /dev/null, xfer" null)
$(line "upload, curl -T" cup)
$(line "download into a file, curl -o" cdown)

Against the baselines: xfer upload $(ratio "$up_enc" "$cps_m")× (encrypted) and $(ratio "$up_plain" "$cps_m")× (plain) cp + fsync, $(ratio "$up_enc" "$sha_m")× and $(ratio "$up_plain" "$sha_m")× SHA-256; xfer download into a file $(ratio "$down_enc" "$cp_m")× and $(ratio "$down_plain" "$cp_m")× cp. Server peak RSS over all rounds: ${peak[enc]} MiB encrypted, ${peak[plain]} MiB plain.

Rounds (xfer up / down / null; curl up / down):
- encrypted: ${up[enc]}/ ${down[enc]}/ ${null[enc]}; ${cup[enc]}/ ${cdown[enc]}
- plain: ${up[plain]}/ ${down[plain]}/ ${null[plain]}; ${cup[plain]}/ ${cdown[plain]}
- baselines: cp ${cp_r[*]}; cp+fsync ${cps_r[*]}; SHA-256 ${sha_r[*]}

Cold start to first answered request (best of 5): $best ms; idle RSS after start: $((idle_kib / 1024)) MiB
REPORT
