#!/bin/bash
# Starts slapd with the development directory (see Dockerfile). On the
# first start it builds cn=config from config.ldif and loads seed.ldif
# through a private ldapi socket; later starts reuse the state directory.
#
# LDAP_STATE, LDAP_URLS, LDAP_SEED_DIR and LDAP_RUN_AS have container
# defaults; the tests set them to run this same script on loopback.
set -euo pipefail

state=${LDAP_STATE:-/var/lib/velox-ldap}
urls=${LDAP_URLS:-ldap:///}
seed_dir=${LDAP_SEED_DIR:-/usr/local/share/velox-ldap}
run_as=${LDAP_RUN_AS-openldap}
debug=${LDAP_DEBUG:-stats}
admin_dn="cn=admin,dc=example,dc=com"
: "${LDAP_ADMIN_PASSWORD_FILE:?LDAP_ADMIN_PASSWORD_FILE is required}"
: "${LDAP_SERVICE_PASSWORD_FILE:?LDAP_SERVICE_PASSWORD_FILE is required}"

PATH=$PATH:/usr/sbin
# ldapi URLs carry the socket path percent-encoded.
ldapi="ldapi://$(printf '%s' "$state/ldapi" | sed 's|/|%2F|g')"
user_args=()
if [ -n "$run_as" ]; then user_args=(-u "$run_as" -g "$run_as"); fi

# hash FILE: the {SSHA} hash of the password in FILE (without its final
# newline), so no password appears on a command line.
hash() {
  local tmp
  tmp=$(mktemp)
  printf '%s' "$(cat "$1")" > "$tmp"
  slappasswd -n -T "$tmp"
  rm -f "$tmp"
}

if [ ! -e "$state/seeded" ]; then
  rm -rf "$state/slapd.d" "$state/data"
  mkdir -p "$state/slapd.d" "$state/data"
  chmod 0700 "$state"
  admin_hash=$(hash "$LDAP_ADMIN_PASSWORD_FILE")
  service_hash=$(hash "$LDAP_SERVICE_PASSWORD_FILE")
  sed -e "s|@STATE@|$state|g" -e "s|@ADMIN_PASSWORD_HASH@|$admin_hash|" "$seed_dir/config.ldif" \
    | slapadd -n0 -F "$state/slapd.d" -l /dev/stdin
  if [ -n "$run_as" ]; then chown -R "$run_as:$run_as" "$state"; fi

  slapd -F "$state/slapd.d" -h "$ldapi" "${user_args[@]}" -d 0 &
  pid=$!
  pwfile=$(mktemp)
  printf '%s' "$(cat "$LDAP_ADMIN_PASSWORD_FILE")" > "$pwfile"
  for _ in $(seq 1 100); do
    ldapwhoami -x -H "$ldapi" -D "$admin_dn" -y "$pwfile" >/dev/null 2>&1 && break
    sleep 0.1
  done
  sed "s|@SERVICE_PASSWORD_HASH@|$service_hash|" "$seed_dir/seed.ldif" \
    | ldapadd -x -H "$ldapi" -D "$admin_dn" -y "$pwfile" >/dev/null
  rm -f "$pwfile"
  kill "$pid"
  wait "$pid" || true
  touch "$state/seeded"
  echo "loaded the development directory (dc=example,dc=com)" >&2
fi

# -d keeps slapd in the foreground with its log on stderr: a container has
# no syslog.
exec slapd -F "$state/slapd.d" -h "$urls $ldapi" "${user_args[@]}" -d "$debug"
