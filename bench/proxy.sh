#!/usr/bin/env bash
# bench/proxy.sh — compare "velox proxy" with nginx and caddy on one machine.
#
# Each proxy terminates TLS (same certificate, TLS 1.2/1.3, HTTP/2 + HTTP/1.1)
# and forwards one route to the same two Go upstreams (bench/cmd/upstream),
# least-connections balancing, keep-alive to the upstreams, no buffering, no
# access log. Only one proxy gets traffic at a time, and rounds interleave
# them. Everything stays on loopback and every step is bounded in time.
#
# Needs: go, nginx, caddy, wrk, curl (Debian: apt-get install nginx caddy wrk curl).
# Usage: bench/proxy.sh [--markdown FILE]
#        (env: DURATION, CONNS, THREADS, BIG, IDLE, IDLE_SETTLE, ROUNDS, XFER_ROUNDS,
#         ONLY=transfers to skip the idle-memory and small-request rows)
set -euo pipefail

DURATION=${DURATION:-10s}   # wrk run per proxy
CONNS=${CONNS:-64}          # wrk keep-alive connections
THREADS=${THREADS:-2}       # wrk threads
BIG=${BIG:-1073741824}      # bytes for the download/upload rows
IDLE=${IDLE:-1000}          # idle keep-alive connections for the memory row
IDLE_SETTLE=${IDLE_SETTLE:-130} # seconds before the settled idle-memory sample
ROUNDS=${ROUNDS:-3}         # wrk rounds per proxy (median reported)
XFER_ROUNDS=${XFER_ROUNDS:-2} # large-transfer rounds per proxy (best reported)
ONLY=${ONLY:-}              # "transfers": only the large-transfer rows
MARKDOWN=""
if [[ ${1:-} == --markdown ]]; then MARKDOWN=$2; fi

for tool in go nginx caddy wrk curl python3; do
	command -v "$tool" >/dev/null || { echo "bench/proxy.sh: $tool is required" >&2; exit 1; }
done

cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "building..." >&2
go build -o "$WORK/velox" ./cmd/velox
go build -o "$WORK/upstream" ./bench/cmd/upstream
go build -o "$WORK/idleconns" ./bench/cmd/idleconns
"$WORK/velox" proxy dev-cert --out "$WORK/certs" --hosts localhost,127.0.0.1 >/dev/null
CERT=$WORK/certs/cert.pem KEY=$WORK/certs/key.pem

U1=$(free_port) U2=$(free_port)
"$WORK/upstream" -listen "127.0.0.1:$U1" -big "$BIG" </dev/null >"$WORK/up1.log" 2>&1 & PIDS+=($!)
"$WORK/upstream" -listen "127.0.0.1:$U2" -big "$BIG" </dev/null >"$WORK/up2.log" 2>&1 & PIDS+=($!)

# wait_https PORT: until the proxy answers /small.
wait_https() {
	for _ in $(seq 100); do
		curl -sfk -o /dev/null "https://127.0.0.1:$1/small" && return 0
		sleep 0.1
	done
	echo "bench/proxy.sh: nothing answers on port $1" >&2
	return 1
}

# rss_kb PID...: total resident memory of the processes.
rss_kb() {
	local total=0 pid kb
	for pid in "$@"; do
		kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		total=$((total + ${kb:-0}))
	done
	echo "$total"
}

# pids_of PID: the process and its children (nginx workers).
pids_of() { echo "$1" $(pgrep -P "$1" || true); }

# to_ms VALUE: wrk latency ("812.00us", "1.20ms", "1.01s") in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
		printf "%.2f", n }'
}

declare -A R # results: R[proxy,measure]

# start_idle NAME PORT PID: resident memory at rest, then the growth once
# $IDLE idle keep-alive TLS connections are open (after 1 s). Runs first, on
# a fresh process; the connections stay open until finish_idle.
declare -A IDLE_PID
start_idle() {
	local name=$1 url="https://127.0.0.1:$2" pid=$3 before after
	curl -sk -o /dev/null "$url/small"
	sleep 0.5
	before=$(rss_kb $(pids_of "$pid"))
	"$WORK/idleconns" -n "$IDLE" -hold 15m -url "$url/small" </dev/null >"$WORK/idle-$name.out" &
	IDLE_PID[$name]=$!
	PIDS+=($!)
	for _ in $(seq 1200); do grep -q ready "$WORK/idle-$name.out" && break; sleep 0.1; done
	sleep 1
	after=$(rss_kb $(pids_of "$pid"))
	R[$name,idle]=$(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN {printf "%.1f", (a-b)/1024*1000/n}')
	R[$name,base_kb]=$before
	R[$name,base]=$(awk -v b="$before" 'BEGIN {printf "%.1f", b/1024}')
	echo "$name: $(cat "$WORK/idle-$name.out") idle connections, RSS ${before} kB -> ${after} kB" >&2
}

# finish_idle NAME PID: the same growth after the settle time (Go runtimes
# collect and return garbage from the handshakes within about two minutes),
# then closes the connections.
finish_idle() {
	local name=$1 pid=$2 after
	after=$(rss_kb $(pids_of "$pid"))
	R[$name,idle_settled]=$(awk -v a="$after" -v b="${R[$name,base_kb]}" -v n="$IDLE" 'BEGIN {printf "%.1f", (a-b)/1024*1000/n}')
	echo "$name: after settling, RSS ${after} kB" >&2
	kill "${IDLE_PID[$name]}" 2>/dev/null || true
	wait "${IDLE_PID[$name]}" 2>/dev/null || true
}

# cpu_ticks PID...: user+system CPU ticks of the processes and their
# children (nginx workers) so far.
cpu_ticks() {
	local t=0 pid
	for pid in $(for p in "$@"; do pids_of "$p"; done); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}

# run_wrk NAME PORT PID: one wrk run of small GETs; appends to the round
# lists, with the proxy's CPU time per request (less sensitive to other
# load on the machine than requests/s).
run_wrk() {
	local name=$1 url="https://127.0.0.1:$2" pid=$3 out before after reqs
	before=$(cpu_ticks "$pid")
	out=$(timeout 300 wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$url/small")
	after=$(cpu_ticks "$pid")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	R[$name,cpu_list]+=" $(awk -v t=$((after - before)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
	R[$name,rps_list]+=" $(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")"
	R[$name,p50_list]+=" $(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
	R[$name,p99_list]+=" $(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
	R[$name,errors]+=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")
	echo "$name wrk: $(awk '/^Requests\/sec:/ {print $2}' <<<"$out") req/s" >&2
}

# transfer NAME PID KEY CURL_ARGS...: one large transfer; appends its MB/s
# (10^6 bytes per second) and the proxy's CPU seconds per GiB moved to the
# round lists of KEY.
transfer() {
	local name=$1 pid=$2 key=$3 before after s
	shift 3
	before=$(cpu_ticks "$pid")
	s=$(timeout 600 curl -sk "$@")
	after=$(cpu_ticks "$pid")
	R[$name,${key}_list]+=" $(awk -v s="$s" 'BEGIN {printf "%.0f", s/1e6}')"
	R[$name,${key}cpu_list]+=" $(awk -v t=$((after - before)) -v b="$BIG" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz * 1073741824 / b}')"
}

# run_transfers NAME PORT PID: one large download per protocol and one
# upload.
run_transfers() {
	local name=$1 url="https://127.0.0.1:$2" pid=$3
	transfer "$name" "$pid" down1 --http1.1 -o /dev/null -w '%{speed_download}' "$url/big"
	transfer "$name" "$pid" down2 --http2 -o /dev/null -w '%{speed_download}' "$url/big"
	transfer "$name" "$pid" up1 --http1.1 -T - -o /dev/null -w '%{speed_upload}' "$url/upload" < <(head -c "$BIG" /dev/zero)
	echo "$name transfers: down h1${R[$name,down1_list]##* } h2${R[$name,down2_list]##* } up${R[$name,up1_list]##* } MB/s" >&2
}

median() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2}'; }
best() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | tail -1; }

# --- velox proxy
P=$(free_port)
cat >"$WORK/velox.yaml" <<EOF
listen: 127.0.0.1:$P
tls: {certificates: [{cert: $CERT, key: $KEY}]}
log: {access: false}
upstreams:
  app: {targets: ["http://127.0.0.1:$U1", "http://127.0.0.1:$U2"]}
routes: [{path: /, upstream: app}]
EOF
"$WORK/velox" proxy --config "$WORK/velox.yaml" </dev/null >/dev/null 2>"$WORK/velox.log" & VPID=$!; PIDS+=($VPID)
VPORT=$P

# --- nginx
P=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream app {
        least_conn;
        server 127.0.0.1:$U1;
        server 127.0.0.1:$U2;
        keepalive 128;
    }
    server {
        listen 127.0.0.1:$P ssl http2;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        keepalive_requests 1000000;
        client_max_body_size 0;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
EOF
nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" </dev/null >/dev/null 2>&1 & NPID=$!; PIDS+=($NPID)
NPORT=$P

# --- caddy
P=$(free_port)
mkdir -p "$WORK/caddy"
cat >"$WORK/caddy/Caddyfile" <<EOF
{
	admin off
	auto_https disable_redirects
	servers {
		protocols h1 h2
	}
}
https://127.0.0.1:$P {
	tls $CERT $KEY
	reverse_proxy 127.0.0.1:$U1 127.0.0.1:$U2 {
		lb_policy least_conn
	}
}
EOF
XDG_DATA_HOME=$WORK/caddy XDG_CONFIG_HOME=$WORK/caddy HOME=$WORK/caddy \
	caddy run --config "$WORK/caddy/Caddyfile" --adapter caddyfile </dev/null >/dev/null 2>"$WORK/caddy/caddy.log" & CPID=$!; PIDS+=($CPID)
CPORT=$P

# All three run side by side; only the one being measured gets traffic.
# Rounds interleave the proxies so that background load on the machine
# spreads over all of them; wrk rows report the median round, transfer
# rows the best round.
wait_https "$VPORT"; wait_https "$NPORT"; wait_https "$CPORT"
if [[ $ONLY != transfers ]]; then
	start_idle velox "$VPORT" "$VPID"
	start_idle nginx "$NPORT" "$NPID"
	start_idle caddy "$CPORT" "$CPID"
	sleep "$IDLE_SETTLE"
	finish_idle velox "$VPID"
	finish_idle nginx "$NPID"
	finish_idle caddy "$CPID"
	for name in velox nginx caddy; do
		port_var=${name:0:1}; port_var=${port_var^^}PORT
		timeout 120 wrk -t"$THREADS" -c"$CONNS" -d3s "https://127.0.0.1:${!port_var}/small" >/dev/null # warm-up
	done
	for round in $(seq "$ROUNDS"); do
		echo "== round $round" >&2
		run_wrk velox "$VPORT" "$VPID"; run_wrk nginx "$NPORT" "$NPID"; run_wrk caddy "$CPORT" "$CPID"
	done
fi
for round in $(seq "$XFER_ROUNDS"); do
	run_transfers velox "$VPORT" "$VPID"; run_transfers nginx "$NPORT" "$NPID"; run_transfers caddy "$CPORT" "$CPID"
done
R[velox,peak]=$(awk '/^VmHWM:/ {printf "%.1f", $2/1024}' "/proc/$VPID/status")
for name in velox nginx caddy; do
	for k in rps p50 p99 cpu; do R[$name,$k]=$(median "${R[$name,${k}_list]:-}"); done
	for k in down1 down2 up1; do
		R[$name,$k]=$(best "${R[$name,${k}_list]}")
		R[$name,${k}med]=$(median "${R[$name,${k}_list]}")
		R[$name,${k}cpu]=$(median "${R[$name,${k}cpu_list]}")
	done
done

# --- report
ratio() { awk -v a="$1" -v b="$2" -v inv="${3:-0}" 'BEGIN { if (b == 0 || a == 0) { print "n/a"; exit } r = inv ? b/a : a/b; printf "%.2f", r }'; }
row() { # LABEL KEY LOWER_IS_BETTER
	local v=${R[velox,$2]:-} n=${R[nginx,$2]:-} c=${R[caddy,$2]:-}
	printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$v" "$n" "$c" "$(ratio "$v" "$n" "$3")" "$(ratio "$v" "$c" "$3")"
}
report() {
	echo "Ratios are velox relative to the other proxy, oriented so that above 1.00 means velox is better."
	echo
	echo "| measure | velox | nginx | caddy | velox vs nginx | velox vs caddy |"
	echo "|---|---:|---:|---:|---:|---:|"
	row "1 KiB GET, requests/s (wrk -t$THREADS -c$CONNS -d$DURATION, HTTP/1.1 keep-alive; median of $ROUNDS)" rps 0
	row "1 KiB GET, p50 latency ms" p50 1
	row "1 KiB GET, p99 latency ms" p99 1
	row "1 KiB GET, proxy CPU µs per request (user+system)" cpu 1
	row "$((BIG >> 20)) MiB download, MB/s (curl, HTTP/1.1)" down1 0
	row "$((BIG >> 20)) MiB download, MB/s (curl, HTTP/2)" down2 0
	row "$((BIG >> 20)) MiB upload, MB/s (curl, HTTP/1.1 chunked)" up1 0
	row "$((BIG >> 20)) MiB download, HTTP/1.1, median MB/s" down1med 0
	row "$((BIG >> 20)) MiB download, HTTP/2, median MB/s" down2med 0
	row "$((BIG >> 20)) MiB upload, median MB/s" up1med 0
	row "$((BIG >> 20)) MiB download, HTTP/1.1, proxy CPU s per GiB (median)" down1cpu 1
	row "$((BIG >> 20)) MiB download, HTTP/2, proxy CPU s per GiB (median)" down2cpu 1
	row "$((BIG >> 20)) MiB upload, proxy CPU s per GiB (median)" up1cpu 1
	row "memory per 1,000 idle keep-alive TLS connections, MiB (1 s after opening)" idle 1
	row "memory per 1,000 idle keep-alive TLS connections, MiB (after ${IDLE_SETTLE} s)" idle_settled 1
	row "resident memory at rest, MiB" base 1
	echo
	echo "Transfer rows: best of $XFER_ROUNDS unless marked median. Velox peak RSS over the whole run: ${R[velox,peak]} MiB."
	echo "wrk errors: velox [${R[velox,errors]:-none}] nginx [${R[nginx,errors]:-none}] caddy [${R[caddy,errors]:-none}]"
	local k other
	for other in nginx caddy; do
		local line="Median of the per-round ratios, velox vs $other (above 1.00: velox faster):"
		for k in down1 down2 up1; do
			line+=" $k $(python3 -c 'import statistics,sys; a,b=(list(map(float,x.split())) for x in sys.argv[1:]); print(f"{statistics.median(x/y for x,y in zip(a,b)):.2f}" if a and b else "n/a")' "${R[velox,${k}_list]:-}" "${R[$other,${k}_list]:-}")"
		done
		echo "$line"
	done
	for name in velox nginx caddy; do
		echo "Rounds, $name: req/s${R[$name,rps_list]:-}; p99 ms${R[$name,p99_list]:-}; CPU µs/req${R[$name,cpu_list]:-}; down h1${R[$name,down1_list]:-}; down h2${R[$name,down2_list]:-}; up${R[$name,up1_list]:-}; CPU s/GiB down h1${R[$name,down1cpu_list]:-}, h2${R[$name,down2cpu_list]:-}, up${R[$name,up1cpu_list]:-}"
	done
}
report
if [[ -n $MARKDOWN ]]; then report >"$MARKDOWN"; fi
