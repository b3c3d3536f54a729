#!/bin/sh
# fairseq-train --fp16 and --bf16 on the CPU (16-bit storage, f32
# arithmetic: the GPU's semantics) on the toy corpus: each loss curve
# follows the f32 run's, --fp16 logs its loss scale and --bf16 none, a run
# stopped in the middle of an epoch and resumed prints the straight run's
# loss lines (the checkpoint holds the f32 master weights), and the
# checkpoint translates the test set.
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
. "$FSQ_SOURCE_DIR/tests/e2e/toy_data.sh"
toy_tmp train-mixed
toy_data 2000 3
# The bf16 unit roundoff is 2^-9 (0.2 %): a curve following f32's stays
# within a few of them (0.05 % over 40 updates when this was written); a
# wrong gradient or update path leaves it by far more.
BAND=0.01
# Loss lines without timings: the statistics that must repeat exactly.
losses() { grep -E '\| (train_inner|train|valid) \|' "$@" | sed -E 's/^[0-9: -]+\| //; s/(wps|ups|wall|train_wall)[= ][0-9.e+-]+//g'; }

fail=0
toy_train "$tmp/f32" 40 --cpu > "$tmp/f32.log" 2>&1 || { cat "$tmp/f32.log"; echo "FAIL: f32 training"; exit 1; }
toy_inner_losses "$tmp/f32.log" > "$tmp/f32.loss"
for p in bf16 fp16; do
  toy_train "$tmp/$p" 40 --cpu "--$p" > "$tmp/$p.log" 2>&1 ||
    { cat "$tmp/$p.log"; echo "FAIL: --$p training"; exit 1; }
  toy_inner_losses "$tmp/$p.log" > "$tmp/$p.loss"
  [ "$(wc -l < "$tmp/$p.loss")" -eq 40 ] || { echo "FAIL: --$p: expected 40 train_inner lines"; fail=1; }
  printf -- "--%s: " "$p"
  toy_curves_within "$tmp/$p.loss" "$tmp/f32.loss" "$BAND" ||
    { echo "FAIL: the --$p loss curve leaves the f32 one by more than $BAND"; fail=1; }
done
[ "$(grep '| train_inner |' "$tmp/fp16.log" | grep -c 'loss_scale=128,')" -eq 40 ] ||
  { echo "FAIL: --fp16 train_inner lines lack 'loss_scale=128'"; fail=1; }
! grep -q 'loss_scale=' "$tmp/bf16.log" || { echo "FAIL: --bf16 logs a loss scale"; fail=1; }

# Stop at 30 updates (in the middle of epoch 2), resume to 40: the loss lines
# of the two parts are the straight run's.
toy_train "$tmp/r" 30 --cpu --bf16 > "$tmp/r1.log" 2>&1 || { cat "$tmp/r1.log"; echo "FAIL: first half"; exit 1; }
toy_train "$tmp/r" 40 --cpu --bf16 > "$tmp/r2.log" 2>&1 || { cat "$tmp/r2.log"; echo "FAIL: resumed half"; exit 1; }
grep -q "Loaded checkpoint $tmp/r/checkpoint_last.fsq (epoch 2 @ 30 updates)" "$tmp/r2.log" ||
  { cat "$tmp/r2.log"; echo "FAIL: did not resume in the middle of epoch 2"; fail=1; }
losses "$tmp/bf16.log" > "$tmp/straight"
{ losses "$tmp/r1.log" | grep -v '^INFO | \(train\|valid\) | epoch 002'; losses "$tmp/r2.log"; } > "$tmp/resumed"
cmp -s "$tmp/straight" "$tmp/resumed" ||
  { diff "$tmp/straight" "$tmp/resumed"; echo "FAIL: the resumed --bf16 run differs"; fail=1; }

toy_decodes "$tmp/fp16/checkpoint_last.fsq" ||
  { echo "FAIL: the --fp16 checkpoint does not decode"; fail=1; }
[ "$fail" -eq 0 ] && echo "PASS: --bf16 and --fp16 follow f32, exact --bf16 resume, the checkpoint decodes"
exit "$fail"
