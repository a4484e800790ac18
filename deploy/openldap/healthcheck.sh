#!/bin/bash
# Healthy means Velox can use it: the service account binds and sees the
# seeded users.
set -euo pipefail
pw=$(cat "$LDAP_SERVICE_PASSWORD_FILE")
ldapsearch -x -LLL -o nettimeout=3 -H ldap://127.0.0.1/ \
  -D cn=velox,ou=services,dc=example,dc=com -w "$pw" \
  -b ou=people,dc=example,dc=com '(uid=alice)' dn | grep -q '^dn: uid=alice,'
