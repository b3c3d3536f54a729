#!/bin/sh
# fairseq-preprocess reproduces PyTorch fairseq 0.12.3's outputs byte for
# byte on every case of tests/fixtures/preprocess (see its README.md): the
# dict.*.txt, .bin and .idx files, and every preprocess.log line after the
# Namespace(...) line. Also: --workers 3 writes the same bytes as 1 worker.
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
bin=$FSQ_BUILD_DIR/fairseq-preprocess
fix=$FSQ_SOURCE_DIR/tests/fixtures/preprocess
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-preprocess-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$tmp"
ln -s "$fix/input" input
fail=0

# check CASE OUTDIR: every golden file equal, log lines equal.
check() {
  for f in "$fix/$1"/*; do
    name=$(basename "$f")
    [ "$name" = preprocess.log ] && continue
    cmp "$f" "$2/$name" || { echo "FAIL: $1: $name differs"; fail=1; }
  done
  for f in "$2"/*; do
    [ -e "$fix/$1/$(basename "$f")" ] || { echo "FAIL: $1: extra file $(basename "$f")"; fail=1; }
  done
  tail -n +2 "$fix/$1/preprocess.log" > "$tmp/want.log"
  tail -n +2 "$2/preprocess.log" | sed "s|^Wrote preprocessed data to $2\$|Wrote preprocessed data to $1|" > "$tmp/got.log"
  diff "$tmp/want.log" "$tmp/got.log" || { echo "FAIL: $1: preprocess.log differs"; fail=1; }
}

# run CASE OUTDIR FLAGS...
run() {
  case_name=$1 out=$2
  shift 2
  "$bin" "$@" --destdir "$out" > "$tmp/stdout" || { echo "FAIL: $case_name: exit $?"; fail=1; return; }
  grep -q '| INFO | fairseq_cli.preprocess | Wrote preprocessed data to' "$tmp/stdout" ||
    { echo "FAIL: $case_name: no log line on stdout"; fail=1; }
  check "$case_name" "$out"
}

pair="--source-lang src --target-lang tgt --trainpref input/train"
run separate_threshold separate_threshold $pair --validpref input/valid --testpref input/test \
  --thresholdsrc 2 --thresholdtgt 2 --workers 1
run joined_nwords joined_nwords $pair --validpref input/valid --testpref input/test \
  --joined-dictionary --nwordssrc 1000 --workers 2
run srcdict_tgtdict srcdict_tgtdict $pair --validpref input/valid \
  --srcdict "$fix/separate_threshold/dict.src.txt" --tgtdict "$fix/separate_threshold/dict.tgt.txt" --workers 1
run only_source_big only_source_big --only-source --source-lang big --trainpref input/train \
  --validpref input/valid --workers 1
run padding_factor_1 padding_factor_1 $pair --padding-factor 1 --thresholdsrc 5 --workers 1
# more workers than the golden run: the same bytes
run separate_threshold sep3 -s src -t tgt --trainpref input/train --validpref input/valid \
  --testpref input/test --thresholdsrc 2 --thresholdtgt 2 --workers 3
run joined_nwords joined1 $pair --validpref input/valid --testpref input/test \
  --joined-dictionary --nwordssrc 1000 --workers 1

# --dict-only: the same dictionaries and nothing else
"$bin" $pair --thresholdsrc 2 --thresholdtgt 2 --dict-only --destdir dictonly > /dev/null
[ "$(ls dictonly | tr '\n' ' ')" = "dict.src.txt dict.tgt.txt preprocess.log " ] ||
  { echo "FAIL: --dict-only wrote $(ls dictonly)"; fail=1; }
cmp dictonly/dict.src.txt "$fix/separate_threshold/dict.src.txt" || fail=1
# --dataset-impl raw: fairseq copies the text files
"$bin" $pair --validpref input/valid --dataset-impl raw --destdir raw > /dev/null
cmp raw/valid.src-tgt.tgt input/valid.tgt || { echo "FAIL: raw copy differs"; fail=1; }

[ "$fail" -eq 0 ] && echo "PASS: all golden preprocess cases byte-identical"
exit "$fail"
