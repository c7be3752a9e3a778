#!/bin/sh
# Train the vocoder on a lent GPU machine (the `device` tool) for MINUTES; everything
# after MINUTES goes to tools/vocoder/train.py (--batch, --lr, and for a new run
# --model-cfg). Run from the repository root there, with carried:
#   .gpu/vocoder-train.npz   tools/vocoder/pack.py's subset of the training speech
#   .gpu/vocoder/last.pt     optional: the run to continue, or
#   .gpu/vocoder/init.pt     optional: weights to start a new run from (--init; a
#                            snapshot of an earlier run: the optimiser starts afresh)
# Writes to $OUT: train.log, last.pt when it is under the device tool's 16 MiB a
# file (the shipped size's is 23 MB: continue from a snapshot with init.pt instead)
# and the last four snap-STEP.pt (averaged weights) to score here
# (tools/vocoder/export.py, then tools/eval_vocoder).
# Steps: tools/vocoder/README.md, "Training on a lent GPU".
set -eu
MIN=${1:?usage: tools/gpu/vocoder.sh MINUTES [train.py options]}
shift
PY=${PY:-python3}
: "${OUT:?OUT: the folder to write results to (the device tool sets it)}"
[ -f .gpu/vocoder-train.npz ] || { echo "vocoder.sh: .gpu/vocoder-train.npz missing (see tools/vocoder/README.md)" >&2; exit 2; }
RUN=${RUN:-/tmp/oscine-vocoder-run}
rm -rf "$RUN" && mkdir -p "$RUN"
INIT=
if [ -f .gpu/vocoder/last.pt ]; then cp .gpu/vocoder/last.pt "$RUN/last.pt"
elif [ -f .gpu/vocoder/init.pt ]; then INIT=.gpu/vocoder/init.pt; fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
status=0
PYTHONUNBUFFERED=1 "$PY" tools/vocoder/train.py --resume --ckpt-dir "$RUN" --pack .gpu/vocoder-train.npz \
    --eval-every 0 --minutes "$MIN" --ckpt-every 2 \
    --snapshot-every "$(awk -v m="$MIN" 'BEGIN { printf "%.2f", m / 4 }')" ${INIT:+--init "$INIT"} "$@" \
    > "$OUT/train.log" 2>&1 || status=$?
tail -n 5 "$OUT/train.log"
if [ -f "$RUN/last.pt" ]; then
    if [ "$(stat -c %s "$RUN/last.pt")" -le 16000000 ]; then cp "$RUN/last.pt" "$OUT/last.pt"
    else echo "vocoder.sh: last.pt is over 16 MB and stays there; continue from a snapshot (init.pt)"; fi
fi
ls "$RUN"/snap-*.pt 2>/dev/null | sort | tail -n 4 | while read -r f; do cp "$f" "$OUT/"; done
ls -l "$OUT"
exit $status
