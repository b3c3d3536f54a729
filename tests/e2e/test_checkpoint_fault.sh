#!/bin/sh
# Kills a process with SIGKILL at random moments while it saves checkpoints
# in a loop; after every kill the checkpoint must load and verify, holding
# the previous content or a newer one, and no temporary file may look like
# a checkpoint (*.fsq).
set -eu
: "${FSQ_BUILD_DIR:?}"
prog=$FSQ_BUILD_DIR/tests/e2e/test_checkpoint_fault
kills=${FSQ_FAULT_KILLS:-60}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-fault-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

"$prog" save "$tmp" --once
last=$("$prog" verify "$tmp")
seed=$$
i=0
while [ "$i" -lt "$kills" ]; do
  "$prog" save "$tmp" &
  pid=$!
  # a pseudo-random pause of 5..250 ms (no $RANDOM in POSIX sh)
  seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
  ms=$(( 5 + seed % 246 ))
  sleep "$(printf '0.%03d' "$ms")"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  now=$("$prog" verify "$tmp") || { echo "FAIL: checkpoint broken after kill $i"; exit 1; }
  [ "$now" -ge "$last" ] || { echo "FAIL: version went back from $last to $now"; exit 1; }
  last=$now
  i=$((i + 1))
done
left=$(find "$tmp" -name '.checkpoint_last.fsq.tmp-*' | wc -l)
echo "PASS: $kills kills, checkpoint always loaded (last version $last, $left temporaries left behind)"
