#!/bin/sh
# Decoding on the GPU, where one is (SKIP elsewhere): transformer_tiny is
# trained 150 updates with --device cuda, and its checkpoint is decoded on
# the GPU and on the CPU in fp32. fairseq-generate at beam 5 and beam 1 and
# fairseq-interactive must give the same hypotheses (the same tokens, hence
# the same BLEU line) on both; the scores may differ by float reordering
# only (each H- score within 1e-3, in base 2). fairseq-validate's nll_loss
# on the GPU is the CPU's up to the printed rounding (0.002).
set -eu
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
if [ "${FSQ_HAVE_CUDA:-0}" != 1 ]; then echo "SKIP: built without CUDA"; exit 77; fi
if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
  echo "SKIP: no GPU visible (nvidia-smi -L)"; exit 77
fi
export LC_ALL=C # sort and join agree on the order of the ids
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-generate-cuda-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
FSQ_BUILD_DIR=$FSQ_BUILD_DIR "$FSQ_SOURCE_DIR/scripts/make-toy-corpus" "$tmp/text" 2000 3
"$FSQ_BUILD_DIR/fairseq-preprocess" -s src -t tgt --trainpref "$tmp/text/train" \
  --validpref "$tmp/text/valid" --testpref "$tmp/text/test" --joined-dictionary \
  --destdir "$tmp/bin" --workers 2 > /dev/null
"$FSQ_BUILD_DIR/fairseq-train" "$tmp/bin" --device cuda --arch transformer_tiny \
  --share-all-embeddings --optimizer adam --adam-betas '(0.9, 0.98)' --lr 0.005 \
  --lr-scheduler inverse_sqrt --warmup-updates 50 --criterion label_smoothed_cross_entropy \
  --label-smoothing 0.1 --dropout 0.1 --max-tokens 1024 --max-update 150 --seed 3 \
  --log-format simple --save-dir "$tmp/ck" --no-epoch-checkpoints > "$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log"; echo "FAIL: GPU training"; exit 1; }
ck=$tmp/ck/checkpoint_last.fsq
fail=0

generate() { # out device beam
  "$FSQ_BUILD_DIR/fairseq-generate" "$tmp/bin" --path "$ck" --device "$2" --beam "$3" \
    --max-tokens 4096 --max-len-a 1.2 --max-len-b 10 > "$1" 2> "$1.err" ||
    { cat "$1.err"; echo "FAIL: fairseq-generate --device $2 --beam $3"; fail=1; }
}
# hyps FILE: "id<TAB>text" of the H- lines; scores FILE: "id score"
hyps() { grep '^H-' "$1" | cut -f1,3 | sort; }
scores() { grep '^H-' "$1" | cut -f1,2 | sort; }
same_hyps() { # what cpu_file gpu_file
  hyps "$2" > "$tmp/h.cpu"
  hyps "$3" > "$tmp/h.gpu"
  [ -s "$tmp/h.cpu" ] || { echo "FAIL: $1: no hypotheses on the CPU"; fail=1; return; }
  if ! cmp -s "$tmp/h.cpu" "$tmp/h.gpu"; then
    echo "FAIL: $1: the GPU's hypotheses differ from the CPU's:"
    diff "$tmp/h.cpu" "$tmp/h.gpu" | head -n 10
    fail=1
  fi
}

for beam in 5 1; do
  generate "$tmp/cpu.b$beam" cpu "$beam"
  generate "$tmp/gpu.b$beam" cuda "$beam"
  same_hyps "generate --beam $beam" "$tmp/cpu.b$beam" "$tmp/gpu.b$beam"
  scores "$tmp/cpu.b$beam" > "$tmp/s.cpu"
  scores "$tmp/gpu.b$beam" > "$tmp/s.gpu"
  join "$tmp/s.cpu" "$tmp/s.gpu" | awk -v b="$beam" '
    { d = $2 - $3; if (d < 0) d = -d; if (d > worst) worst = d }
    END { printf "beam %d: largest H- score difference %.2g\n", b, worst; exit worst > 1e-3 }' ||
    { echo "FAIL: beam $beam: GPU scores leave the CPU's by more than 1e-3"; fail=1; }
  bc=$(grep '^Generate test' "$tmp/cpu.b$beam" || true)
  bg=$(grep '^Generate test' "$tmp/gpu.b$beam" || true)
  [ -n "$bc" ] && [ "$bc" = "$bg" ] ||
    { echo "FAIL: beam $beam: BLEU lines differ: '$bc' / '$bg'"; fail=1; }
done

interactive() { # out device
  head -n 20 "$tmp/text/test.src" | "$FSQ_BUILD_DIR/fairseq-interactive" "$tmp/bin" \
    --path "$ck" --device "$2" --beam 5 --max-len-a 1.2 --max-len-b 10 > "$1" 2> "$1.err" ||
    { cat "$1.err"; echo "FAIL: fairseq-interactive --device $2"; fail=1; }
}
interactive "$tmp/int.cpu" cpu
interactive "$tmp/int.gpu" cuda
same_hyps "interactive" "$tmp/int.cpu" "$tmp/int.gpu"

validate() { # device -> the nll_loss of the valid subset
  "$FSQ_BUILD_DIR/fairseq-validate" "$tmp/bin" --path "$ck" --device "$1" --max-tokens 1024 \
    > "$tmp/valid.$1" 2>&1 || { cat "$tmp/valid.$1" >&2; echo "FAIL: fairseq-validate --device $1" >&2; }
  grep "valid on 'valid' subset" "$tmp/valid.$1" | sed -E 's/.*\| nll_loss ([0-9.]+) .*/\1/'
}
vc=$(validate cpu)
vg=$(validate cuda)
awk -v a="$vc" -v b="$vg" 'BEGIN { if (a == "" || b == "") exit 1; d = a - b; if (d < 0) d = -d; exit d > 0.002 }' ||
  { echo "FAIL: fairseq-validate nll_loss CPU '$vc', GPU '$vg'"; fail=1; }

[ "$fail" -eq 0 ] && echo "PASS: a GPU-trained checkpoint decodes on the GPU as on the CPU (valid nll_loss $vg, CPU $vc)"
exit "$fail"
