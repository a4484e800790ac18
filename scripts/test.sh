#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Go installed:
# installs the real components the tests need (PostgreSQL, OpenStack Swift,
# OpenLDAP, Samba AD, litmus, rclone, the Nextcloud and ownCloud sync clients,
# Chromium; Ruby and docker-compose to check the Chef cookbooks and
# docker-compose.yml) from Debian's packages, then
# runs every test with VELOX_REQUIRE_INTEGRATION=1 so that a missing
# component fails the run instead of skipping tests. The tests start each
# component themselves on loopback, in temporary directories, and stop it
# when they finish.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  postgresql
  swift swift-proxy swift-object swift-account swift-container python3-swiftclient memcached rsync
  slapd ldap-utils samba winbind krb5-user smbclient
  litmus rclone nextcloud-desktop-cmd owncloud-client-cmd
  ruby docker-compose iproute2 curl
  chromium chromium-driver
)

# Node.js and npm drive the browser tests; use the machine's if it has them.
command -v npm >/dev/null || packages+=(nodejs npm)

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  $sudo apt-get update -qq
  # policy-rc.d keeps the packages' own services (slapd on 389, samba)
  # from starting: the tests run private instances.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$made_policy" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
fi
# Where systemd started them anyway, stop the packaged daemons: Samba AD
# needs the LDAP ports.
for svc in slapd samba-ad-dc smbd nmbd winbind; do
  $sudo service "$svc" stop >/dev/null 2>&1 || true
done

export VELOX_REQUIRE_INTEGRATION=1
# Browser tests save a screenshot per scenario here.
export VELOX_TEST_ARTIFACTS="${VELOX_TEST_ARTIFACTS:-$PWD/test-artifacts}"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
# The browser tests drive Chromium with the npm package playwright-core
# (Node.js 20 or newer); without it they fail, naming what is missing.
if [ ! -d web/e2e/node_modules ] && command -v npm >/dev/null; then
  echo "== npm ci (web/e2e)"
  (cd web/e2e && npm ci --no-audit --no-fund) || echo "npm ci failed: the browser tests will fail"
fi
echo "== go test"
# -count=1: several tests build and run the velox binary, which the test
# cache cannot see, so cached results could hide a regression.
go test -race -count=1 -timeout 40m "$@" ./...
