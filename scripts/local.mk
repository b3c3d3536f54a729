# scripts: the README's two commands, the dependency installer, benchmarks,
# the toy corpus generator.
dist_noinst_SCRIPTS += scripts/check scripts/demo scripts/install-deps
