#!/bin/sh
# The toy corpus is deterministic per seed and has ~12 tokens per line; its
# preprocessing gives byte-identical outputs with 1 and 2 workers.
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-toy-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
make_corpus() { FSQ_BUILD_DIR=$FSQ_BUILD_DIR "$FSQ_SOURCE_DIR/scripts/make-toy-corpus" "$@"; }
make_corpus "$tmp/a" 20000 5
make_corpus "$tmp/b" 20000 5
make_corpus "$tmp/c" 20000 6
fail=0
for f in train.src train.tgt valid.src valid.tgt test.src test.tgt; do
  cmp -s "$tmp/a/$f" "$tmp/b/$f" || { echo "FAIL: $f differs for the same seed"; fail=1; }
done
cmp -s "$tmp/a/train.src" "$tmp/c/train.src" && { echo "FAIL: seeds 5 and 6 agree"; fail=1; }
cmp -s "$tmp/a/train.src" "$tmp/a/valid.src" && { echo "FAIL: splits agree"; fail=1; }
[ "$(wc -l < "$tmp/a/train.src")" -eq 20000 ] && [ "$(wc -l < "$tmp/a/valid.tgt")" -eq 200 ] ||
  { echo "FAIL: line counts"; fail=1; }
avg=$(awk '{ n += NF } END { printf "%d", 10 * n / NR }' "$tmp/a/train.src" "$tmp/a/train.tgt")
[ "$avg" -ge 100 ] && [ "$avg" -le 140 ] || { echo "FAIL: $avg/10 tokens per line"; fail=1; }
bin=$FSQ_BUILD_DIR/fairseq-preprocess
for w in 1 2; do
  "$bin" -s src -t tgt --trainpref "$tmp/a/train" --validpref "$tmp/a/valid" \
    --testpref "$tmp/a/test" --destdir "$tmp/out$w" --workers "$w" > /dev/null
done
for f in "$tmp/out1"/*; do
  name=$(basename "$f")
  [ "$name" = preprocess.log ] && continue
  cmp "$f" "$tmp/out2/$name" || { echo "FAIL: $name differs between 1 and 2 workers"; fail=1; }
done
# comma lists: valid, valid1, ...
"$bin" -s src -t tgt --srcdict "$tmp/out1/dict.src.txt" --tgtdict "$tmp/out1/dict.tgt.txt" \
  --validpref "$tmp/a/valid,$tmp/a/test" --destdir "$tmp/multi" > /dev/null
cmp "$tmp/multi/valid1.src-tgt.tgt.bin" "$tmp/out1/test.src-tgt.tgt.bin" ||
  { echo "FAIL: valid1 is not the second valid prefix"; fail=1; }
# language-model layout: --only-source without -s reads the prefix itself
"$bin" --only-source --trainpref "$tmp/a/train.tgt" --validpref "$tmp/a/valid.tgt" \
  --destdir "$tmp/lm" > /dev/null
[ "$(ls "$tmp/lm" | tr '\n' ' ')" = "dict.txt preprocess.log train.bin train.idx valid.bin valid.idx " ] ||
  { echo "FAIL: language-model layout: $(ls "$tmp/lm")"; fail=1; }
cmp "$tmp/lm/dict.txt" "$tmp/out1/dict.tgt.txt" || { echo "FAIL: lm dictionary"; fail=1; }
cmp "$tmp/lm/train.bin" "$tmp/out1/train.src-tgt.tgt.bin" || { echo "FAIL: lm train.bin"; fail=1; }
grep -q "^\[None\] $tmp/a/train.tgt: 20000 sents" "$tmp/lm/preprocess.log" ||
  { echo "FAIL: lm log line"; fail=1; }
types=$(wc -l < "$tmp/out1/dict.src.txt")
[ "$types" -gt 1000 ] || { echo "FAIL: only $types source types"; fail=1; }
[ "$fail" -eq 0 ] && echo "PASS: toy corpus ($avg/10 tokens per line, $types source types)"
exit "$fail"
