#!/bin/sh
# fairseq-generate end to end with the test component "bigram" (a trainable
# model that has the inference ops): train 60 updates on the toy corpus,
# then check fairseq's output format (S/T/H/D/P lines, one of each per test
# sentence, H and D scores equal, one P score per token and </s>), the
# closing lines, --nbest ordering, --quiet, --results-path, --score-reference,
# seeded --sampling, an ensemble of the same checkpoint twice,
# fairseq-interactive on the raw lines, and the errors (unknown flag refused by name, a missing checkpoint named,
# the device flags and --fp16 with --bf16 refused as fairseq-train refuses them).
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
gen=$FSQ_BUILD_DIR/fairseq-generate
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-generate-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

# A private copy of the staged components: another test's `make install`
# relinks them while tests run in parallel.
if [ -n "${FSQ_COMPONENT_PATH:-}" ] && [ -d "$FSQ_COMPONENT_PATH" ]; then
  cp -rL "$FSQ_COMPONENT_PATH" "$tmp/components"
  FSQ_COMPONENT_PATH=$tmp/components
  export FSQ_COMPONENT_PATH
fi
mkdir -p "$tmp/tree/models/bigram/1.0.0"
cp "$FSQ_BUILD_DIR/tests/components/.libs/bigram.so" "$tmp/tree/models/bigram/1.0.0/bigram.so"
FSQ_BUILD_DIR=$FSQ_BUILD_DIR "$FSQ_SOURCE_DIR/scripts/make-toy-corpus" "$tmp/text" 300 3 > /dev/null
"$FSQ_BUILD_DIR/fairseq-preprocess" -s src -t tgt --trainpref "$tmp/text/train" \
  --validpref "$tmp/text/valid" --testpref "$tmp/text/test" --joined-dictionary \
  --nwordssrc 200 --destdir "$tmp/bin" --workers 2 > /dev/null
"$FSQ_BUILD_DIR/fairseq-train" "$tmp/bin" --cpu --user-dir "$tmp/tree" --arch bigram --optimizer adam \
  --lr 0.05 --criterion cross_entropy --max-tokens 1024 --max-update 60 --seed 3 \
  --log-format simple --save-dir "$tmp/ck" --no-epoch-checkpoints > "$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log"; fail "training"; }
ck=$tmp/ck/checkpoint_last.fsq
n=$(wc -l < "$tmp/text/test.src")
run() { "$gen" "$tmp/bin" --cpu --user-dir "$tmp/tree" --path "$ck" --max-tokens 4096 "$@"; }

run --beam 5 > "$tmp/out" 2> "$tmp/err" || { cat "$tmp/err"; fail "generate exited non-zero"; }
[ ! -s "$tmp/err" ] || { cat "$tmp/err"; fail "generate wrote to stderr"; }
for k in S T H D P; do
  c=$(grep -c "^$k-[0-9]*	" "$tmp/out" || true)
  [ "$c" -eq "$n" ] || fail "$c $k- lines for $n sentences"
done
# every id once
grep '^S-' "$tmp/out" | cut -f1 | sed 's/S-//' | sort -n | uniq > "$tmp/ids"
[ "$(wc -l < "$tmp/ids")" -eq "$n" ] && [ "$(head -n 1 "$tmp/ids")" = 0 ] &&
  [ "$(tail -n 1 "$tmp/ids")" = "$((n - 1))" ] || fail "sentence ids are not 0..$((n - 1))"
# H: id, a Python float, the text; D the same score; P one score (%.4f) per token + </s>
awk -F '\t' '
  /^H-/ { if (NF != 3 || $2 !~ /^-?[0-9]+\.[0-9]+(e[-+][0-9]+)?$/) { print "bad H: " $0; bad = 1 }
          id = $1; sub(/^H-/, "", id); hs[id] = $2; ntok[id] = split($3, w, " ") + 1 }
  /^D-/ { id = $1; sub(/^D-/, "", id); if ($2 != hs[id]) { print "D score differs: " $0; bad = 1 } }
  /^P-/ { id = $1; sub(/^P-/, "", id); m = split($2, p, " ")
          if (m != ntok[id]) { print "P-" id ": " m " scores for " ntok[id] " tokens"; bad = 1 }
          s = 0; for (i = 1; i <= m; i++) { if (p[i] !~ /^-?[0-9]+\.[0-9][0-9][0-9][0-9]$/) { print "bad P: " p[i]; bad = 1 }; s += p[i] }
          # H is the mean base-2 score (lenpen 1) up to the P rounding
          d = s / m - hs[id]; if (d < 0) d = -d; if (d > 0.0001 * m) { print "H-" id " is not the mean of P"; bad = 1 } }
  END { exit bad }' "$tmp/out" || fail "H/D/P lines"
grep -Eq "\| INFO \| fairseq_cli.generate \| Translated $n sentences \([0-9,]+ tokens\) in [0-9]+\.[0-9]s \([0-9]+\.[0-9][0-9] sentences/s, [0-9]+\.[0-9][0-9] tokens/s\)$" "$tmp/out" ||
  fail "no Translated line"
grep -Eq '^Generate test with beam=5: BLEU4 = [0-9]+\.[0-9][0-9], [0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+ \(BP=[0-9.]+, ratio=[0-9.]+, syslen=[0-9]+, reflen=[0-9]+\)$' "$tmp/out" ||
  fail "no BLEU line"

# --nbest 3: three hypotheses per sentence, best first
run --beam 4 --nbest 3 > "$tmp/nbest" || fail "--nbest"
[ "$(grep -c '^H-' "$tmp/nbest")" -eq $((3 * n)) ] || fail "--nbest 3 does not print 3 hypotheses"
awk -F '\t' '/^H-/ { if ($1 == last && $2 + 0 > prev + 0) { print "not sorted: " $0; bad = 1 }; last = $1; prev = $2 } END { exit bad }' "$tmp/nbest" ||
  fail "--nbest order"

# --quiet prints the scores only; --results-path writes generate-test.txt
run --quiet > "$tmp/quiet" || fail "--quiet"
! grep -q '^[STHDP]-' "$tmp/quiet" || fail "--quiet printed sentences"
grep -q '^Generate test with beam=5: BLEU4' "$tmp/quiet" || fail "--quiet lost the BLEU line"
run --results-path "$tmp/res" > "$tmp/res.log" || fail "--results-path"
grep '^[STHDP]-' "$tmp/out" > "$tmp/a"
grep '^[STHDP]-' "$tmp/res/generate-test.txt" > "$tmp/b" || true
cmp -s "$tmp/a" "$tmp/b" || fail "--results-path file differs from stdout"
[ ! -s "$tmp/res.log" ] || fail "--results-path still printed to stdout"
grep -q "fairseq_cli.generate | Translated $n sentences" "$tmp/res/generate-test.txt" || fail "--results-path file lacks the log lines"

# --score-reference: the hypothesis is the target
run --score-reference > "$tmp/ref" || fail "--score-reference"
awk -F '\t' '/^T-/ { id = $1; sub(/^T-/, "", id); t[id] = $2; gsub(/<<unk>>/, "<unk>", t[id]) }
  /^H-/ { id = $1; sub(/^H-/, "", id); if ($3 != t[id]) { print "H differs from T: " id; bad = 1 } }
  END { exit bad }' "$tmp/ref" || fail "--score-reference hypotheses"

# seeded sampling repeats
run --sampling --beam 2 --nbest 2 --sampling-topk 10 --seed 7 | grep '^H-' > "$tmp/s1" || fail "--sampling"
run --sampling --beam 2 --nbest 2 --sampling-topk 10 --seed 7 | grep '^H-' > "$tmp/s2"
cmp -s "$tmp/s1" "$tmp/s2" || fail "--sampling with one seed differs"

# an ensemble of the checkpoint with itself translates alike
"$gen" "$tmp/bin" --device cpu --user-dir "$tmp/tree" --path "$ck:$ck" --max-tokens 4096 | grep '^H-' | cut -f1,3 > "$tmp/e2"
grep '^H-' "$tmp/out" | cut -f1,3 > "$tmp/e1"
cmp -s "$tmp/e1" "$tmp/e2" || fail "ensemble of one checkpoint twice differs"

# fairseq-interactive on the raw test lines translates as fairseq-generate
# does with one sentence per batch (both batch one sentence by default)
int=$FSQ_BUILD_DIR/fairseq-interactive
head -n 5 "$tmp/text/test.src" | "$int" "$tmp/bin" --cpu --user-dir "$tmp/tree" --path "$ck" --beam 3 > "$tmp/int" ||
  fail "fairseq-interactive"
[ "$(grep -c '^W-[0-9]*	[0-9]*\.[0-9][0-9][0-9]	seconds$' "$tmp/int")" -eq 5 ] || fail "interactive W- lines"
grep -q 'fairseq_cli.interactive | Total time: [0-9.]* seconds; translation time: [0-9.]*$' "$tmp/int" ||
  fail "interactive Total time line"
run --beam 3 --batch-size 1 | grep -E '^[SHP]-[0-4]	' | sort > "$tmp/g5"
grep -E '^[SHP]-[0-4]	' "$tmp/int" | sort > "$tmp/i5"
cmp -s "$tmp/g5" "$tmp/i5" || { diff "$tmp/g5" "$tmp/i5" | head; fail "interactive differs from generate"; }
head -n 5 "$tmp/text/test.src" | "$int" "$tmp/bin" --cpu --user-dir "$tmp/tree" --path "$ck" --beam 3 \
  --buffer-size 5 --max-tokens 4096 | grep '^H-' > "$tmp/ib" || fail "interactive --buffer-size"
[ "$(wc -l < "$tmp/ib")" -eq 5 ] || fail "interactive --buffer-size lost sentences"

# errors
status=0
run --bogus-flag 2> "$tmp/err" > /dev/null || status=$?
[ "$status" -ne 0 ] && grep -q -- "--bogus-flag" "$tmp/err" || fail "unknown flag not refused by name"
status=0
"$gen" "$tmp/bin" --user-dir "$tmp/tree" --path "$tmp/nope.fsq" 2> "$tmp/err" > /dev/null || status=$?
[ "$status" -eq 1 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -q "nope.fsq" "$tmp/err" ||
  { cat "$tmp/err"; fail "a missing checkpoint is not one line naming it (exit $status)"; }
status=0
"$gen" "$tmp/bin" --user-dir "$tmp/tree" 2> "$tmp/err" > /dev/null || status=$?
[ "$status" -ne 0 ] && grep -q -- "--path" "$tmp/err" || fail "no --path accepted"
# the device and precision flags, refused as fairseq-train refuses them
device_refused() { # program pattern flags...
  prog=$1 pattern=$2
  shift 2
  status=0
  "$FSQ_BUILD_DIR/$prog" "$tmp/bin" --user-dir "$tmp/tree" --path "$ck" "$@" < /dev/null \
    2> "$tmp/err" > /dev/null || status=$?
  [ "$status" -ne 0 ] && grep -q -- "^$prog: .*$pattern" "$tmp/err" ||
    { cat "$tmp/err"; fail "$prog $*: no '$pattern'"; }
}
for prog in fairseq-generate fairseq-interactive; do
  device_refused "$prog" "error: --cpu and --device cuda contradict each other" --cpu --device cuda
  device_refused "$prog" "argument --device: invalid choice: 'tpu'" --device tpu
  device_refused "$prog" "error: --fp16 and --bf16 cannot be used together" --fp16 --bf16
done
if [ "${FSQ_HAVE_CUDA:-0}" != 1 ]; then
  device_refused fairseq-generate "error: --device cuda: this build has no CUDA" --device cuda
elif ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
  device_refused fairseq-generate "error: --device cuda: no CUDA device found" --device cuda
fi
echo "PASS: fairseq-generate format, options and errors"
