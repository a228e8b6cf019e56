#!/usr/bin/env bash
# make demo: a trusted instance, its demo PKI, a signed record, and a tampered one refused.
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
rm -rf "$OUT"
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Create the trusted instance 'dev'"
trustcircle init --home "$OUT/dev" --role trusted --name dev
export TRUSTCIRCLE_HOME="$OUT/dev"

step "Create a demo PKI (root CA, intermediate CA, one RSA-4096 code-signing key per module)"
trustcircle pki demo --out "$OUT/pki"

step "Trust the demo root CA and load the keys into cm_code_signing and cm_code_attest"
trustcircle trust-anchor add "$OUT/pki/root-ca.pem"
for module in cm_code_signing cm_code_attest; do
  trustcircle kmf import --module "$module" --p12 "$OUT/pki/$module.p12" \
    --password-file "$OUT/pki/password.txt"
done
trustcircle kmf certs

step "Add a script include and sign it"
ID=$(trustcircle record add --table sys_script_include --field name=Hello \
  --field api_name=global.Hello --field 'script=gs.info("hello")' --field active=true)
trustcircle record sign --table sys_script_include --id "$ID"
trustcircle record verify --table sys_script_include --id "$ID"

step "Change the signed script: verification now refuses it"
trustcircle record update --table sys_script_include --id "$ID" --field 'script=gs.info("evil")'
if trustcircle record verify --table sys_script_include --id "$ID"; then
  echo "BUG: a tampered record verified" >&2; exit 1
fi

step "Nobody, admin included, can flip a protected property by hand"
if trustcircle property set com.snc.kmf.signature.validation.flag true; then
  echo "BUG: a protected property changed" >&2; exit 1
fi

step "The audit log is intact"
trustcircle audit verify
