# scripts: the README's two commands, the dependency installer, benchmarks,
# the toy corpus generator.
dist_noinst_SCRIPTS += scripts/check scripts/demo scripts/install-deps

# The toy parallel corpus generator (scripts/make-toy-corpus wraps it) and
# the preprocess and training benchmarks.
noinst_PROGRAMS += scripts/toy_corpus
scripts_toy_corpus_SOURCES = scripts/toy_corpus.c
scripts_toy_corpus_LDADD = libfsq.la $(JSONC_LIBS) -lm
dist_noinst_SCRIPTS += scripts/make-toy-corpus scripts/bench-preprocess scripts/bench-generate \
	scripts/bench-train
# Training and decoding speed on a GPU (docs/cuda.md); it sources bench-common.sh.
dist_noinst_SCRIPTS += scripts/bench-gpu
EXTRA_DIST += scripts/bench-common.sh
# scripts/bench-gemm compiles bench/gemm itself (it compares BLAS builds).
dist_noinst_SCRIPTS += scripts/bench-gemm
EXTRA_DIST += bench/gemm/bench_gemm.c bench/gemm/bench_gemm.h \
	bench/gemm/backend_openblas.c bench/gemm/backend_dnnl.c bench/gemm/results
# Running the suite under ASan + UBSan and under valgrind (README, Sanitizers).
dist_noinst_SCRIPTS += scripts/check-sanitizers scripts/check-valgrind
EXTRA_DIST += scripts/sanitizers/lsan.supp scripts/sanitizers/valgrind.supp
# The matrix-product work of any command, against the GEMM peak (BENCHMARKS.md).
dist_noinst_SCRIPTS += scripts/count-gemm-flops
EXTRA_DIST += bench/gemm_count/gemm_count.c
