# bench/ops: the CPU kernel benchmark (scripts/bench-ops runs it and writes
# the "Ops (CPU)" section of BENCHMARKS.md).
noinst_PROGRAMS += bench/ops/bench_ops
bench_ops_bench_ops_SOURCES = bench/ops/bench_ops.c
bench_ops_bench_ops_LDADD = libfsq.la $(JSONC_LIBS) -lm
dist_noinst_SCRIPTS += scripts/bench-ops
