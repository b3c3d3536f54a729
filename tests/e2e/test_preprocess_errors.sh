#!/bin/sh
# fairseq-preprocess refuses bad input with one line on stderr naming the
# file and the reason, exits non-zero, and leaves nothing in --destdir.
set -eu
: "${FSQ_BUILD_DIR:?}"
bin=$FSQ_BUILD_DIR/fairseq-preprocess
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-pperr-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$tmp"
fail=0
printf 'a b c\nb c\n\nc a\n' > ok.src
printf 'x y\ny\nz\nx\n' > ok.tgt
printf 'a b\n' > bad.src
printf 'caf\351 b\n' >> bad.src
printf 'x\nx\n' > bad.tgt
: > empty.src
printf 'x\n' > empty.tgt
printf 'a 3\nb\n' > broken.dict
mkdir kept
echo untouched > kept/other.txt

# expect NAME STATUS PATTERN DESTDIR ARGS...: exit status, one stderr line
# matching PATTERN, DESTDIR absent or holding only other.txt afterwards.
expect() {
  name=$1 want=$2 pattern=$3 dest=$4
  shift 4
  status=0
  "$bin" "$@" --destdir "$dest" >/dev/null 2>err || status=$?
  [ "$status" -eq "$want" ] || { echo "FAIL: $name: exit $status, expected $want"; fail=1; }
  [ "$(wc -l < err)" -eq 1 ] || { echo "FAIL: $name: expected one stderr line:"; cat err; fail=1; }
  grep -q -- "$pattern" err || { echo "FAIL: $name: stderr lacks '$pattern':"; cat err; fail=1; }
  if [ "$dest" = kept ]; then
    [ "$(ls kept)" = other.txt ] || { echo "FAIL: $name: left files in kept: $(ls kept)"; fail=1; }
  else
    [ ! -e "$dest" ] || { echo "FAIL: $name: created $dest"; fail=1; }
  fi
  echo "ok: $name: $(cat err)"
}

pair="-s src -t tgt"
expect malformed_dict 1 "broken.dict:2: incorrect dictionary format" out1 $pair \
  --trainpref ok --srcdict broken.dict
expect non_utf8_line 1 "bad.src:2: not valid UTF-8" kept $pair --trainpref bad
expect non_utf8_in_valid_split 1 "bad.src:2: not valid UTF-8" kept $pair --trainpref ok \
  --validpref ok,bad
expect empty_input 1 "empty.src: empty input file" out2 $pair --trainpref empty
expect missing_input 1 "missing.src: No such file or directory" kept $pair --trainpref missing
expect unknown_flag 2 "no-such-flag" out3 $pair --trainpref ok --no-such-flag 3
expect bad_workers_value 2 "workers" out4 $pair --trainpref ok --workers many
expect lazy_impl 1 "dataset-impl lazy" out5 $pair --trainpref ok --dataset-impl lazy
expect no_target 1 "target-lang" out6 -s src --trainpref ok

# an existing dictionary is not overwritten (fairseq's FileExistsError)
"$bin" $pair --trainpref ok --destdir done >/dev/null
cp done/dict.src.txt dict.before
status=0
"$bin" $pair --trainpref ok --destdir done >/dev/null 2>err || status=$?
[ "$status" -eq 1 ] && grep -q "done/dict.src.txt: already exists" err ||
  { echo "FAIL: existing dictionary not refused"; cat err; fail=1; }
cmp -s dict.before done/dict.src.txt || { echo "FAIL: dictionary changed"; fail=1; }
[ "$(grep -c 'Wrote preprocessed data' done/preprocess.log)" -eq 1 ] ||
  { echo "FAIL: failed run wrote to preprocess.log"; fail=1; }

[ "$fail" -eq 0 ] && echo "PASS"
exit "$fail"
