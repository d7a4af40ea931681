#!/usr/bin/env bash
# Score a remove-and-retrain fine-tune of xception against issue #21's bar, step by step:
#   scripts/xception_roar_eval.sh RUN_DIR [EVAL_NAME]
# RUN_DIR holds the float model.keras of `ml.train --fit-only`. Steps (each logged):
#  1. pack it to 7 bits (ml.weight_pack), as the shipped weights are, beside a copy of the
#     shipped metadata (borrowed cnn guard, no flip);
#  2. refit the temperature on the validation split (ml.recalibrate);
#  3. accuracy and ECE on the validation split, the guard counted (ml.evaluate);
#  4. Grad-CAM against random deletion on 200 validation images (research.cam_variants),
#     then the controls of docs/explainability.md: blurred and constant removal, random
#     maps of 5x5 and 20x20. Set ROAR_CONTROLS=0 to stop after the main setting.
# Nothing here touches ml/weights: shipping is a separate, deliberate copy.
set -euo pipefail
RUN=${1:?run folder with model.keras}
NAME=${2:-$(basename "$RUN")}
PY=${PY:-.venv/bin/python}
PACKED="$RUN/packed"
EVAL="docs/eval/$NAME"
mkdir -p "$PACKED" "$EVAL" "$EVAL/variants"
log() { echo "[$(date -u +%H:%M:%S)] $*"; }

log "pack $RUN/model.keras"
"$PY" -m ml.weight_pack "$RUN/model.keras" --bits 7 --out "$PACKED/weights.npz"
cp ml/weights/xception/metadata.json "$PACKED/metadata.json"
log "recalibrate (temperature on the validation split, no flip, cnn's guard)"
"$PY" -m ml.recalibrate --model "$PACKED" --tta none --guard-model cnn
log "evaluate on the validation split"
"$PY" -m ml.evaluate --model "$PACKED" --split validation --out "$EVAL"
log "Grad-CAM vs random deletion, 200 validation images (the study's setting)"
"$PY" -m research.cam_variants --model "$PACKED" -n 200 --methods gradcam --out "$EVAL/variants/impute-own-grid.json"
if [ "${ROAR_CONTROLS:-1}" = 1 ]; then
  for removal in blur constant; do
    log "control: removal=$removal"
    "$PY" -m research.cam_variants --model "$PACKED" -n 200 --methods gradcam --removal "$removal" \
        --out "$EVAL/variants/$removal-own-grid.json"
  done
  for grid in 5 20; do
    log "control: random maps ${grid}x${grid}"
    "$PY" -m research.cam_variants --model "$PACKED" -n 200 --methods gradcam --random-grid "$grid" \
        --out "$EVAL/variants/impute-grid$grid.json"
  done
fi
log "done: $EVAL"
