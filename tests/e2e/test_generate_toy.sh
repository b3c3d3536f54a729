#!/bin/sh
# fairseq-generate with a real Transformer: train transformer_tiny for 60
# updates on the toy corpus, translate the test split at beam 5 (at most
# 1.2 x source + 10 tokens: the young model rarely ends a sentence) and check
# fairseq's output format (one S/T/H/D/P line per sentence, H = D score, one
# P score per token and </s>, the Translated and BLEU lines), that beam 1
# gives one hypothesis per sentence too, and that an ensemble of the
# checkpoint with itself translates alike.
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
gen=$FSQ_BUILD_DIR/fairseq-generate
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-generate-toy-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

FSQ_BUILD_DIR=$FSQ_BUILD_DIR "$FSQ_SOURCE_DIR/scripts/make-toy-corpus" "$tmp/text" 2000 3 > /dev/null
"$FSQ_BUILD_DIR/fairseq-preprocess" -s src -t tgt --trainpref "$tmp/text/train" \
  --validpref "$tmp/text/valid" --testpref "$tmp/text/test" --joined-dictionary \
  --destdir "$tmp/bin" --workers 2 > /dev/null
"$FSQ_BUILD_DIR/fairseq-train" "$tmp/bin" --cpu --arch transformer_tiny --share-all-embeddings \
  --optimizer adam --adam-betas '(0.9, 0.98)' --lr 0.005 --lr-scheduler inverse_sqrt \
  --warmup-updates 50 --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
  --dropout 0.1 --max-tokens 1024 --max-update 60 --seed 3 --log-format simple \
  --save-dir "$tmp/ck" --no-epoch-checkpoints > "$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log"; fail "training"; }
ck=$tmp/ck/checkpoint_last.fsq
n=$(wc -l < "$tmp/text/test.src")

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

"$gen" "$tmp/bin" --cpu --path "$ck" --beam 5 --max-tokens 4096 --max-len-a 1.2 --max-len-b 10 > "$tmp/b5" 2> "$tmp/err" ||
  { cat "$tmp/err"; fail "generate --beam 5"; }
check_format "$tmp/b5" 5
"$gen" "$tmp/bin" --cpu --path "$ck" --beam 1 --max-tokens 4096 --max-len-a 1.2 --max-len-b 10 > "$tmp/b1" 2> "$tmp/err" ||
  { cat "$tmp/err"; fail "generate --beam 1"; }
check_format "$tmp/b1" 1
"$gen" "$tmp/bin" --cpu --path "$ck:$ck" --beam 5 --max-tokens 4096 --max-len-a 1.2 --max-len-b 10 2> "$tmp/err" | grep '^H-' | cut -f1,3 > "$tmp/e2" ||
  { cat "$tmp/err"; fail "generate with an ensemble"; }
grep '^H-' "$tmp/b5" | cut -f1,3 > "$tmp/e1"
cmp -s "$tmp/e1" "$tmp/e2" || fail "an ensemble of the checkpoint twice translates differently"
grep '^Generate' "$tmp/b5"
echo "PASS: fairseq-generate with transformer_tiny"
