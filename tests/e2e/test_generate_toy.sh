#!/bin/sh
# fairseq-generate with a real Transformer: train transformer_tiny for 300
# updates on the toy corpus (toy_data.sh), translate the test split at beam
# 5 (at most 1.2 x source + 10 tokens) and check fairseq's output format
# (one S/T/H/D/P line per sentence, H = D score, one P score per token and
# </s>, the Translated and BLEU lines), that beam 1 gives one hypothesis per
# sentence too, and that an ensemble of the checkpoint with itself
# translates alike, and that two threads (batches decoded side by side)
# print exactly what one thread prints.
#
# Then --fp16 and --bf16 (the model converted to 16 bits, run by the CPU's
# 16-bit kernels): the same format and the same S-/T- lines; BLEU within
# BLEU_BAND of f32; and the f32 hypothesis kept for at least 3/4 of the
# sentences. 16-bit rounding only flips near ties, and a near tie's other
# choice is about as good, so BLEU moves little (when this was written:
# f32 11.32, f16 11.30, bf16 11.29, with 98 and 86 of 100 hypotheses the
# f32 ones); a broken 16-bit path (a cache read in the wrong dtype, logits
# not widened) changes most hypotheses and BLEU by far more.
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
. "$FSQ_SOURCE_DIR/tests/e2e/toy_data.sh"
BLEU_BAND=1.0
export LC_ALL=C # sort and join agree on the order of the ids
toy_tmp generate-toy
fail() { echo "FAIL: $*"; exit 1; }

toy_data 2000 3 > /dev/null
toy_train "$tmp/ck" 300 --cpu --disable-validation > "$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log"; fail "training"; }
ck=$tmp/ck/checkpoint_last.fsq
n=$(wc -l < "$tmp/text/test.src")

# generate OUT FLAGS...: the test split, on the CPU, at the lengths above
generate() {
  out=$1
  shift
  "$FSQ_BUILD_DIR/fairseq-generate" "$tmp/bin" --cpu --max-tokens 4096 --max-len-a 1.2 \
    --max-len-b 10 "$@" > "$out" 2> "$tmp/err" || { cat "$tmp/err"; fail "generate $*"; }
}

check_format() { # file beam
  for k in S T H D P; do
    c=$(grep -c "^$k-[0-9]*	" "$1" || true)
    [ "$c" -eq "$n" ] || fail "beam $2: $c $k- lines for $n sentences"
  done
  awk -F '\t' '
    /^H-/ { if (NF != 3 || $2 !~ /^-?[0-9]+\.[0-9]+(e[-+][0-9]+)?$/) { print "bad H: " $0; bad = 1 }
            id = $1; sub(/^H-/, "", id); hs[id] = $2; ntok[id] = split($3, w, " ") + 1 }
    /^D-/ { id = $1; sub(/^D-/, "", id); if ($2 != hs[id]) { print "D score differs: " $0; bad = 1 } }
    /^P-/ { id = $1; sub(/^P-/, "", id); m = split($2, p, " ")
            if (m != ntok[id]) { print "P-" id ": " m " scores for " ntok[id] " tokens"; bad = 1 }
            s = 0; for (i = 1; i <= m; i++) s += p[i]
            d = s / m - hs[id]; if (d < 0) d = -d; if (d > 0.0001 * m) { print "H-" id " is not the mean of P"; bad = 1 } }
    END { exit bad }' "$1" || fail "beam $2: H/D/P lines"
  grep -Eq "\| INFO \| fairseq_cli.generate \| Translated $n sentences \([0-9]+ tokens\) in [0-9]+\.[0-9]s \([0-9]+\.[0-9][0-9] sentences/s, [0-9]+\.[0-9][0-9] tokens/s\)$" "$1" ||
    fail "beam $2: no Translated line"
  grep -Eq "^Generate test with beam=$2: BLEU4 = [0-9]+\.[0-9][0-9], " "$1" || fail "beam $2: no BLEU line"
}

generate "$tmp/b5" --path "$ck" --beam 5
check_format "$tmp/b5" 5
generate "$tmp/b1" --path "$ck" --beam 1
check_format "$tmp/b1" 1
generate "$tmp/ens" --path "$ck:$ck" --beam 5
grep '^H-' "$tmp/b5" | cut -f1,3 > "$tmp/e1"
grep '^H-' "$tmp/ens" | cut -f1,3 > "$tmp/e2"
cmp -s "$tmp/e1" "$tmp/e2" || fail "an ensemble of the checkpoint twice translates differently"
grep '^Generate' "$tmp/b5"

bleu() { sed -nE 's/^Generate test with beam=5: BLEU4 = ([0-9.]+),.*/\1/p' "$1"; }
hyps() { grep '^H-' "$1" | cut -f1,3 | sort; }
grep -E '^[ST]-' "$tmp/b5" > "$tmp/st.f32"
hyps "$tmp/b5" > "$tmp/h.f32"
for p in fp16 bf16; do
  generate "$tmp/$p" --path "$ck" --beam 5 "--$p"
  check_format "$tmp/$p" 5
  grep -E '^[ST]-' "$tmp/$p" | cmp -s "$tmp/st.f32" - || fail "--$p: the S-/T- lines differ from f32's"
  hyps "$tmp/$p" > "$tmp/h.$p"
  same=$(join -t '	' "$tmp/h.f32" "$tmp/h.$p" | awk -F '\t' '$2 == $3' | wc -l)
  b32=$(bleu "$tmp/b5") b16=$(bleu "$tmp/$p")
  echo "--$p: BLEU4 $b16 (f32 $b32), $same of $n hypotheses the f32 ones"
  awk -v a="$b32" -v b="$b16" -v band="$BLEU_BAND" \
    'BEGIN { if (a == "" || b == "") exit 1; d = a - b; if (d < 0) d = -d; exit d > band }' ||
    fail "--$p: BLEU4 $b16 is not within $BLEU_BAND of f32's $b32"
  [ $((4 * same)) -ge $((3 * n)) ] || fail "--$p: only $same of $n hypotheses are the f32 ones"
done
# fairseq-interactive and fairseq-validate take the flags too; the valid
# nll_loss, a mean over about 700 tokens, moves by a few bf16 roundings of
# one log-probability at most.
head -n 5 "$tmp/text/test.src" | "$FSQ_BUILD_DIR/fairseq-interactive" "$tmp/bin" --cpu \
  --path "$ck" --beam 5 --bf16 > "$tmp/int" 2> "$tmp/err" || { cat "$tmp/err"; fail "interactive --bf16"; }
[ "$(grep -c '^H-' "$tmp/int")" -eq 5 ] || fail "interactive --bf16: not 5 hypotheses"
nll() { # flags... -> the valid nll_loss
  "$FSQ_BUILD_DIR/fairseq-validate" "$tmp/bin" --cpu --path "$ck" --max-tokens 1024 "$@" \
    > "$tmp/valid" 2>&1 || { cat "$tmp/valid" >&2; echo "FAIL: fairseq-validate $*" >&2; }
  sed -nE "s/.*valid on 'valid' subset .*\| nll_loss ([0-9.]+) .*/\1/p" "$tmp/valid"
}
v32=$(nll) v16=$(nll --fp16)
echo "fairseq-validate nll_loss: f32 $v32, --fp16 $v16"
awk -v a="$v32" -v b="$v16" 'BEGIN { if (a == "" || b == "") exit 1; d = a - b; if (d < 0) d = -d; exit d > 0.01 }' ||
  fail "fairseq-validate --fp16 nll_loss '$v16' is not within 0.01 of f32's '$v32'"
# Batches side by side: with two OpenMP threads on the CPU each thread
# decodes whole batches (--max-tokens 256 makes several), and the output
# is emitted in batch order; every line must equal the one-thread run's,
# whatever the search: beam with --nbest, forced prefixes, sampling (its
# streams keyed by sentence id), --score-reference.
for flags in "--beam 5 --nbest 2" "--beam 4 --prefix-size 2" \
  "--beam 2 --nbest 2 --sampling --sampling-topk 8 --seed 7" "--score-reference"; do
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 generate "$tmp/one" --path "$ck" --max-tokens 256 $flags
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=2 generate "$tmp/two" --path "$ck" --max-tokens 256 $flags
  grep -E '^([STHDP]-|Generate )' "$tmp/one" > "$tmp/one.lines"
  grep -E '^([STHDP]-|Generate )' "$tmp/two" > "$tmp/two.lines"
  [ "$(grep -c '^S-' "$tmp/two.lines")" -eq "$n" ] || fail "two threads, $flags: not $n sentences"
  cmp -s "$tmp/one.lines" "$tmp/two.lines" ||
    { diff "$tmp/one.lines" "$tmp/two.lines" | head -n 5; fail "two threads, $flags: output differs"; }
done
# that made several batches: the test split's source tokens over 256
tokens=$(awk '{ t += NF + 1 } END { print t }' "$tmp/text/test.src")
[ "$tokens" -gt 512 ] || fail "the test split ($tokens tokens) makes fewer than 3 batches"
echo "two threads decode $n sentences in batches of <= 256 tokens as one thread does"
# every sentence longer than --max-source-positions 2 is skipped: no batch
OMP_NUM_THREADS=2 generate "$tmp/none" --path "$ck" --max-source-positions 2 \
  --skip-invalid-size-inputs-valid-test
grep -q 'Translated 0 sentences (0 tokens)' "$tmp/none" || fail "no batch: no 'Translated 0' line"
echo "PASS: fairseq-generate with transformer_tiny, in f32, --fp16 and --bf16, and on two threads"
