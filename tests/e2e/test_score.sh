#!/bin/sh
# fairseq-score on tests/fixtures/score: prints what fairseq_cli/score.py
# prints, byte for byte, and refuses bad input with one line and exit 1.
#
# Where the expected numbers come from (worked by hand, n-gram counts):
# - hyp.txt vs ref.txt: line 1 "the cat sat on a mat" vs "the cat sat on the
#   mat" matches 5/6 1-grams, 3/5 2-grams, 2/4 3-grams, 1/3 4-grams; line 2
#   "a b c d e" matches 5/5 4/4 3/3 2/2. Corpus: 10/11 7/9 5/7 3/5,
#   BLEU = (10/11 * 7/9 * 5/7 * 3/5)^(1/4) = 0.741945, lengths 11/11.
#   With -o 2: (10/11 * 7/9)^(1/2) = 0.840875.
#   The 13a tokenizer leaves these lines alone, so sacreBLEU counts the same.
# - --sentence-bleu adds 1 to orders 2..4 (bleu_one_init): line 0 gives
#   5/6 4/6 3/5 2/4, (1/6)^(1/4) = 0.638943; line 1 is 100.
# - hyp_mixed_case_crlf.txt is hyp.txt with capitals and CRLF line ends:
#   case-sensitive, only sat, on, mat and "sat on" match: 3/11, 1/9, 0, 0
#   -> 0.00; with --ignore-case it scores as hyp.txt.
# - hyp_punct.txt "Hello, world!" vs "Hello world!": 13a gives
#   "Hello , world !" vs "Hello world !": 3/4, 1/3, 0/2, 0/1; exp smoothing
#   turns the zeros into 100/(2*2) and 100/(4*1): (75*33.33*25*25)^(1/4)
#   = 35.3553, ratio 4/3.
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
bin=$FSQ_BUILD_DIR/fairseq-score
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-score-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$FSQ_SOURCE_DIR/tests/fixtures/score"

fail() { echo "FAIL: $1"; exit 1; }

# expect "<expected stdout>" args...: exit 0, empty stderr, exact stdout
expect() {
  want=$1; shift
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err" || fail "exit $? for: $*"
  printf '%s\n' "$want" >"$tmp/want"
  cmp -s "$tmp/out" "$tmp/want" || { diff "$tmp/want" "$tmp/out" || true; fail "output of: $*"; }
  [ ! -s "$tmp/err" ] || { cat "$tmp/err"; fail "stderr not empty for: $*"; }
}

# refuse CODE "<stderr pattern>" args...: exit CODE, one stderr line, no stdout
refuse() {
  code=$1 pattern=$2; shift 2
  status=0
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
  [ "$status" -eq "$code" ] || fail "expected exit $code, got $status for: $*"
  [ ! -s "$tmp/out" ] || fail "stdout not empty for: $*"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || { cat "$tmp/err"; fail "expected one error line for: $*"; }
  grep -q "$pattern" "$tmp/err" || { cat "$tmp/err"; fail "error text for: $*"; }
}

expect "Namespace(ignore_case=False, order=4, ref='ref.txt', sacrebleu=False, sentence_bleu=False, sys='hyp.txt')
BLEU4 = 74.19, 90.9/77.8/71.4/60.0 (BP=1.000, ratio=1.000, syslen=11, reflen=11)" \
  --sys hyp.txt --ref ref.txt

expect "Namespace(ignore_case=False, order=2, ref='ref.txt', sacrebleu=False, sentence_bleu=False, sys='hyp.txt')
BLEU2 = 84.09, 90.9/77.8 (BP=1.000, ratio=1.000, syslen=11, reflen=11)" \
  -s hyp.txt -r ref.txt -o 2

expect "Namespace(ignore_case=False, order=4, ref='ref.txt', sacrebleu=False, sentence_bleu=True, sys='hyp.txt')
0 BLEU4 = 63.89, 83.3/66.7/60.0/50.0 (BP=1.000, ratio=1.000, syslen=6, reflen=6)
1 BLEU4 = 100.00, 100.0/100.0/100.0/100.0 (BP=1.000, ratio=1.000, syslen=5, reflen=5)" \
  --sys hyp.txt --ref ref.txt --sentence-bleu

expect "Namespace(ignore_case=False, order=4, ref='ref.txt', sacrebleu=True, sentence_bleu=False, sys='hyp.txt')
BLEU = 74.19 90.9/77.8/71.4/60.0 (BP = 1.000 ratio = 1.000 hyp_len = 11 ref_len = 11)" \
  --sys hyp.txt --ref ref.txt --sacrebleu

expect "Namespace(ignore_case=False, order=4, ref='ref.txt', sacrebleu=False, sentence_bleu=False, sys='hyp_mixed_case_crlf.txt')
BLEU4 = 0.00, 27.3/11.1/0.0/0.0 (BP=1.000, ratio=1.000, syslen=11, reflen=11)" \
  --sys hyp_mixed_case_crlf.txt --ref ref.txt

expect "Namespace(ignore_case=True, order=4, ref='ref.txt', sacrebleu=False, sentence_bleu=False, sys='hyp_mixed_case_crlf.txt')
BLEU4 = 74.19, 90.9/77.8/71.4/60.0 (BP=1.000, ratio=1.000, syslen=11, reflen=11)" \
  --sys hyp_mixed_case_crlf.txt --ref ref.txt --ignore-case

expect "Namespace(ignore_case=False, order=4, ref='ref_punct.txt', sacrebleu=True, sentence_bleu=False, sys='hyp_punct.txt')
BLEU = 35.36 75.0/33.3/25.0/25.0 (BP = 1.000 ratio = 1.333 hyp_len = 4 ref_len = 3)" \
  --sys hyp_punct.txt --ref ref_punct.txt --sacrebleu

# --sys - (the default) reads standard input
"$bin" --ref ref.txt <hyp.txt >"$tmp/out" 2>&1 || fail "stdin run failed"
grep -q "^Namespace(.*sys='-')\$" "$tmp/out" || fail "stdin Namespace line"
grep -q '^BLEU4 = 74.19, ' "$tmp/out" || fail "stdin score"

refuse 1 "System output file missing.txt does not exist" --sys missing.txt --ref ref.txt
refuse 1 "Reference file missing.txt does not exist" --sys hyp.txt --ref missing.txt
refuse 1 "hyp_short.txt has 1 lines but ref.txt has 2" --sys hyp_short.txt --ref ref.txt
refuse 1 "latin1.txt: not valid UTF-8 (byte 3, line 1)" --sys latin1.txt --ref ref.txt
refuse 1 "order 5 aren't supported" --sys hyp.txt --ref ref.txt --order 5
refuse 2 "required: -r/--ref" --sys hyp.txt
refuse 2 "unrecognized arguments: --beam" --sys hyp.txt --ref ref.txt --beam 5
echo "PASS: fairseq-score prints fairseq's lines and refuses bad input"
