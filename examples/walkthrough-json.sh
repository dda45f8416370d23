#!/usr/bin/env bash
# The same lifecycle in application/occi+json: discover, create with templates and an inline
# link, act, update, save an image, delete. Needs curl and python3 (for reading JSON).
# Usage: OCCI_URL=http://127.0.0.1:8080 OCCI_PASSWORD=... examples/walkthrough-json.sh
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
ACT="http://schemas.ogf.org/occi/infrastructure/compute/action#"
J=(-sS -u "${OCCI_USER:-demo}:${OCCI_PASSWORD:-}" -H 'Accept: application/occi+json' -H 'Content-Type: application/occi+json')

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {'d': d}))" "$1"; }
location() { tr -d '\r' | sed -n 's/^Location: //Ip'; }

step "Discover"
os_tpl=$(curl "${J[@]}" "$URL/-/" | jget "[m['scheme']+m['term'] for m in d['mixins'] if '${INFRA}os_tpl' in m.get('depends', [])][0]")
echo "OS template: $os_tpl"

step "Create a network, then a compute with templates and an inline network interface"
net=$(curl "${J[@]}" -X POST "$URL/network/" -D - -o /dev/null \
      -d "{\"kind\": \"${INFRA}network\", \"attributes\": {\"occi.core.title\": \"net\"}}" | location)
vm=$(curl "${J[@]}" -X POST "$URL/compute/" -D - -o /dev/null -d "{
  \"kind\": \"${INFRA}compute\",
  \"mixins\": [\"${CRTP}large\", \"$os_tpl\"],
  \"attributes\": {\"occi.core.title\": \"db\", \"occi.compute.hostname\": \"db1\"},
  \"links\": [{\"kind\": \"${INFRA}networkinterface\", \"target\": {\"location\": \"${net#$URL}\"}}]
}" | location)
[ -n "$vm" ] || fail "no Location for the compute"
[ "$(curl "${J[@]}" "$vm" | jget "d['attributes']['occi.compute.cores']")" = 4 ] || fail "large means 4 cores"
[ "$(curl "${J[@]}" "$vm" | jget "len(d['links'])")" = 1 ] || fail "the inline link is missing"

step "Start, suspend, start"
for a in start suspend start; do
  curl "${J[@]}" -X POST "$vm?action=$a" -d "{\"action\": \"${ACT}$a\"}" >/dev/null
done
[ "$(curl "${J[@]}" "$vm" | jget "d['attributes']['occi.compute.state']")" = active ] || fail "not active"

step "Resize by updating memory"
curl "${J[@]}" -X POST "$vm" -d '{"attributes": {"occi.compute.memory": 6.0}}' >/dev/null
[ "$(curl "${J[@]}" "$vm" | jget "d['attributes']['occi.compute.memory']")" = 6.0 ] || fail "memory not updated"

step "Save it as a new image"
img=$(curl "${J[@]}" -X POST "$vm?action=save" -d "{\"action\": \"${ACT}save\", \"attributes\": {\"name\": \"db-golden\"}}" \
      | jget "d['scheme'] + d['term']")
curl "${J[@]}" "$URL/-/" | jget "[m['scheme']+m['term'] for m in d['mixins']]" | grep -qF "$img" || fail "saved image not listed"

step "Delete"
for r in "$vm" "$net"; do
  [ "$(curl "${J[@]}" -o /dev/null -w '%{http_code}' -X DELETE "$r")" = 200 ] || fail "DELETE $r"
done
[ "$(curl "${J[@]}" -o /dev/null -w '%{http_code}' "$vm")" = 404 ] || fail "compute still there"
echo; echo "walkthrough (JSON) passed"
