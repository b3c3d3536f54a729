#!/bin/sh
# fairseq-train refuses what it cannot do with one line naming the flag or
# the file and the reason, and a non-zero exit: an unknown flag, a missing
# data directory, and a checkpoint_last that is truncated, has a flipped
# byte, lacks a member, or belongs to another architecture; --fp16 with
# --bf16 and out-of-range loss scaler flags,
# before anything is loaded or written; and --finetune-from-model starts
# afresh from a model's parameters.
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-train-errors-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
FSQ_BUILD_DIR=$FSQ_BUILD_DIR "$FSQ_SOURCE_DIR/scripts/make-toy-corpus" "$tmp/text" 200 5
"$FSQ_BUILD_DIR/fairseq-preprocess" -s src -t tgt --trainpref "$tmp/text/train" \
  --validpref "$tmp/text/valid" --joined-dictionary --destdir "$tmp/bin" > /dev/null

train() { # data save_dir [flags...]
  data=$1 dir=$2
  shift 2
  "$FSQ_BUILD_DIR/fairseq-train" "$data" --arch transformer_tiny --optimizer adam --lr 0.001 \
    --max-tokens 512 --max-update 2 --log-format none --save-dir "$dir" "$@"
}

fail=0
# expect NAME PATTERN CMD...: CMD must fail with one stderr line matching PATTERN.
expect() {
  name=$1 pattern=$2
  shift 2
  if "$@" > "$tmp/out" 2> "$tmp/err"; then
    echo "FAIL: $name: exit status 0"; fail=1; return
  fi
  if ! grep -q -- "$pattern" "$tmp/err"; then
    echo "FAIL: $name: stderr does not match '$pattern':"; cat "$tmp/err"; fail=1; return
  fi
  echo "ok: $name: $(grep -- "$pattern" "$tmp/err" | head -n 1)"
}

expect "unknown flag" "unrecognized arguments: --no-such-flag" \
  train "$tmp/bin" "$tmp/u" --no-such-flag 3
expect "missing data" "$tmp/nowhere" train "$tmp/nowhere" "$tmp/m"

# Both half precisions at once: refused at start, in one line, with
# nothing written to --save-dir.
expect "--fp16 --bf16" "error: --fp16 and --bf16 cannot be used together" \
  train "$tmp/bin" "$tmp/fp16" --fp16 --bf16
[ "$(wc -l < "$tmp/err")" -eq 1 ] || { echo "FAIL: --fp16 --bf16: more than one line:"; cat "$tmp/err"; fail=1; }
[ ! -e "$tmp/fp16" ] || { echo "FAIL: --fp16 --bf16: $tmp/fp16 was created"; fail=1; }
# The device: contradicting flags, and a GPU asked for where there is none.
expect "--cpu --device cuda" "error: --cpu and --device cuda contradict each other" \
  train "$tmp/bin" "$tmp/d1" --cpu --device cuda
if [ "${FSQ_HAVE_CUDA:-0}" != 1 ]; then
  expect "--device cuda without CUDA" "error: --device cuda: this build has no CUDA" \
    train "$tmp/bin" "$tmp/d2" --device cuda
elif ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
  expect "--device cuda without a GPU" "error: --device cuda: no CUDA device found" \
    train "$tmp/bin" "$tmp/d2" --device cuda
fi
expect "--device tpu" "argument --device: invalid choice: 'tpu'" train "$tmp/bin" "$tmp/d3" --device tpu
expect "zero loss scale" "error: --fp16-init-scale 0: the loss scale must be > 0" \
  train "$tmp/bin" "$tmp/s1" --fp16-init-scale 0
expect "negative scale window" "error: --fp16-scale-window -5" \
  train "$tmp/bin" "$tmp/s2" --fp16 --fp16-scale-window -5
expect "tolerance above 1" "error: --fp16-scale-tolerance 1.5" \
  train "$tmp/bin" "$tmp/s3" --fp16-scale-tolerance 1.5
expect "negative minimum scale" "error: --min-loss-scale -1" \
  train "$tmp/bin" "$tmp/s4" --min-loss-scale -1
expect "zero threshold" "error: --threshold-loss-scale 0" \
  train "$tmp/bin" "$tmp/s5" --threshold-loss-scale 0

train "$tmp/bin" "$tmp/good" > /dev/null 2>&1 || { echo "FAIL: training"; exit 1; }
ckpt=$tmp/good/checkpoint_last.fsq
[ -s "$ckpt" ] || { echo "FAIL: no checkpoint_last"; exit 1; }
size=$(wc -c < "$ckpt")

mkdir "$tmp/trunc"
head -c "$((size / 2))" "$ckpt" > "$tmp/trunc/checkpoint_last.fsq"
expect "truncated checkpoint" "$tmp/trunc/checkpoint_last.fsq" train "$tmp/bin" "$tmp/trunc"

# Flip one byte inside the first tensor's data (a member after meta.json).
mkdir "$tmp/flip"
cp "$ckpt" "$tmp/flip/checkpoint_last.fsq"
offset=$((size - 4096))
printf '\377' | dd of="$tmp/flip/checkpoint_last.fsq" bs=1 seek="$offset" conv=notrunc 2> /dev/null
cmp -s "$ckpt" "$tmp/flip/checkpoint_last.fsq" && printf '\000' |
  dd of="$tmp/flip/checkpoint_last.fsq" bs=1 seek="$offset" conv=notrunc 2> /dev/null
expect "flipped byte" "$tmp/flip/checkpoint_last.fsq" train "$tmp/bin" "$tmp/flip"

# Drop one tensor member from the archive.
mkdir "$tmp/member" "$tmp/x"
(cd "$tmp/x" && tar -xf "$ckpt")
victim=$(tar -tf "$ckpt" | grep '^model/' | head -n 1)
rm "$tmp/x/$victim"
(cd "$tmp/x" && tar --format=ustar -cf "$tmp/member/checkpoint_last.fsq" $(tar -tf "$ckpt" | grep -vxF "$victim"))
expect "missing member" "$tmp/member/checkpoint_last.fsq" train "$tmp/bin" "$tmp/member"

# A checkpoint of a model with other shapes: the first differing tensor.
mkdir "$tmp/arch"
cp "$ckpt" "$tmp/arch/checkpoint_last.fsq"
expect "another architecture" "$tmp/arch/checkpoint_last.fsq" \
  train "$tmp/bin" "$tmp/arch" --encoder-embed-dim 32 --decoder-embed-dim 32
cmp -s "$ckpt" "$tmp/arch/checkpoint_last.fsq" || { echo "FAIL: the refused checkpoint was changed"; fail=1; }

# --finetune-from-model: parameters from the file, everything else afresh.
train "$tmp/bin" "$tmp/ft" --finetune-from-model "$ckpt" --log-format simple > "$tmp/ft.log" 2>&1 ||
  { cat "$tmp/ft.log"; echo "FAIL: --finetune-from-model"; fail=1; }
grep -q "loading pretrained model from $ckpt" "$tmp/ft.log" && grep -q "num_updates 2 " "$tmp/ft.log" ||
  { cat "$tmp/ft.log"; echo "FAIL: --finetune-from-model did not start afresh from the model"; fail=1; }
expect "finetune with a reset" "can not be set together" \
  train "$tmp/bin" "$tmp/ft2" --finetune-from-model "$ckpt" --reset-optimizer
expect "finetune from nothing" "$tmp/none.fsq does not exist" \
  train "$tmp/bin" "$tmp/ft3" --finetune-from-model "$tmp/none.fsq"

# --optimizer-overrides on resume: into the configuration the run logs.
train "$tmp/bin" "$tmp/good" --max-update 3 --optimizer-overrides "{'betas': (0.8, 0.9), 'eps': 1e-6}" \
  --log-format simple > "$tmp/ov.log" 2>&1 || { cat "$tmp/ov.log"; echo "FAIL: --optimizer-overrides"; fail=1; }
grep -q '"adam_betas":"(0.80000000000000004, 0.90000000000000002)"' "$tmp/ov.log" &&
  grep -q '"adam_eps":9.9999999999999995e-07' "$tmp/ov.log" ||
  { grep fairseq_cli.train "$tmp/ov.log" | head -n 1; echo "FAIL: overrides not applied"; fail=1; }
expect "override of an unknown parameter" "adam has no parameter 'momentum'" \
  train "$tmp/bin" "$tmp/good" --max-update 4 --optimizer-overrides "{'momentum': 0.9}"

[ "$fail" -eq 0 ] && echo "PASS: every bad input refused with one line"
exit "$fail"
