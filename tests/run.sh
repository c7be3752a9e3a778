#!/bin/sh
# Run every test program in BUILD/tests from the repository root and close
# with one summary line: "N passed, N failed" (programs, each a cmocka suite).
BUILD=${1:-build}
pass=0; fail=0; failed=""
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "== $t"
    if OSCINE_BIN="$BUILD/oscine" "$t"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); failed="$failed $(basename "$t")"
    fi
done
[ -n "$failed" ] && echo "failed:$failed"
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
