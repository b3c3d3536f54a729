# shellcheck shell=sh
# toy_data.sh: what end-to-end scripts share; sourced, not run. Needs
# FSQ_BUILD_DIR and FSQ_SOURCE_DIR.

# toy_tmp NAME: $tmp, a fresh directory removed on exit.
toy_tmp() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-$1-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT INT TERM
}

# toy_data LINES SEED: the toy corpus in $tmp/text, binarized with a joined
# dictionary into $tmp/bin (train, valid, test).
toy_data() {
  FSQ_BUILD_DIR=$FSQ_BUILD_DIR "$FSQ_SOURCE_DIR/scripts/make-toy-corpus" "$tmp/text" "$1" "$2"
  "$FSQ_BUILD_DIR/fairseq-preprocess" -s src -t tgt --trainpref "$tmp/text/train" \
    --validpref "$tmp/text/valid" --testpref "$tmp/text/test" --joined-dictionary \
    --destdir "$tmp/bin" --workers 2 > /dev/null
}

# toy_need_gpu: SKIP (exit 77) unless this build has CUDA and a GPU is visible.
toy_need_gpu() {
  if [ "${FSQ_HAVE_CUDA:-0}" != 1 ]; then echo "SKIP: built without CUDA"; exit 77; fi
  if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
    echo "SKIP: no GPU visible (nvidia-smi -L)"; exit 77
  fi
}

# toy_train SAVE_DIR MAX_UPDATE FLAGS...: the tiny Transformer of the
# training tests, logging every update.
toy_train() {
  dir=$1 updates=$2
  shift 2
  "$FSQ_BUILD_DIR/fairseq-train" "$tmp/bin" --arch transformer_tiny --share-all-embeddings \
    --optimizer adam --adam-betas '(0.9, 0.98)' --lr 0.005 --lr-scheduler inverse_sqrt \
    --warmup-updates 50 --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --dropout 0.1 --max-tokens 1024 --max-update "$updates" --seed 3 --log-interval 1 \
    --log-format simple --save-dir "$dir" --no-epoch-checkpoints "$@"
}

# toy_inner_losses LOG: the train_inner losses, one a line.
toy_inner_losses() { grep '| train_inner |' "$1" | sed -E 's/.* loss=([0-9.]+),.*/\1/'; }

# toy_curves_within A B BAND: each line of A within BAND (relative) of B's.
toy_curves_within() {
  paste "$1" "$2" | awk -v band="$3" '
    { d = ($1 - $2) / $2; if (d < 0) d = -d; if (d > worst) { worst = d; at = NR } }
    END { printf "largest train_inner loss difference: %.4f at update %d\n", worst, at; exit worst > band }'
}

# toy_decodes CHECKPOINT: translates $tmp/bin's test split on the CPU at
# beam 5 and prints a BLEU line; fails, showing why, otherwise.
toy_decodes() {
  "$FSQ_BUILD_DIR/fairseq-generate" "$tmp/bin" --path "$1" --cpu --beam 5 --max-tokens 4096 \
    > "$tmp/gen.out" 2> "$tmp/gen.err" || { cat "$tmp/gen.err"; return 1; }
  grep -q "BLEU4 = " "$tmp/gen.out" || { echo "no BLEU line"; return 1; }
}
