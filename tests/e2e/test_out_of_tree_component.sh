#!/bin/sh
# Installs fairseq-c into a DESTDIR, builds the example component against the
# installed headers with pkg-config, installs it with its own Makefile, and
# checks that the installed fairseq-components lists it and its architecture.
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}" "${FSQ_PREFIX:?}" "${FSQ_LIBDIR:?}" "${FSQ_BINDIR:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-oot-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/root

${MAKE:-make} -s -C "$FSQ_BUILD_DIR" install DESTDIR="$dest" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; echo "FAIL: make install into DESTDIR"; exit 1; }

cp -r "$FSQ_SOURCE_DIR/tests/example-component" "$tmp/example"
chmod -R u+w "$tmp/example"
export PKG_CONFIG_PATH="$dest$FSQ_LIBDIR/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$dest"
${MAKE:-make} -s -C "$tmp/example" install DESTDIR="$dest"

componentdir=$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=componentdir fairseq-c)
so="$dest$componentdir/models/example/0.1.0/example.so"
[ -f "$so" ] || { echo "FAIL: $so was not installed"; exit 1; }

export LD_LIBRARY_PATH="$dest$FSQ_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export FSQ_COMPONENT_PATH="$dest$componentdir"
out=$("$dest$FSQ_BINDIR/fairseq-components")
echo "$out"
echo "$out" | grep -Eq "^model +example +0\.1\.0 +$so\$" ||
  { echo "FAIL: example component not listed"; exit 1; }
archs=$("$dest$FSQ_BINDIR/fairseq-components" --archs)
echo "$archs" | grep -Eq "^example_tiny +example +0\.1\.0\$" ||
  { echo "FAIL: example_tiny architecture not listed"; exit 1; }
echo "PASS: out-of-tree component built, installed and listed"
