#!/bin/sh
# fairseq-components lists the staged components and refuses broken files
# with one line each, naming the file and the reason, and a non-zero exit.
set -eu
: "${FSQ_BUILD_DIR:?}"
bin=$FSQ_BUILD_DIR/fairseq-components
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-components-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

out=$("$bin")
echo "$out" | grep -Eq '^lr_scheduler +inverse_sqrt +1\.0\.0 +/.*/lr_schedulers/inverse_sqrt/1\.0\.0/inverse_sqrt\.so$' ||
  { echo "FAIL: inverse_sqrt not listed"; echo "$out"; exit 1; }
echo "$out" | grep -Eq '^lr_scheduler +fixed +1\.0\.0 ' || { echo "FAIL: fixed not listed"; exit 1; }

mkdir -p "$tmp/user/optimizers/adam/1.0.0" "$tmp/user/tasks/translation/1.0"
printf 'not a library\n' > "$tmp/user/optimizers/adam/1.0.0/adam.so"
cp "$FSQ_BUILD_DIR/components/lr_schedulers/fixed/.libs/fixed.so" "$tmp/user/tasks/translation/1.0/translation.so"
status=0
"$bin" --user-dir "$tmp/user" >"$tmp/out" 2>"$tmp/err" || status=$?
cat "$tmp/err"
[ "$status" -eq 1 ] || { echo "FAIL: expected exit 1, got $status"; exit 1; }
[ "$(wc -l < "$tmp/err")" -eq 2 ] || { echo "FAIL: expected exactly two error lines"; exit 1; }
grep -q "^fairseq-components: error: $tmp/user/optimizers/adam/1.0.0/adam.so: not an ELF shared object$" "$tmp/err" ||
  { echo "FAIL: non-ELF file not reported"; exit 1; }
grep -q "translation/1.0/translation.so: directory '1.0' is not a version" "$tmp/err" ||
  { echo "FAIL: bad version directory not reported"; exit 1; }
grep -Eq '^lr_scheduler +fixed ' "$tmp/out" || { echo "FAIL: good components no longer listed"; exit 1; }

status=0
"$bin" --no-such-flag 2>"$tmp/err" || status=$?
[ "$status" -eq 2 ] && grep -q "unrecognized arguments: --no-such-flag" "$tmp/err" ||
  { echo "FAIL: unknown flag not refused"; exit 1; }
echo "PASS: fairseq-components lists and refuses as expected"
