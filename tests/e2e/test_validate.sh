#!/bin/sh
# fairseq-validate on the model fairseq-train saved last must print the same
# loss, nll_loss, ppl, wpb and bsz as the trainer's last validation of that
# model, for each --valid-subset; and it refuses bad input with one line.
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-validate-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
FSQ_BUILD_DIR=$FSQ_BUILD_DIR "$FSQ_SOURCE_DIR/scripts/make-toy-corpus" "$tmp/text" 500 11
"$FSQ_BUILD_DIR/fairseq-preprocess" -s src -t tgt --trainpref "$tmp/text/train" \
  --validpref "$tmp/text/valid,$tmp/text/test" --joined-dictionary --destdir "$tmp/bin" > /dev/null
"$FSQ_BUILD_DIR/fairseq-train" "$tmp/bin" --cpu --arch transformer_tiny --optimizer adam --lr 0.003 \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1 --max-tokens 1024 \
  --max-update 12 --valid-subset valid,valid1 --log-format simple --no-epoch-checkpoints \
  --save-dir "$tmp/ck" > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; fail "training"; }
"$FSQ_BUILD_DIR/fairseq-validate" "$tmp/bin" --cpu --path "$tmp/ck/checkpoint_last.fsq" \
  --valid-subset valid,valid1 --max-tokens 1024 > "$tmp/validate.log" 2>&1 ||
  { cat "$tmp/validate.log"; fail "fairseq-validate"; }
cat "$tmp/validate.log" | grep "valid on"

# The statistics of a line that do not depend on time, in order.
stats() { sed -E 's/.*subset \| //; s/ \| (wps|num_updates|best_loss) [0-9.]+//g'; }
for subset in valid valid1; do
  want=$(grep "| valid | epoch .* | valid on '$subset' subset" "$tmp/train.log" | tail -n 1 | stats)
  got=$(grep "| $subset | valid on '$subset' subset" "$tmp/validate.log" | stats)
  [ -n "$want" ] || fail "the trainer did not validate $subset"
  [ "$want" = "$got" ] || fail "$subset: fairseq-validate says '$got', the trainer said '$want'"
done

expect() { # name pattern cmd...
  name=$1 pattern=$2
  shift 2
  if "$@" > "$tmp/out" 2> "$tmp/err"; then fail "$name: exit status 0"; fi
  grep -q -- "$pattern" "$tmp/err" || { cat "$tmp/err"; fail "$name: no '$pattern'"; }
}
expect "no --path" "--path is required" "$FSQ_BUILD_DIR/fairseq-validate" "$tmp/bin" --max-tokens 1024
expect "missing checkpoint" "$tmp/none.fsq" \
  "$FSQ_BUILD_DIR/fairseq-validate" "$tmp/bin" --path "$tmp/none.fsq" --max-tokens 1024
expect "unknown subset" "nosuch" "$FSQ_BUILD_DIR/fairseq-validate" "$tmp/bin" --cpu \
  --path "$tmp/ck/checkpoint_last.fsq" --valid-subset nosuch --max-tokens 1024
expect "--cpu --device cuda" "fairseq-validate: error: --cpu and --device cuda contradict each other" \
  "$FSQ_BUILD_DIR/fairseq-validate" "$tmp/bin" --path "$tmp/ck/checkpoint_last.fsq" --cpu \
  --device cuda --max-tokens 1024
if [ "${FSQ_HAVE_CUDA:-0}" != 1 ]; then
  expect "--device cuda without CUDA" "fairseq-validate: error: --device cuda: this build has no CUDA" \
    "$FSQ_BUILD_DIR/fairseq-validate" "$tmp/bin" --path "$tmp/ck/checkpoint_last.fsq" \
    --device cuda --max-tokens 1024
elif ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
  expect "--device cuda without a GPU" "fairseq-validate: error: --device cuda: no CUDA device found" \
    "$FSQ_BUILD_DIR/fairseq-validate" "$tmp/bin" --path "$tmp/ck/checkpoint_last.fsq" \
    --device cuda --max-tokens 1024
fi
expect "unknown flag" "unrecognized arguments: --bogus" "$FSQ_BUILD_DIR/fairseq-validate" \
  "$tmp/bin" --path "$tmp/ck/checkpoint_last.fsq" --bogus
echo "PASS: fairseq-validate agrees with the trainer's validation"
