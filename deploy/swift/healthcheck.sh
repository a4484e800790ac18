#!/bin/bash
# Healthy means usable: every server answers its healthcheck, and a tempauth
# login reaches the account. The proxy's own /healthcheck says OK even when
# the servers behind it are down.
set -euo pipefail
port=${SWIFT_PROXY_PORT:-8080}
for p in 6200 6201 6202 "$port"; do
  curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$p/healthcheck"
done
headers=$(curl -fsS -o /dev/null -D - --max-time 5 \
  -H "X-Auth-User: $SWIFT_USER" -H "X-Auth-Key: $(cat "$SWIFT_KEY_FILE")" \
  "http://127.0.0.1:$port/auth/v1.0" | tr -d '\r')
token=$(sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p' <<<"$headers")
url=$(sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: //p' <<<"$headers")
curl -fsS -o /dev/null --max-time 5 -I -H "X-Auth-Token: $token" "$url"
