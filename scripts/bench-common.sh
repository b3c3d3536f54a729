# bench-common.sh: what bench-train, bench-distributed, bench-gpu and
# bench-generate share; sourced, not run. Needs $build (the build directory)
# and $here (scripts/).

# bench_setup NAME: checks the build, makes $tmp (removed on exit unless
# KEEP=1) and exports what fairseq-train needs.
bench_setup() {
  for b in fairseq-preprocess fairseq-train; do
    [ -x "$build/$b" ] || { echo "$1: $build/$b not built" >&2; exit 1; }
  done
  [ -d "$build/stage/components" ] ||
    { echo "$1: $build/stage/components missing (run 'make')" >&2; exit 1; }
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-$1-XXXXXX")
  if [ "${KEEP:-0}" = 1 ]; then echo "$1: keeping $tmp" >&2; else trap 'rm -rf "$tmp"' EXIT INT TERM; fi
  export FSQ_COMPONENT_PATH="$build/stage/components"
  # libgomp's default keeps idle workers spinning; on a shared machine a
  # spinning thread holds a core another of our threads (or a neighbour)
  # needs, and training ran 4.5x slower (600 vs 2,800 words/s under a load
  # of 8). On an idle VM the other way round: each wake-up of a sleeping
  # vCPU is slow, and passive trained 1.27x slower than active. Both are
  # recorded in BENCHMARKS.md; OMP_WAIT_POLICY=default leaves libgomp's own
  # (spin a while, then sleep), what a user who sets nothing gets.
  bench_wait_policy
}

# OMP_WAIT_POLICY for the run: passive unless set; "default" unsets it.
bench_wait_policy() {
  if [ "${OMP_WAIT_POLICY:-}" = default ]; then
    unset OMP_WAIT_POLICY
    wait_policy="default (unset)"
  else
    export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
    wait_policy=$OMP_WAIT_POLICY
  fi
}

# bench_corpus LINES [test]: the toy corpus (seed 1) binarized in $tmp/bin
# (train and valid; the test split too when asked); sets sents, src_tok,
# tgt_tok of the train split (tokens include </s>).
bench_corpus() {
  FSQ_BUILD_DIR=$build "$here/make-toy-corpus" "$tmp/text" "$1" 1
  bench_testpref=
  [ "${2:-}" = test ] && bench_testpref="--testpref $tmp/text/test"
  # shellcheck disable=SC2086 # $bench_testpref: none or two words
  "$build/fairseq-preprocess" -s src -t tgt --trainpref "$tmp/text/train" \
    --validpref "$tmp/text/valid" $bench_testpref --destdir "$tmp/bin" --workers 2 > "$tmp/preprocess.log" 2>&1 ||
    { cat "$tmp/preprocess.log" >&2; exit 1; }
  # "[src] .../train.src: 30000 sents, 377516 tokens, ..."
  sents=$(bench_counts src | cut -d' ' -f1)
  src_tok=$(bench_counts src | cut -d' ' -f2)
  tgt_tok=$(bench_counts tgt | cut -d' ' -f2)
}
# bench_counts LANG [SPLIT]: "sentences tokens" of SPLIT (default train).
bench_counts() { sed -n "s/.*\\[$1\\] .*${2:-train}\\.$1: \\([0-9]*\\) sents, \\([0-9]*\\) tokens.*/\\1 \\2/p" "$tmp/preprocess.log"; }

# bench_config NAME: the model bench_train_args trains (bench_model, with
# bench_dropout and bench_max_tokens) and its shape for the FLOP count
# (bench_L layers on each side, width bench_d, FFN width bench_f):
#   standard  the standard configuration: transformer, 3 + 3 layers, d 256,
#             ffn 1024, 4 heads, shared decoder input/output embeddings,
#             dropout 0.1, --max-tokens 4096
#   big       transformer_vaswani_wmt_en_de_big as its preset has it
#             (components/models/transformer: 6 + 6 layers, d 1024, ffn
#             4096, 16 heads, no shared embeddings, dropout 0.3),
#             --max-tokens 8192
bench_config() {
  case $1 in
    standard)
      bench_L=3 bench_d=256 bench_f=1024 bench_dropout=0.1 bench_max_tokens=4096
      bench_model="--arch transformer --encoder-layers $bench_L --decoder-layers $bench_L"
      bench_model="$bench_model --encoder-embed-dim $bench_d --decoder-embed-dim $bench_d"
      bench_model="$bench_model --encoder-ffn-embed-dim $bench_f --decoder-ffn-embed-dim $bench_f"
      bench_model="$bench_model --encoder-attention-heads 4 --decoder-attention-heads 4"
      bench_model="$bench_model --share-decoder-input-output-embed" ;;
    big)
      bench_L=6 bench_d=1024 bench_f=4096 bench_dropout=0.3 bench_max_tokens=8192
      bench_model="--arch transformer_vaswani_wmt_en_de_big" ;;
    *) echo "bench_config: unknown configuration '$1' (standard, big)" >&2; return 1 ;;
  esac
}
bench_config standard
# Where bench_train_args trains (fairseq-train's device flag) and what it
# does with checkpoints.
bench_device=--cpu
bench_save=--no-save
# bench_train_args UPDATES LOG_INTERVAL: fairseq-train's arguments for the
# configuration, device and checkpoints above.
bench_train_args() {
  echo "$build/fairseq-train $tmp/bin $bench_device $bench_model" \
    "--optimizer adam --adam-betas (0.9,0.98) --lr 5e-4 --lr-scheduler inverse_sqrt" \
    "--warmup-updates 4000 --criterion label_smoothed_cross_entropy --label-smoothing 0.1" \
    "--dropout $bench_dropout --max-tokens $bench_max_tokens --max-update $1 --log-interval $2" \
    "--log-format simple $bench_save --disable-validation ${TRAIN_ARGS:-}"
}

# bench_flops VOCAB SENTS SRC_TOK TGT_TOK: the matmul FLOPs of forward +
# backward per target token of the configuration (bench_L, bench_d,
# bench_f) on a corpus with those counts; the count of scripts/bench-train's
# header (which keeps its own copy in its report):
#   encoder, per source token:  L (4 d^2 + 2 d f) + L 2 d^2 (encoder-attention K, V)
#   decoder, per target token:  L (6 d^2 + 2 d f) + d V (output projection)
#   attention scores and sums:  2 d S per query token per attention (S: keys)
# times 2 FLOPs per multiply-add, times 3 for forward + backward.
bench_flops() {
  awk -v L="$bench_L" -v d="$bench_d" -v f="$bench_f" -v V="$1" -v ns="$2" -v st="$3" -v tt="$4" 'BEGIN {
    Ts = st / ns; Tt = tt / ns; r = st / tt   # mean lengths; source tokens per target token
    enc = L * (4 * d * d + 2 * d * f) + L * 2 * d * d + L * 2 * d * Ts
    dec = L * (6 * d * d + 2 * d * f) + d * V + L * 2 * d * (Tt + Ts)
    printf "%.0f\n", 3 * 2 * (dec + r * enc) }'
}

# bench_timed LOG LOG_INTERVAL: "secs words updates" over the train_inner
# lines of LOG but the first (start-up, first touch of the arena).
bench_timed() {
  grep '| train_inner |' "$1" | awk -v k="$2" '
    function field(name,   i, a) {
      for (i = 1; i <= NF; i++) if (index($i, name "=") == 1) { split($i, a, "="); sub(",", "", a[2]); return a[2] + 0 }
      return -1
    }
    NR > 1 { wps = field("wps"); ups = field("ups"); if (wps <= 0 || ups <= 0) next
      secs += k / ups; words += wps * k / ups; n += k }
    END { if (n == 0) exit 1; printf "%.6f %.1f %d\n", secs, words, n }'
}

bench_cpu_name() { grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || echo unknown; }
