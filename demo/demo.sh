#!/usr/bin/env bash
# make demo: the seed's 18 steps ("Turn on Code Signing") across a trusted and a protected
# instance home on embedded SQLite, with a demo PKI.
set -euo pipefail
export COLUMNS=${COLUMNS:-150}
OUT=${DEMO_OUT:-demo-out}
rm -rf "$OUT"
mkdir -p "$OUT/xml"
DEV="$OUT/dev"
PROD="$OUT/prod"
JOB_ON="Turn on Code Signing Property"
JOB_OFF="Turn off Code Signing Property"

bold=$'\033[1m'; dim=$'\033[2m'; off=$'\033[0m'
[ -t 1 ] || { bold=""; dim=""; off=""; }
section() { printf '\n%s### %s%s\n' "$bold" "$*" "$off"; }
step() { printf '\n%sStep %s%s\n' "$bold" "$*" "$off"; }
run() { printf '%s$ trustcircle' "$dim"; printf ' %q' "$@"; printf '%s\n' "$off"; trustcircle "$@"; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

section "Set-up: two instance homes and a demo PKI"
# DEMO_DEV_DB / DEMO_PROD_DB: any SQLAlchemy URL (e.g. PostgreSQL) instead of embedded SQLite
run init --home "$DEV" --role trusted --name dev ${DEMO_DEV_DB:+--db "$DEMO_DEV_DB"}
run init --home "$PROD" --role protected --name prod ${DEMO_PROD_DB:+--db "$DEMO_PROD_DB"}
run pki demo --out "$OUT/pki"
PW="$OUT/pki/password.txt"
run trust-anchor add "$OUT/pki/root-ca.pem" --home "$DEV"
for module in cm_code_signing cm_code_attest; do
  run kmf import --home "$DEV" --module "$module" --p12 "$OUT/pki/$module.p12" --password-file "$PW"
done
# the protected instance's first trust: the CA, added by its security admin
run trust-anchor add "$OUT/pki/root-ca.pem" --home "$PROD"
run kmf import --home "$PROD" --module cm_runtime --p12 "$OUT/pki/cm_runtime.p12" --password-file "$PW"

section "Trusted instance (dev)"
export TRUSTCIRCLE_HOME="$DEV"
step "1. All > System Definition > Scheduled Jobs"
run job list
step "2. Search for \"*Turn\" in the name field"
run job list --name '*Turn'
step "3. Select Turn on Code Signing Property"
run job show "$JOB_ON"
step "4. Sign the certificate, create the update set: Export signed job to production"
run cert export-to-production --module cm_code_attest
run job export-signed "$JOB_ON"
step "5. System Update Sets > Local Update Sets"
run updateset list
step "6. Open each Code Signing property update set and select Export to XML"
i=0
for name in code_signing_key_publicsigver_cm_code_attest "$JOB_ON"; do
  i=$((i + 1))
  id=$(trustcircle updateset list --json | NAME="$name" jget \
    '[s["sys_id"] for s in d if s["name"] == __import__("os").environ["NAME"] and s["kind"] == "local"][-1]')
  run updateset export "$id" --out "$OUT/xml/$i.xml"
done

section "Protected instance (prod)"
step "7. Log in to the production instance"
export TRUSTCIRCLE_HOME="$PROD"
printf 'acting as the admin of %s\n' "$PROD"
step "8. System Update Sets > Retrieved Update Sets"
run updateset list
for f in "$OUT"/xml/1.xml "$OUT"/xml/2.xml; do
  step "9. Import Update Set from XML: $(basename "$f")"
  id=$(trustcircle updateset import "$f" --json | jget 'd["sys_id"]')
  printf 'retrieved update set %s\n' "$id"
  step "10. Preview and commit the update set"
  run updateset preview "$id"
  run updateset commit "$id"
done
run cot friends
step "11. All > System Definition > Scheduled Jobs"
run job list --name '*Turn'
step "12. Open the Turn on Code Signing Property job record"
run job show "$JOB_ON"
step "13. Prerequisite Check"
run job prereq-check "$JOB_ON"
step "14. Execute Now"
run job execute "$JOB_ON"
step "15. sn_kmf_record_signature.list filtered to purpose Circle of Trust"
run signature list --purpose "Circle of Trust"
step "16. sys_properties.list"
run property list com.snc.kmf
step "17. com_snc_kmf_signature.validation.flag is true"
flag=$(trustcircle property get com_snc_kmf_signature.validation.flag)
printf 'com_snc_kmf_signature.validation.flag = %s\n' "$flag"
[ "$flag" = true ] || { echo "BUG: the flag is not true" >&2; exit 1; }
step "18. A new property com_snc_kmf_signature.validation.certificate is listed"
run property get com_snc_kmf_signature.validation.certificate

section "What the protected instance refuses"
printf 'A second execution of the same signed job (replay):\n'
if trustcircle job execute "$JOB_ON"; then echo "BUG: replay executed" >&2; exit 1; fi
printf 'Turning validation off by hand, as admin:\n'
if trustcircle property set com.snc.kmf.signature.validation.flag false; then
  echo "BUG: protected property changed" >&2; exit 1
fi
printf 'Signing code on production:\n'
if trustcircle job export-signed "$JOB_OFF"; then echo "BUG: production signed" >&2; exit 1; fi
run cot policy
run audit verify

# shellcheck source=demo/mid_act.sh
. "$(dirname "$0")/mid_act.sh"
printf '\n%sDone: Code Signing is on in prod, its MID runs only signed code, and every step is in the audit log.%s\n' "$bold" "$off"
