#!/bin/sh
# fairseq-upgrade moves the old checkpoint of the test component renamer
# (1.0.0: "enc.w") to renamer 2.0.0 ("encoder.weight"): --check reports the
# step, the upgrade prints it, the new file needs nothing more and holds the
# same tensor bytes under the new names; errors are one line, exit 2, and
# leave no output file.
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
bin=$FSQ_BUILD_DIR/fairseq-upgrade
old=$FSQ_SOURCE_DIR/tests/fixtures/checkpoint/old_renamer.fsq
libs=$FSQ_BUILD_DIR/tests/components/.libs
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-upgrade-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$tmp/both/models/renamer/1.0.0" "$tmp/both/models/renamer/2.0.0" "$tmp/v1/models/renamer/1.0.0"
cp "$libs/renamer_v1.so" "$tmp/both/models/renamer/1.0.0/renamer.so"
cp "$libs/renamer_v2.so" "$tmp/both/models/renamer/2.0.0/renamer.so"
cp "$libs/renamer_v1.so" "$tmp/v1/models/renamer/1.0.0/renamer.so"

status=0
FSQ_COMPONENT_PATH=$tmp/both "$bin" "$old" --check >"$tmp/out" || status=$?
cat "$tmp/out"
[ "$status" -eq 1 ] || fail "--check on an old file: exit $status, expected 1"
grep -qx "would apply model renamer 1.0.0 -> 2.0.0: rename enc.w to encoder.weight" "$tmp/out" ||
  fail "--check does not name the step"

FSQ_COMPONENT_PATH=$tmp/both "$bin" "$old" -o "$tmp/new.fsq" >"$tmp/out"
cat "$tmp/out"
grep -qx "applied model renamer 1.0.0 -> 2.0.0: rename enc.w to encoder.weight" "$tmp/out" ||
  fail "the upgrade does not print its step"
FSQ_COMPONENT_PATH=$tmp/both "$bin" "$tmp/new.fsq" --check >"$tmp/out" ||
  fail "the upgraded file is not up to date"
grep -q "up to date" "$tmp/out" || fail "--check does not say up to date"

# same bytes under the new names (tar reads the .fsq as it is)
for pair in "model/enc.w model/encoder.weight" "model/dec.b model/dec.b" \
  "optimizer/enc.w.exp_avg optimizer/encoder.weight.exp_avg" \
  "optimizer/enc.w.exp_avg_sq optimizer/encoder.weight.exp_avg_sq"; do
  set -- $pair
  tar -xOf "$old" "$1" >"$tmp/a" && tar -xOf "$tmp/new.fsq" "$2" >"$tmp/b" || fail "cannot extract $1 / $2"
  cmp -s "$tmp/a" "$tmp/b" || fail "$2 differs from the old $1"
done
tar -tf "$tmp/new.fsq" | grep -qx "model/enc.w" && fail "the old name is still there"

# errors: one line, exit 2, no output file
expect_error() { # want, then the command
  want=$1; shift
  status=0
  "$@" >"$tmp/out" 2>"$tmp/err" || status=$?
  [ "$status" -eq 2 ] || fail "exit $status (expected 2) for: $*"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || { cat "$tmp/err"; fail "not one error line for: $*"; }
  grep -q "$want" "$tmp/err" || { cat "$tmp/err"; fail "error lacks '$want'"; }
  [ ! -e "$tmp/bad.fsq" ] || fail "an output file was written for: $*"
  cat "$tmp/err"
}
expect_error "model renamer 2.0.0 is newer than the installed 1.0.0" \
  env FSQ_COMPONENT_PATH="$tmp/v1" "$bin" "$tmp/new.fsq" -o "$tmp/bad.fsq"
head -c 5000 "$tmp/new.fsq" >"$tmp/cut.fsq"
expect_error "cut.fsq" env FSQ_COMPONENT_PATH="$tmp/both" "$bin" "$tmp/cut.fsq" -o "$tmp/bad.fsq"
expect_error "give -o OUT.fsq or --check" "$bin" "$old"
expect_error "No such file" "$bin" "$tmp/absent.fsq" -o "$tmp/bad.fsq"
echo "PASS: fairseq-upgrade upgrades, reports and refuses as expected"
