#!/bin/sh
# Data-parallel fairseq-train under mpirun on the toy corpus (transformer_tiny,
# --dropout 0, 6 updates):
#  (a) 2 ranks with --max-tokens T end with the parameters of 1 rank with
#      --update-freq 2 --max-tokens T (rank r takes batches r, r+2, ... of
#      the epoch's list, so both see the same batches per update);
#  (a') and of 1 rank with --max-tokens 2T where 2T holds both ranks'
#      batches (a corpus made for it);
#  (b) 2 ranks stopped after 3 updates and resumed end bit-identical to the
#      straight run; the same checkpoint resumed by 1 rank with
#      --update-freq 2 ends as (a); a position 2 ranks cannot continue from
#      is refused with a clear message;
#  (c) a rank killed (SIGKILL) or stopped (SIGSTOP) mid-training makes the
#      job exit non-zero within --heartbeat-timeout, naming the rank;
#  (d) --bf16 and --fp16 on 2 ranks follow 1 rank with --update-freq 2.
# Skips (77) without MPI or mpirun.
set -u
: "${FSQ_BUILD_DIR:?}" "${FSQ_SOURCE_DIR:?}"
if [ "${FSQ_HAVE_MPI:-0}" != 1 ]; then
  echo "SKIP: built without MPI (configure found no Open MPI)"; exit 77
fi
mpirun=${MPIRUN:-$(command -v mpirun || true)}
if [ -z "$mpirun" ] || [ ! -x "$mpirun" ]; then
  echo "SKIP: mpirun not found"; exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsq-train-dist-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# CI runs as root; Open MPI refuses root without these.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
# Two ranks share the machine's cores: one thread each.
OMP_NUM_THREADS=1
export OMP_NUM_THREADS
mpi="$mpirun -np 2 --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
close=$FSQ_BUILD_DIR/tests/e2e/f32_close

FSQ_BUILD_DIR=$FSQ_BUILD_DIR "$FSQ_SOURCE_DIR/scripts/make-toy-corpus" "$tmp/text" 2000 3 > /dev/null
"$FSQ_BUILD_DIR/fairseq-preprocess" -s src -t tgt --trainpref "$tmp/text/train" \
  --validpref "$tmp/text/valid" --testpref "$tmp/text/test" --joined-dictionary \
  --destdir "$tmp/bin" --workers 2 > /dev/null || { echo "FAIL: preprocess"; exit 1; }

fail=0
train() { # save_dir max_update [flags...]: fairseq-train's arguments
  dir=$1 updates=$2
  shift 2
  echo "$FSQ_BUILD_DIR/fairseq-train" "$tmp/bin" --cpu --arch transformer_tiny --share-all-embeddings \
    --optimizer adam --adam-betas "'(0.9, 0.98)'" --lr 0.005 --lr-scheduler inverse_sqrt \
    --warmup-updates 50 --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --dropout 0 --max-tokens 1024 --max-update "$updates" --seed 3 --log-interval 1 \
    --log-format simple --save-dir "$dir" --no-epoch-checkpoints "$@"
}
# run LOG COMMAND...: status in $status, seconds in $elapsed.
run() {
  log=$1
  shift
  start=$(date +%s)
  status=0
  eval "timeout 120 $*" > "$log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - start))
}
must() { # LOG WHAT: the last run succeeded
  [ "$status" -eq 0 ] || { cat "$1"; echo "FAIL: $2 (exit $status)"; exit 1; }
}
# same A.fsq B.fsq RTOL: every model tensor within RTOL of the tensor's scale.
# The attention key biases get a looser bound: their true gradient is zero
# (a constant added to every key of a query cancels in the softmax), so what
# they receive is rounding noise, which Adam's normalization turns into
# steps of the learning rate's size whatever its magnitude.
same() {
  ok=0
  for m in $(tar -tf "$1" | grep '^model/'); do
    tar -xOf "$1" "$m" > "$tmp/x"
    tar -xOf "$2" "$m" > "$tmp/y" 2>/dev/null || { echo "$m missing from $2"; ok=1; continue; }
    tol=$3
    case $m in *k_proj.bias) tol=1e-3 ;; esac
    out=$("$close" "$tmp/x" "$tmp/y" "$tol") || { echo "$m: $out"; ok=1; }
  done
  return $ok
}
worst() { # A.fsq B.fsq: the largest relative difference over the tensors but k_proj.bias
  for m in $(tar -tf "$1" | grep '^model/' | grep -v 'k_proj.bias'); do
    tar -xOf "$1" "$m" > "$tmp/x"
    tar -xOf "$2" "$m" > "$tmp/y"
    "$close" "$tmp/x" "$tmp/y" 1 | sed -E 's/.*max relative ([^,]*),.*/\1/'
  done | sort -g | tail -n 1
}

# --distributed-world-size must be mpirun's -np.
run "$tmp/ws.log" "$(train "$tmp/ws" 1 --distributed-world-size 2)"
[ "$status" -ne 0 ] && grep -q -- '--distributed-world-size 2, but this job has 1 rank(s)' "$tmp/ws.log" ||
  { cat "$tmp/ws.log"; echo "FAIL: --distributed-world-size 2 accepted by 1 rank"; fail=1; }

# (a) 1 rank x --update-freq 2 == 2 ranks.
run "$tmp/one.log" "$(train "$tmp/one" 6 --update-freq 2)"
must "$tmp/one.log" "1 rank"
run "$tmp/two.log" "$mpi $(train "$tmp/two" 6 --bucket-cap-mb 1)"
must "$tmp/two.log" "2 ranks"
# small buckets: each starts its reduction while backward still runs
grep -Eq 'buckets posted during backward: ([2-9]|[1-9][0-9]+)\.0 of \1 per update' "$tmp/two.log" ||
  { cat "$tmp/two.log"; echo "FAIL: gradient buckets not posted during backward"; fail=1; }
grep -q 'training on 2 devices' "$tmp/two.log" || { cat "$tmp/two.log"; echo "FAIL: not 2 ranks"; fail=1; }
# only rank 0 logs: one line per update, one checkpoint writer
[ "$(grep -c '| train_inner |' "$tmp/two.log")" -eq 6 ] || { cat "$tmp/two.log"; echo "FAIL: train_inner lines not from rank 0 alone"; fail=1; }
[ "$(grep -c 'Saved checkpoint' "$tmp/two.log")" -eq 1 ] || { echo "FAIL: checkpoint saved by more than rank 0"; fail=1; }
# the summed criterion logs make the same loss lines
losses() { grep -E '\| train_inner \|' "$1" | sed -E 's/.*(loss=[0-9.]+, nll_loss=[0-9.]+).*(wpb=[0-9.]+, bsz=[0-9.]+).*(gnorm=[0-9.]+).*/\1 \2 \3/'; }
losses "$tmp/one.log" > "$tmp/one.loss"
losses "$tmp/two.log" > "$tmp/two.loss"
cmp -s "$tmp/one.loss" "$tmp/two.loss" || { diff "$tmp/one.loss" "$tmp/two.loss"; echo "FAIL: 2-rank losses differ from 1 rank x 2"; fail=1; }
if same "$tmp/one/checkpoint_last.fsq" "$tmp/two/checkpoint_last.fsq" 1e-5; then
  echo "ok (a) 2 ranks == 1 rank --update-freq 2 (largest relative difference $(worst "$tmp/one/checkpoint_last.fsq" "$tmp/two/checkpoint_last.fsq"))"
else
  echo "FAIL: (a) parameters differ"; fail=1
fi

# (a') 2 ranks with --max-tokens T == 1 rank with --max-tokens 2T on the
# same batches: 16 pairs of 6 words (7 tokens with </s>), so T = 56 splits
# every epoch into 2 batches of 8 (one per rank) and 2T = 112 takes all 16
# in one: each update sums the same 16 sentences in both runs.
mkdir -p "$tmp/eq"
for split in train valid; do
  awk 'BEGIN { for (i = 0; i < 16; i++) { s = ""; t = "";
         for (j = 0; j < 6; j++) { s = s " w" (i * 7 + j * 3) % 19; t = "v" (i * 7 + j * 3) % 19 " " t }
         print substr(s, 2) > "'"$tmp/eq/$split.src"'"; print t > "'"$tmp/eq/$split.tgt"'" } }'
done
"$FSQ_BUILD_DIR/fairseq-preprocess" -s src -t tgt --trainpref "$tmp/eq/train" \
  --validpref "$tmp/eq/valid" --joined-dictionary --destdir "$tmp/eqbin" > /dev/null ||
  { echo "FAIL: preprocess (a')"; exit 1; }
eq() { # save_dir max_tokens
  train "$1" 4 --max-tokens "$2" --required-batch-size-multiple 1 --disable-validation |
    sed "s|$tmp/bin|$tmp/eqbin|"
}
run "$tmp/eq1.log" "$(eq "$tmp/eq1" 112)"
must "$tmp/eq1.log" "1 rank, --max-tokens 112"
run "$tmp/eq2.log" "$mpi $(eq "$tmp/eq2" 56)"
must "$tmp/eq2.log" "2 ranks, --max-tokens 56"
grep -q 'bsz=16, num_updates=4,' "$tmp/eq1.log" && grep -q 'bsz=16, num_updates=4,' "$tmp/eq2.log" ||
  { cat "$tmp/eq1.log" "$tmp/eq2.log"; echo "FAIL: (a') not 16 sentences per update"; fail=1; }
if same "$tmp/eq1/checkpoint_last.fsq" "$tmp/eq2/checkpoint_last.fsq" 1e-5; then
  echo "ok (a') 2 ranks --max-tokens 56 == 1 rank --max-tokens 112 (largest relative difference $(worst "$tmp/eq1/checkpoint_last.fsq" "$tmp/eq2/checkpoint_last.fsq"))"
else
  echo "FAIL: (a') parameters differ"; fail=1
fi

# (b) 2 ranks: 3 updates, then resumed to 6: bit-identical to the straight run.
run "$tmp/r1.log" "$mpi $(train "$tmp/r" 3)"
must "$tmp/r1.log" "2 ranks, first half"
cp -r "$tmp/r" "$tmp/r1"
run "$tmp/r2.log" "$mpi $(train "$tmp/r" 6)"
must "$tmp/r2.log" "2 ranks, resumed"
grep -q "Loaded checkpoint $tmp/r/checkpoint_last.fsq (epoch 1 @ 3 updates)" "$tmp/r2.log" ||
  { cat "$tmp/r2.log"; echo "FAIL: (b) did not resume"; fail=1; }
for m in $(tar -tf "$tmp/two/checkpoint_last.fsq" | grep -E '^(model|optimizer)/'); do
  tar -xOf "$tmp/two/checkpoint_last.fsq" "$m" > "$tmp/x"
  tar -xOf "$tmp/r/checkpoint_last.fsq" "$m" > "$tmp/y"
  cmp -s "$tmp/x" "$tmp/y" || { echo "FAIL: (b) $m differs after resume"; fail=1; }
done
# the same checkpoint continued by 1 rank with --update-freq 2: as (a)
run "$tmp/r3.log" "$(train "$tmp/r1" 6 --update-freq 2)"
must "$tmp/r3.log" "1 rank resuming 2 ranks' checkpoint"
grep -q "checkpoint saved by 2 rank(s) after 6 batches of epoch 1" "$tmp/r3.log" ||
  { cat "$tmp/r3.log"; echo "FAIL: (b) 1 rank did not convert the position"; fail=1; }
same "$tmp/one/checkpoint_last.fsq" "$tmp/r1/checkpoint_last.fsq" 1e-5 ||
  { echo "FAIL: (b) 2 ranks' checkpoint resumed by 1 rank differs from (a)"; fail=1; }
# 1 rank stopped after 3 batches: 2 ranks cannot split them, and say so
run "$tmp/o1.log" "$(train "$tmp/o" 3)"
must "$tmp/o1.log" "1 rank, 3 updates"
run "$tmp/o2.log" "$mpi $(train "$tmp/o" 6)"
[ "$status" -ne 0 ] || { echo "FAIL: (b) 2 ranks continued 3 batches of 1"; fail=1; }
grep -q "checkpoint saved by 1 rank(s) in the middle of epoch 1, after 3 batches of its list: 2 ranks cannot continue there" "$tmp/o2.log" ||
  { cat "$tmp/o2.log"; echo "FAIL: (b) no clear refusal"; fail=1; }
[ "$fail" -eq 0 ] && echo "ok (b) resume: 2 ranks exact, 2 -> 1 rank as (a), 1 -> 2 ranks mid-shard refused"

# (d) --bf16 and --fp16: 2 ranks sum their f32 master gradients after
# backward; 1 rank with --update-freq 2 adds the two sub-batches' gradients
# in 16-bit first, so the runs agree to 16-bit precision (bf16's unit
# roundoff is 0.2 %), not bit for bit: each update's loss, nll_loss and
# gradient norm within 1 %. --fp16 starts at a loss scale of 8: the 1-rank
# run's f16 gradients hold the sum over both sub-batches' ~1,900 tokens and
# overflow at fairseq's 128 where the ranks' halves do not, which would
# skip an update in one run only; at 8 neither overflows, and every update
# must log that scale on both.
for p in bf16 fp16; do
  flags=--$p
  [ "$p" = bf16 ] || flags="--fp16 --fp16-init-scale 8"
  run "$tmp/${p}1.log" "$(train "$tmp/${p}1" 6 --update-freq 2 $flags)"
  must "$tmp/${p}1.log" "1 rank --$p"
  run "$tmp/${p}2.log" "$mpi $(train "$tmp/${p}2" 6 $flags)"
  must "$tmp/${p}2.log" "2 ranks --$p"
  losses "$tmp/${p}1.log" > "$tmp/${p}1.loss"
  losses "$tmp/${p}2.log" > "$tmp/${p}2.loss"
  if [ "$(wc -l < "$tmp/${p}1.loss")" -eq 6 ] && paste -d ' ' "$tmp/${p}1.loss" "$tmp/${p}2.loss" | awk -v p="$p" '
      function v(s) { sub(/^[a-z_]+=/, "", s); sub(/,$/, "", s); return s + 0 }
      function rel(a, b) { d = (a - b) / b; return d < 0 ? -d : d }
      { n = NF / 2
        for (i = 1; i <= n; i++) if ($i ~ /^(loss|nll_loss|gnorm)=/) {
          r = rel(v($i), v($(i + n))); if (r > worst) worst = r } }
      END { printf "(d) --%s: largest difference of loss, nll_loss, gnorm: %.4f\n", p, worst; exit worst > 0.01 }'; then
    echo "ok (d) --$p: 2 ranks follow 1 rank --update-freq 2"
  else
    diff "$tmp/${p}1.loss" "$tmp/${p}2.loss"; echo "FAIL: (d) --$p 2 ranks leave 1 rank x 2"; fail=1
  fi
done
[ "$(grep -c 'loss_scale=8,' "$tmp/fp161.log")" -eq 6 ] && [ "$(grep -c 'loss_scale=8,' "$tmp/fp162.log")" -eq 6 ] ||
  { grep '| train_inner |' "$tmp/fp161.log" "$tmp/fp162.log"; echo "FAIL: (d) --fp16: loss_scale not 8 on every update"; fail=1; }
grep -q 'gradient sync: 2 ranks, 6 updates' "$tmp/fp162.log" ||
  { grep 'gradient sync' "$tmp/fp162.log"; echo "FAIL: (d) --fp16 2 ranks: 6 synced updates not reported"; fail=1; }

# (c) A rank dies or stops in the middle of training.
# rank_pid RANK: the pid of that rank, a child of mpirun (Open MPI sets
# OMPI_COMM_WORLD_RANK in its environment).
rank_pid() {
  for p in $(pgrep -P "$mpipid"); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return; }
  done
}
# hit SIGNAL: 2 ranks training with --heartbeat-timeout 5, rank 1 gets
# SIGNAL after 2 updates; the output is in $tmp/k-SIGNAL.log.
hit() {
  klog=$tmp/k-$1.log
  sh -c "exec $mpi $(train "$tmp/k-$1" 1000 --heartbeat-timeout 5)" > "$klog" 2>&1 &
  mpipid=$! # mpirun itself (exec)
  i=0
  until grep -q 'num_updates=2,' "$klog" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 600 ] || { kill "$mpipid"; cat "$klog"; echo "FAIL: (c) no progress"; exit 1; }
    sleep 0.1
  done
  victim=$(rank_pid 1)
  [ -n "$victim" ] || { kill "$mpipid"; echo "FAIL: (c) rank 1 not found among mpirun's children"; exit 1; }
  start=$(date +%s)
  kill "-$1" "$victim"
  status=0
  wait "$mpipid" || status=$?
  elapsed=$(($(date +%s) - start))
  kill -9 "$victim" 2>/dev/null
  [ "$status" -ne 0 ] || { cat "$klog"; echo "FAIL: (c) $1: job exit 0"; fail=1; }
  [ "$elapsed" -le 15 ] || { echo "FAIL: (c) $1: the job took ${elapsed}s to end (timeout 5 s)"; fail=1; }
}
# SIGKILL: mpirun sees its child die, names the rank and ends the job.
hit KILL
grep -q 'process rank 1 .*exited on signal 9' "$klog" || { cat "$klog"; echo "FAIL: (c) kill: rank 1 not named"; fail=1; }
echo "ok (c) rank 1 killed: job exit $status after ${elapsed}s"
# SIGSTOP: only the heartbeat can tell; rank 0 names rank 1 and aborts.
hit STOP
grep -q 'fairseq-train: error: rank 0: lost rank 1: no heartbeat for' "$klog" || { cat "$klog"; echo "FAIL: (c) stop: rank 1 not named"; fail=1; }
echo "ok (c) rank 1 stopped: job exit $status after ${elapsed}s"
[ "$fail" -eq 0 ] && echo "PASS"
exit "$fail"
