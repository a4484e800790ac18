#!/bin/bash
# Starts a one-node Swift (see Dockerfile): writes the configuration, builds
# the rings on the first start (and brings them in line with the spec on
# later ones), then runs every server in the foreground of this container.
# If one of them dies the container exits, so that compose restarts it.
set -euo pipefail

state=/srv/swift
user=${SWIFT_USER:?SWIFT_USER (account:user) is required}
key_file=${SWIFT_KEY_FILE:?SWIFT_KEY_FILE is required}
proxy_port=${SWIFT_PROXY_PORT:-8080}
part_power=${SWIFT_PART_POWER:-10}

account=${user%%:*}
name=${user#*:}
# tempauth's user_<account>_<user> lines cannot tell an underscore in a
# name from the separator.
case "$user" in
  *_*|*:*:*|:*|*:) echo "SWIFT_USER must be account:user without underscores, not '$user'" >&2; exit 1 ;;
  *:*) ;;
  *) echo "SWIFT_USER must be account:user, not '$user'" >&2; exit 1 ;;
esac
key=$(cat "$key_file")
[ -n "$key" ] || { echo "$key_file is empty" >&2; exit 1; }

mkdir -p "$state/rings" "$state/node/d1" "$state/cache"
# Not recursive: the data below is the servers' own, and may be large.
chown swift:swift "$state" "$state/node" "$state/node/d1" "$state/cache"

# The hash path secret decides where every object lives: made once per
# volume, never changed afterwards.
if [ ! -s "$state/hash_path_secret" ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/hash_path_secret")
fi
secret=$(cat "$state/hash_path_secret")
cat > /etc/swift/swift.conf <<CONF
[swift-hash]
swift_hash_path_prefix = ${secret:0:32}
swift_hash_path_suffix = ${secret:32}

[storage-policy:0]
name = Policy-0
default = yes
CONF

# One device, so one replica. The servers listen on loopback; only the
# proxy is reachable from the other containers.
cat > "$state/rings.json" <<SPEC
{"part_power": $part_power, "replicas": 1, "min_part_hours": 1,
 "rings": {
  "account":   [{"region": 1, "zone": 1, "ip": "127.0.0.1", "port": 6202, "device": "d1", "weight": 100}],
  "container": [{"region": 1, "zone": 1, "ip": "127.0.0.1", "port": 6201, "device": "d1", "weight": 100}],
  "object":    [{"region": 1, "zone": 1, "ip": "127.0.0.1", "port": 6200, "device": "d1", "weight": 100}]}}
SPEC
/usr/local/bin/velox-swift-rings "$state/rings.json" "$state/rings"
chown -R swift:swift "$state/rings"

common() { # name port bind_ip
  cat <<CONF
[DEFAULT]
bind_ip = $3
bind_port = $2
workers = 1
user = swift
swift_dir = $state/rings
devices = $state/node
# The devices are directories in the volume, not mounted disks.
mount_check = false
disable_fallocate = true
recon_cache_path = $state/cache
log_name = $1
CONF
}

for srv in account:6202 container:6201 object:6200; do
  name_=${srv%%:*} port=${srv#*:}
  { common "$name_" "$port" 127.0.0.1
    cat <<CONF

[pipeline:main]
pipeline = healthcheck $name_-server

[app:$name_-server]
use = egg:swift#$name_

[filter:healthcheck]
use = egg:swift#healthcheck
CONF
    # The updaters started below read their own sections.
    case $name_ in container|object) printf '\n[%s-updater]\n' "$name_" ;; esac
  } > "/etc/swift/$name_-server.conf"
done

{ common proxy "$proxy_port" 0.0.0.0
  cat <<CONF

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_${account}_${name} = $key .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:11211
CONF
  for f in catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk tempurl ratelimit copy container-quotas account-quotas slo dlo versioned_writes symlink; do
    printf '\n[filter:%s]\nuse = egg:swift#%s\n' "$f" "${f//-/_}"
  done
} > /etc/swift/proxy-server.conf
chmod 0640 /etc/swift/proxy-server.conf
chgrp swift /etc/swift/proxy-server.conf

pids=()
start() { "$@" & pids+=($!); }
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait; }
trap 'stop; exit 0' TERM INT

start memcached -u memcache -l 127.0.0.1 -p 11211 -U 0
# -v logs to stderr (docker logs): a container has no syslog.
start swift-account-server /etc/swift/account-server.conf -v
start swift-container-server /etc/swift/container-server.conf -v
start swift-object-server /etc/swift/object-server.conf -v
# Updaters keep account usage and listings current; with one replica
# there is nothing to replicate.
start swift-container-updater /etc/swift/container-server.conf -v
start swift-object-updater /etc/swift/object-server.conf -v
start swift-proxy-server /etc/swift/proxy-server.conf -v

wait -n || true
echo "a Swift server exited; stopping the others" >&2
stop
exit 1
