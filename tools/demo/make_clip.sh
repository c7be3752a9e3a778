#!/bin/sh
# Build the denoiser demo clip: 8.5 s of synthetic speech (espeak-ng) in
# synthetic noise (sox: brown + pink noise with a slow swell, a mains hum and
# a fan-like tone) at 5 dB SNR, 16 kHz mono 16-bit WAV.
#
#   sh tools/demo/make_clip.sh [OUTDIR]      (default tools/demo)
#
# Writes OUTDIR/noisy-speech.wav and OUTDIR/clean-speech.wav; clean is exactly
# the speech inside noisy (same gain, same alignment), so the pair can be
# scored. Nothing comes from ../shared: both sources are generated here, so
# the clip is free of any corpus licence. Needs espeak-ng and sox (Debian
# packages of those names). sox runs with -R (fixed random seed); the clip is
# committed so that `make demo` needs neither.
set -eu
OUT=${1:-tools/demo}
SNR_DB=5
SECONDS_TOTAL=8.5
TEXT="Hello, this is oscine, a real-time audio engine. The noise behind my voice
should fade away, while every word stays clear."

for tool in espeak-ng sox awk; do
    command -v "$tool" >/dev/null 2>&1 || { echo "make_clip: needs $tool" >&2; exit 1; }
done
mkdir -p "$OUT"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# Speech: 16 kHz, leading/trailing silence cut, 0.4 s of silence before,
# then silence to SECONDS_TOTAL.
espeak-ng -v en-us -s 165 -p 45 -w "$T/tts.wav" "$TEXT"
sox -R "$T/tts.wav" -r 16000 -c 1 -b 32 -e float "$T/trimmed.wav" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.4 "$SECONDS_TOTAL"
sox -R "$T/trimmed.wav" "$T/speech.wav" trim 0 "$SECONDS_TOTAL"

# Noise: brown + pink noise (the broadband roar of a room or a car), swelling
# slowly, plus a 100 Hz hum with harmonics and a fan whine near 1.3 kHz.
sox -R -n -r 16000 -c 1 -b 32 -e float "$T/nbrown.wav" synth "$SECONDS_TOTAL" brownnoise
sox -R -n -r 16000 -c 1 -b 32 -e float "$T/npink.wav" synth "$SECONDS_TOTAL" pinknoise vol 0.5
sox -R -n -r 16000 -c 1 -b 32 -e float "$T/nhum.wav" synth "$SECONDS_TOTAL" \
    sine 100 sine 200 sine 300 sine 1310 channels 1 vol 0.03
sox -R -m "$T/nbrown.wav" "$T/npink.wav" "$T/nhum.wav" "$T/nsum.wav"
sox -R "$T/nsum.wav" "$T/noise.wav" tremolo 0.25 35 highpass 40

# Gains: noise scaled to SNR_DB below the speech (RMS over the whole clip),
# then both scaled so the mixture peaks at -3 dBFS.
rms() { sox "$1" -n stat 2>&1 | awk '/^RMS +amplitude/ {print $3}'; }
rs=$(rms "$T/speech.wav")
rn=$(rms "$T/noise.wav")
gn=$(awk -v s="$rs" -v n="$rn" -v snr="$SNR_DB" 'BEGIN {printf "%.9f", s / n * 10^(-snr/20)}')
sox -R -m -v 1 "$T/speech.wav" -v "$gn" "$T/noise.wav" "$T/mix.wav"
peak=$(sox "$T/mix.wav" -n stat 2>&1 | awk '/^Maximum amplitude/ {m=$3} /^Minimum amplitude/ {n=-$3} END {print (m > n ? m : n)}')
g=$(awk -v p="$peak" 'BEGIN {printf "%.9f", 10^(-3/20) / p}')

# 16-bit output; no dither, so clean is exactly the speech in noisy up to rounding.
sox -R -v "$g" "$T/mix.wav" -b 16 -e signed -D "$T/noisy.wav"
sox -R -v "$g" "$T/speech.wav" -b 16 -e signed -D "$T/clean.wav"
mv "$T/noisy.wav" "$OUT/noisy-speech.wav"
mv "$T/clean.wav" "$OUT/clean-speech.wav"
echo "make_clip: $OUT/noisy-speech.wav and $OUT/clean-speech.wav" \
     "($SECONDS_TOTAL s, 16 kHz mono 16-bit, speech at $SNR_DB dB SNR)"
