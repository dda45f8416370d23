#!/usr/bin/env bash
# The lifecycle of a virtual machine with curl and OCCI text/plain headers:
# discover, create with templates, act, link, update, delete. Each step checks what it did.
# Usage: OCCI_URL=http://127.0.0.1:8080 OCCI_PASSWORD=... examples/walkthrough-text.sh
# as user OCCI_USER (demo); OCCI_PASSWORD defaults to the demo password in the file the server's
# first start wrote (OCCI_CREDENTIALS, ./occi-credentials).
set -euo pipefail
URL=${OCCI_URL:-http://127.0.0.1:8080}
CREDENTIALS=${OCCI_CREDENTIALS:-occi-credentials}
if [ -z "${OCCI_PASSWORD:-}" ] && [ -r "$CREDENTIALS" ]; then
  OCCI_PASSWORD=$(sed -n 's/^OCCI_DEMO_PASSWORD=//p' "$CREDENTIALS")
fi
INFRA="http://schemas.ogf.org/occi/infrastructure#"
CRTP="http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"
OCCI=(-sS -u "${OCCI_USER:-demo}:${OCCI_PASSWORD:-}" -H 'Accept: text/plain' -H 'Content-Type: text/plain')

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
expect() { grep -qF -- "$1" <<<"$2" || fail "expected '$1' in: $2"; }

step "Discover: the query interface lists the compute kind and the resource templates"
model=$(curl "${OCCI[@]}" "$URL/-/")
expect "Category: compute; scheme=\"$INFRA\"; class=\"kind\"" "$model"
expect "small; scheme=\"$CRTP\"" "$model"
os_tpl=$(grep -m1 'rel="http://schemas.ogf.org/occi/infrastructure#os_tpl"' <<<"$model" \
         | sed -E 's/^Category: ([^;]+); scheme="([^"]+)".*/\1 \2/')
read -r os_term os_scheme <<<"$os_tpl"
echo "using OS template $os_scheme$os_term"

step "Create a network and a compute on it, from the 'medium' template and that image"
net=$(curl "${OCCI[@]}" -X POST "$URL/network/" -D - -o /dev/null \
      -H "Category: network; scheme=\"$INFRA\"; class=\"kind\"" \
      -H 'X-OCCI-Attribute: occi.core.title="backend net", occi.network.vlan=42' \
      | tr -d '\r' | sed -n 's/^Location: //Ip')
[ -n "$net" ] || fail "no Location for the network"
vm=$(curl "${OCCI[@]}" -X POST "$URL/compute/" -D - -o /dev/null \
     -H "Category: compute; scheme=\"$INFRA\"; class=\"kind\", medium; scheme=\"$CRTP\"; class=\"mixin\", $os_term; scheme=\"$os_scheme\"; class=\"mixin\"" \
     -H 'X-OCCI-Attribute: occi.core.title="web server", occi.compute.hostname="web1"' \
     -H "Link: <${net#$URL}>; rel=\"${INFRA}network\"; category=\"${INFRA}networkinterface\"" \
     | tr -d '\r' | sed -n 's/^Location: //Ip')
[ -n "$vm" ] || fail "no Location for the compute"
echo "created $vm"
body=$(curl "${OCCI[@]}" "$vm")
expect 'occi.compute.cores=2' "$body"
expect 'occi.compute.state="inactive"' "$body"
expect "category=\"${INFRA}networkinterface\"" "$body"

step "Start it"
curl "${OCCI[@]}" -X POST "$vm?action=start" \
     -H "Category: start; scheme=\"http://schemas.ogf.org/occi/infrastructure/compute/action#\"; class=\"action\"" >/dev/null
expect 'occi.compute.state="active"' "$(curl "${OCCI[@]}" "$vm")"

step "Attach a 10 GB disk with a storage link"
disk=$(curl "${OCCI[@]}" -X POST "$URL/storage/" -D - -o /dev/null \
       -H "Category: storage; scheme=\"$INFRA\"; class=\"kind\"" \
       -H 'X-OCCI-Attribute: occi.storage.size=10.0' | tr -d '\r' | sed -n 's/^Location: //Ip')
code=$(curl "${OCCI[@]}" -o /dev/null -w '%{http_code}' -X POST "$URL/link/storagelink/" \
       -H "Category: storagelink; scheme=\"$INFRA\"; class=\"kind\"" \
       -H "X-OCCI-Attribute: occi.core.source=\"${vm#$URL}\", occi.core.target=\"${disk#$URL}\", occi.storagelink.mountpoint=\"/data\"")
[ "$code" = 201 ] || fail "storage link answered $code"
expect "<${disk#$URL}>" "$(curl "${OCCI[@]}" "$vm")"

step "Update: rename it (partial update)"
curl "${OCCI[@]}" -X POST "$vm" -H 'X-OCCI-Attribute: occi.core.title="frontend"' >/dev/null
expect 'occi.core.title="frontend"' "$(curl "${OCCI[@]}" "$vm")"

step "Stop it gracefully, then delete everything"
curl "${OCCI[@]}" -X POST "$vm?action=stop" \
     -H "Category: stop; scheme=\"http://schemas.ogf.org/occi/infrastructure/compute/action#\"; class=\"action\"" \
     -H 'X-OCCI-Attribute: method="graceful"' >/dev/null
expect 'occi.compute.state="inactive"' "$(curl "${OCCI[@]}" "$vm")"
for r in "$vm" "$disk" "$net"; do
  code=$(curl "${OCCI[@]}" -o /dev/null -w '%{http_code}' -X DELETE "$r")
  [ "$code" = 200 ] || fail "DELETE $r answered $code"
done
code=$(curl "${OCCI[@]}" -o /dev/null -w '%{http_code}' "$vm")
[ "$code" = 404 ] || fail "deleted compute still answers $code"
echo; echo "walkthrough (text/plain) passed"
