#!/usr/bin/env bash
# The last act of `make demo`: the protected instance serves on loopback, a MID server
# runs a signed command, and a command changed in the database is denied and logged.
# Expects demo.sh's variables: OUT DEV PROD, and the helpers run/step/section/jget.
set -euo pipefail

section "Last act: a MID server runs only signed code"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MIDDIR="$OUT/mid"
mkdir -p "$MIDDIR"
cat > "$MIDDIR/job.py" <<'PY'
# Signed on the trusted instance: asks the MID server "demo" to run two commands.
ecc.enqueue("mid.server.demo", "Command", "uname", payload={"argv": ["uname", "-sr"]})
ecc.enqueue("mid.server.demo", "Command", "whoami", payload={"argv": ["id", "-un"]})
log.info("queued two commands for mid.server.demo")
PY
JOB="Demo: ask the MID who it is"

step "On dev: write the job, sign it for the Circle of Trust, export it"
export TRUSTCIRCLE_HOME="$DEV"
run record add --table sysauto_script --field "name=$JOB" --field "script=@$MIDDIR/job.py" \
  --field run_type=on_demand --field active=true --field run_as=admin
run job export-signed "$JOB"
id=$(trustcircle updateset list --json | NAME="$JOB" jget \
  '[s["sys_id"] for s in d if s["name"] == __import__("os").environ["NAME"] and s["kind"] == "local"][-1]')
run updateset export "$id" --out "$OUT/xml/3.xml"

step "On prod: import, preview, commit; a MID server account; serve on 127.0.0.1:$PORT"
export TRUSTCIRCLE_HOME="$PROD"
rid=$(trustcircle updateset import "$OUT/xml/3.xml" --json | jget 'd["sys_id"]')
run updateset preview "$rid" >/dev/null
run updateset commit "$rid"
trustcircle user add demo-mid --roles mid_server > "$MIDDIR/mid.token"
chmod 600 "$MIDDIR/mid.token"
trustcircle serve --port "$PORT" > "$OUT/server.log" 2>&1 &
SERVER=$!
MID=""
cleanup() { [ -n "$MID" ] && kill "$MID" 2>/dev/null; kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
python3 - "$PORT" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1).read()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the protected instance's server did not start: see demo-out/server.log")
PY

step "Execute the signed job: the tracker notarizes its two messages"
run job execute "$JOB"
trustcircle ecc list --json | jget '"\n".join(m["sys_id"] + "  " + m["name"] + "  notarized=" + str(m["notarization"] is not None) for m in d if m["queue"] == "output")'

step "Someone with database access changes one byte of the second command"
python - "$PROD" <<'PY'
# straight into the database, whatever its URL (SQLite or PostgreSQL), past every API
import sys
from pathlib import Path
from sqlalchemy import create_engine, text
from trustcircle.platform.home import load_config
engine = create_engine(load_config(Path(sys.argv[1])).database_url)
with engine.begin() as db:
    db.execute(text("""UPDATE ecc_queue SET payload = replace(payload, '"id"', '"ie"')
                       WHERE name = 'whoami' AND queue = 'output'"""))
    print("ecc_queue payload of 'whoami' now:", db.execute(text(
        "SELECT payload FROM ecc_queue WHERE name='whoami' AND queue='output'")).scalar())
PY

step "Start the MID server 'demo' (anchors and the runtime certificate pinned in its own config) and validate it"
RUNTIME_FP=$(trustcircle kmf certs --json | jget '[c["fingerprint"] for c in d if c["module"] == "cm_runtime"][0]')
cat > "$MIDDIR/boot-config.yaml" <<'YAML'
security:
  eccFirewall:
    mode: enforcing
    rules: []
YAML
cat > "$MIDDIR/mid.yaml" <<YAML
instance_url: http://127.0.0.1:$PORT
name: demo
token_file: mid.token
anchors: [../pki/root-ca.pem]
notarizers: [$RUNTIME_FP]
instance_name: prod
work_dir: work
log_dir: logs
boot_config: boot-config.yaml
poll_wait: 2
jdbc: {}
YAML
trustcircle mid start --config "$MIDDIR/mid.yaml" > "$OUT/mid.out" 2>&1 &
MID=$!
for _ in $(seq 100); do
  trustcircle mid list --json | jget '"demo" in [m["name"] for m in d]' | grep -q True && break
  sleep 0.2
done
run mid validate demo
for _ in $(seq 150); do
  left=$(trustcircle ecc list --json | jget 'sum(1 for m in d if m["queue"] == "output" and m["state"] in ("ready", "processing"))')
  [ "$left" = 0 ] && break
  sleep 0.2
done

step "The signed command ran; the changed one was denied"
run ecc list
ran=$(trustcircle ecc list --json | jget '[m["sys_id"] for m in d if m["name"] == "uname" and m["queue"] == "output"][0]')
run ecc show "$ran"
run codesigning log
printf '\nMID log:\n'
grep -h "ECC message execution denied" "$MIDDIR"/logs/*.log || true
