#!/usr/bin/env bash
# Swift throughput: the same file, the same real 3-replica Swift cluster, in
# one run, in interleaved rounds (all uploads first, then all downloads):
#   direct  - curl PUT/GET straight to the Swift proxy (the ceiling)
#   plain   - Velox's upload and download API, Swift backend, encryption off
#   enc     - the same with encryption at rest on (the default)
#   rclone  - `rclone serve webdav` over the same Swift account (a peer)
# plus each Velox's peak RSS and the CPU time the Velox process spent per
# GiB moved (from /proc), since on one machine every hop's CPU is taken
# from the Swift servers. All clients are curl.
# Usage: bench/swift.sh [SIZE_MIB...]   (default 256 1024); ROUNDS=3.
# PIN=1 runs the Swift cluster on CPU 0 and everything else (Velox, rclone,
# curl) on CPU 1, the way a deployment gives Swift machines of its own:
# then an extra hop's CPU is no longer taken from Swift.
# Loopback only; the cluster is started from Debian's packages and stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ $# -eq 0 ] && sizes=(256 1024)
rounds=${ROUNDS:-3}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/velox-swift-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/velox" ./cmd/velox
go build -o "$work/velox-testenv" ./internal/testenv/cmd/velox-testenv
pin=()
[ "${PIN:-0}" = 1 ] && pin=(taskset -c 0)
"${pin[@]}" "$work/velox-testenv" swift > "$work/swift.env" 2>"$work/swift.err" &
pids+=($!)
# Everything this shell starts from here on inherits its CPU.
[ "${PIN:-0}" = 1 ] && taskset -p -c 1 $$ >/dev/null
for _ in $(seq 1 600); do grep -q VELOX_TEST_SWIFT_KEY "$work/swift.env" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1090
source <(grep '^export' "$work/swift.env")
read -r storage token < <(curl -fsi -H "X-Auth-User: $VELOX_TEST_SWIFT_USER" -H "X-Auth-Key: $VELOX_TEST_SWIFT_KEY" \
  "$VELOX_TEST_SWIFT_AUTH_URL" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-storage-url" {s=$2} tolower($1)=="x-auth-token" {t=$2} END {print s, t}')
curl -fs -X PUT -H "X-Auth-Token: $token" "$storage/bench-direct" >/dev/null

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
mb() { python3 -c "print(f'{$1/1e6:.0f}')"; }
# cpu PID: user+system CPU seconds of a process so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"; }

declare -A url pid root
for mode in plain enc; do
  port=$(freeport)
  enc=false; [ $mode = enc ] && enc=true
  VELOX_ENCRYPTION_ENABLED=$enc VELOX_ADMIN_PASSWORD=pw VELOX_STORAGE_BACKEND=swift \
  VELOX_STORAGE_SWIFT_AUTH_URL="$VELOX_TEST_SWIFT_AUTH_URL" VELOX_STORAGE_SWIFT_USER="$VELOX_TEST_SWIFT_USER" \
  VELOX_STORAGE_SWIFT_KEY="$VELOX_TEST_SWIFT_KEY" VELOX_STORAGE_SWIFT_CONTAINER_PREFIX=bench$mode \
    "$work/velox" serve --data "$work/data-$mode" --listen "127.0.0.1:$port" --log-level warn >"$work/velox-$mode.log" 2>&1 </dev/null &
  pid[$mode]=$!; pids+=($!)
  url[$mode]="http://127.0.0.1:$port"
done
rport=$(freeport)
RCLONE_CONFIG_SW_TYPE=swift RCLONE_CONFIG_SW_AUTH="$VELOX_TEST_SWIFT_AUTH_URL" RCLONE_CONFIG_SW_USER="$VELOX_TEST_SWIFT_USER" \
RCLONE_CONFIG_SW_KEY="$VELOX_TEST_SWIFT_KEY" rclone serve webdav --config /dev/null --addr "127.0.0.1:$rport" sw:bench-rclone \
  >"$work/rclone.log" 2>&1 </dev/null &
pids+=($!)
for mode in plain enc; do
  u=${url[$mode]}
  for _ in $(seq 1 300); do curl -fs "$u/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  space=$(curl -fs -u admin:pw "$u/api/v1/me" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["personal_space_id"])')
  root[$mode]=$(curl -fs -u admin:pw "$u/api/v1/spaces/$space" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_id"])')
done
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$rport/" >/dev/null 2>&1 && break; sleep 0.1; done

declare -A put get cpu_put cpu_get id
# do_put MODE MIB R / do_get MODE MIB: one transfer, appended to the lists.
do_put() {
  local mode=$1 mib=$2 r=$3 u c0 c1 rate
  case $mode in
    direct) put[direct,$mib]+="$(mb "$(curl -fs -X PUT -H "X-Auth-Token: $token" -T "$work/src" -o /dev/null -w '%{speed_upload}' "$storage/bench-direct/obj$mib")") " ;;
    rclone) put[rclone,$mib]+="$(mb "$(curl -fs -T "$work/src" -o /dev/null -w '%{speed_upload}' "http://127.0.0.1:$rport/f$mib")") " ;;
    *)
      u=${url[$mode]}
      # Keep one copy per mode: the download phase reads the last one.
      [ -n "${id[$mode,$mib]:-}" ] && curl -fs -u admin:pw -X DELETE "$u/api/v1/nodes/${id[$mode,$mib]}" >/dev/null
      c0=$(cpu "${pid[$mode]}")
      rate=$(curl -fs -u admin:pw -X POST -T "$work/src" -H 'Content-Type: application/octet-stream' -o "$work/node.json" \
        -w '%{speed_upload}' "$u/api/v1/nodes/${root[$mode]}/files?name=f$mib-$r")
      c1=$(cpu "${pid[$mode]}")
      put[$mode,$mib]+="$(mb "$rate") "
      cpu_put[$mode,$mib]+="$(python3 -c "print(f'{($c1-$c0)*1024/$mib:.2f}')") "
      id[$mode,$mib]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/node.json") ;;
  esac
}
do_get() {
  local mode=$1 mib=$2 u c0 c1 rate
  case $mode in
    direct) get[direct,$mib]+="$(mb "$(curl -fs -H "X-Auth-Token: $token" -o /dev/null -w '%{speed_download}' "$storage/bench-direct/obj$mib")") " ;;
    rclone) get[rclone,$mib]+="$(mb "$(curl -fs -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$rport/f$mib")") " ;;
    *)
      u=${url[$mode]}
      c0=$(cpu "${pid[$mode]}")
      rate=$(curl -fs -u admin:pw -o /dev/null -w '%{speed_download}' "$u/api/v1/nodes/${id[$mode,$mib]}/content")
      c1=$(cpu "${pid[$mode]}")
      get[$mode,$mib]+="$(mb "$rate") "
      cpu_get[$mode,$mib]+="$(python3 -c "print(f'{($c1-$c0)*1024/$mib:.2f}')") " ;;
  esac
}
# Uploads first, then downloads, so that no download runs while Swift
# still settles the upload just before it (container updates and the
# like); within each phase the order of the four rotates from round to
# round, so that no one always follows the same neighbour.
modes=(direct plain enc rclone)
order() { local r=$1 i; for i in 0 1 2 3; do echo "${modes[$(( (i + r) % 4 ))]}"; done; }
for mib in "${sizes[@]}"; do
  head -c $((mib * 1048576)) /dev/urandom > "$work/src"
  for r in $(seq "$rounds"); do
    echo "== $mib MiB, upload round $r" >&2
    for mode in $(order "$r"); do do_put "$mode" "$mib" "$r"; done
  done
  sleep 5
  for r in $(seq "$rounds"); do
    echo "== $mib MiB, download round $r" >&2
    for mode in $(order "$r"); do do_get "$mode" "$mib"; done
  done
  for mode in plain enc; do curl -fs -u admin:pw -X DELETE "${url[$mode]}/api/v1/nodes/${id[$mode,$mib]}" >/dev/null; done
done

echo "Medians of $rounds interleaved rounds, MB/s (ratio to direct Swift in the same run):"
echo
echo "| file | direct PUT | Velox upload, plain | Velox upload, encrypted | rclone PUT | direct GET | Velox download, plain | Velox download, encrypted | rclone GET |"
echo "|---|---|---|---|---|---|---|---|---|"
for mib in "${sizes[@]}"; do
  # shellcheck disable=SC2086
  {
    dp=$(median ${put[direct,$mib]}); dg=$(median ${get[direct,$mib]})
    pp=$(median ${put[plain,$mib]}); pg=$(median ${get[plain,$mib]})
    ep=$(median ${put[enc,$mib]}); eg=$(median ${get[enc,$mib]})
    rp=$(median ${put[rclone,$mib]}); rg=$(median ${get[rclone,$mib]})
  }
  echo "| $mib MiB | $dp | $pp ($(ratio "$pp" "$dp")×) | $ep ($(ratio "$ep" "$dp")×) | $rp ($(ratio "$rp" "$dp")×) | $dg | $pg ($(ratio "$pg" "$dg")×) | $eg ($(ratio "$eg" "$dg")×) | $rg ($(ratio "$rg" "$dg")×) |"
done
echo
echo "Medians of the per-round ratios to direct Swift (each Velox transfer against the direct one of its own round):"
echo
for mib in "${sizes[@]}"; do
  line="- $mib MiB:"
  for k in "put plain" "put enc" "get plain" "get enc"; do
    read -r op mode <<<"$k"
    if [ "$op" = put ]; then a=${put[$mode,$mib]} d=${put[direct,$mib]}; else a=${get[$mode,$mib]} d=${get[direct,$mib]}; fi
    line+=" $op $mode $(python3 -c 'import statistics,sys; a,d=(list(map(float,x.split())) for x in sys.argv[1:]); print(f"{statistics.median(x/y for x,y in zip(a,d)):.2f}")' "$a" "$d")×;"
  done
  echo "${line%;}"
done
echo
echo "Velox CPU seconds per GiB moved (median), and peak RSS:"
echo
echo "| | upload, plain | upload, encrypted | download, plain | download, encrypted |"
echo "|---|---|---|---|---|"
for mib in "${sizes[@]}"; do
  # shellcheck disable=SC2086
  echo "| $mib MiB | $(printf '%s\n' ${cpu_put[plain,$mib]} | sort -n | sed -n "$(( (rounds + 1) / 2 ))p") s | $(printf '%s\n' ${cpu_put[enc,$mib]} | sort -n | sed -n "$(( (rounds + 1) / 2 ))p") s | $(printf '%s\n' ${cpu_get[plain,$mib]} | sort -n | sed -n "$(( (rounds + 1) / 2 ))p") s | $(printf '%s\n' ${cpu_get[enc,$mib]} | sort -n | sed -n "$(( (rounds + 1) / 2 ))p") s |"
done
echo
echo "Peak RSS: plain $(( $(awk '/VmHWM/ {print $2}' /proc/${pid[plain]}/status) / 1024 )) MiB, encrypted $(( $(awk '/VmHWM/ {print $2}' /proc/${pid[enc]}/status) / 1024 )) MiB"
echo
echo "Rounds:"
for mib in "${sizes[@]}"; do
  for k in direct plain enc rclone; do
    echo "- $mib MiB $k: PUT ${put[$k,$mib]}/ GET ${get[$k,$mib]}"
  done
done
