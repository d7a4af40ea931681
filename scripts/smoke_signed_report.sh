#!/usr/bin/env bash
# Smoke check of `make run` on this checkout: start the service, upload one real slice
# through the API, wait for awaiting_review, sign as the first admin, print the signed
# status, stop everything. Needs ../shared/datasets (or SMOKE_IMAGE=path/to/image).
#   bash scripts/smoke_signed_report.sh          (PORT=8765 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8765}
B=http://127.0.0.1:$PORT
SLICES=(../shared/datasets/brain-tumor-mri/Training/glioma/*.jpg)
IMAGE=${SMOKE_IMAGE:-${SLICES[0]}}
[ -f "$IMAGE" ] || { echo "smoke: no image at $IMAGE (set SMOKE_IMAGE)"; exit 1; }
# A private var/ (database, media, broker data), so earlier runs do not count as duplicates.
export BRAINAI_VAR_DIR=${BRAINAI_VAR_DIR:-$(mktemp -d /tmp/brainai-smoke-XXXX)}
LOG=$BRAINAI_VAR_DIR/smoke-run.log
# Its own process group, so that stopping it stops make, scripts/run.py and all it started.
PORT=$PORT setsid make run > "$LOG" 2>&1 &
RUN=$!
trap 'kill -INT -- -$RUN 2>/dev/null; wait $RUN 2>/dev/null; true' EXIT
for _ in $(seq 1 300); do curl -sf "$B/healthz" >/dev/null && break; sleep 2; done
curl -sf "$B/healthz" || { echo "smoke: the service did not come up; see $LOG"; exit 1; }
echo
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
TOKEN=$(curl -s -X POST "$B/api/v1/auth/token/" -d username=admin -d "password=$(cat "$BRAINAI_VAR_DIR/admin-password.txt")" | json 'd["token"]')
H="Authorization: Token $TOKEN"
STUDY=$(curl -s -H "$H" -F "files=@$IMAGE" -F patient_id=SMOKE-1 "$B/api/v1/uploads/" | json 'd["studies"][0]["id"]')
for _ in $(seq 1 200); do
  STATUS=$(curl -s -H "$H" "$B/api/v1/studies/$STUDY/" | json 'd["status"]')
  case $STATUS in awaiting_review|failed) break ;; esac
  sleep 3
done
echo "smoke: study $STUDY is $STATUS"
[ "$STATUS" = awaiting_review ] || exit 1
REPORT=$(curl -s -H "$H" "$B/api/v1/studies/$STUDY/" | json 'd["report"]["id"]')
SIGNED=$(curl -s -H "$H" -H "Content-Type: application/json" -X POST \
  -d '{"findings":"Smoke check.","impression":"Smoke check (AI-assisted)."}' \
  "$B/api/v1/reports/$REPORT/sign/" | json 'd["status"]')
echo "smoke: report $REPORT is $SIGNED"
[ "$SIGNED" = signed ]
