#!/bin/sh
# Continue a denoiser run on a lent GPU machine (the `device` tool), for MINUTES of
# training; everything after MINUTES goes to tools/denoise/train.py (loss weights,
# --lr, --batch, ...: a resumed run takes them from the command line, not the
# checkpoint). Run from the repository root there, with .gpu/ carried:
#   .gpu/denoise-train.npz   tools/denoise/pack.py's subset of the training data
#   .gpu/denoise/last.pt     optional: the checkpoint to continue (a copy of a run's
#                            last.pt); without it a new run starts from the weights
#                            file $INIT_OSW (default: the shipped models/denoise-16k.osw;
#                            --model-cfg among the options may widen it, init_osw.py)
# Writes to $OUT: train.log, last.pt (to continue from next time) and the last five
# snap-STEP.pt (averaged weights, no optimiser) to score here with
# tools/denoise/evaluate.py --ckpt and export with tools/denoise/export.py.
# Steps and the measured numbers: tools/denoise/README.md, "Training on a lent GPU".
set -eu
MIN=${1:?usage: tools/gpu/denoise.sh MINUTES [train.py options]}
shift
PY=${PY:-python3}
: "${OUT:?OUT: the folder to write results to (the device tool sets it)}"
[ -f .gpu/denoise-train.npz ] || { echo "denoise.sh: .gpu/denoise-train.npz missing (see tools/denoise/README.md)" >&2; exit 2; }
RUN=${RUN:-/tmp/oscine-denoise-run}
rm -rf "$RUN" && mkdir -p "$RUN"
INIT=
if [ -f .gpu/denoise/last.pt ]; then cp .gpu/denoise/last.pt "$RUN/last.pt"
else
    INIT=${INIT_OSW:-models/denoise-16k.osw}
    [ -f "$INIT" ] || { echo "denoise.sh: no .gpu/denoise/last.pt and no weights file $INIT" >&2; exit 2; }
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
WORKERS=${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}
status=0
PYTHONUNBUFFERED=1 "$PY" tools/denoise/train.py --resume --ckpt-dir "$RUN" --pack .gpu/denoise-train.npz \
    --eval-every 0 --workers "$WORKERS" --minutes "$MIN" --ckpt-every 2 \
    --snapshot-every "$(awk -v m="$MIN" 'BEGIN { printf "%.2f", m / 5 }')" ${INIT:+--init-osw "$INIT"} "$@" \
    > "$OUT/train.log" 2>&1 || status=$?
tail -n 5 "$OUT/train.log"
cp "$RUN/last.pt" "$OUT/last.pt"
ls "$RUN"/snap-*.pt 2>/dev/null | sort | tail -n 5 | while read -r f; do cp "$f" "$OUT/"; done
ls -l "$OUT"
exit $status
