# Shared objects for the registry tests: one source, several builds. They are
# laid out in component trees by tests/unit/test_registry.c.
if HAVE_CUNIT
TOY_LDFLAGS = -module -avoid-version -shared -rpath /nowhere -no-undefined
TOY_LIBADD = libfsq.la
check_LTLIBRARIES += tests/components/toy_v1.la tests/components/toy_v2.la \
	tests/components/toy_abi99.la tests/components/toy_noentry.la \
	tests/components/toy_misnamed.la
tests_components_toy_v1_la_SOURCES = tests/components/toy_model.c
tests_components_toy_v1_la_CPPFLAGS = $(AM_CPPFLAGS) -DTOY_VERSION='"1.0.0"'
tests_components_toy_v1_la_LDFLAGS = $(TOY_LDFLAGS)
tests_components_toy_v1_la_LIBADD = $(TOY_LIBADD)
tests_components_toy_v2_la_SOURCES = tests/components/toy_model.c
tests_components_toy_v2_la_CPPFLAGS = $(AM_CPPFLAGS) -DTOY_VERSION='"1.2.0"'
tests_components_toy_v2_la_LDFLAGS = $(TOY_LDFLAGS)
tests_components_toy_v2_la_LIBADD = $(TOY_LIBADD)
tests_components_toy_abi99_la_SOURCES = tests/components/toy_model.c
tests_components_toy_abi99_la_CPPFLAGS = $(AM_CPPFLAGS) -DTOY_VERSION='"1.0.0"' -DTOY_ABI_MAJOR=99
tests_components_toy_abi99_la_LDFLAGS = $(TOY_LDFLAGS)
tests_components_toy_abi99_la_LIBADD = $(TOY_LIBADD)
tests_components_toy_noentry_la_SOURCES = tests/components/toy_model.c
tests_components_toy_noentry_la_CPPFLAGS = $(AM_CPPFLAGS) -DTOY_VERSION='"1.0.0"' -DTOY_NO_ENTRY
tests_components_toy_noentry_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
tests_components_toy_noentry_la_LIBADD = $(TOY_LIBADD)
tests_components_toy_misnamed_la_SOURCES = tests/components/toy_model.c
tests_components_toy_misnamed_la_CPPFLAGS = $(AM_CPPFLAGS) -DTOY_VERSION='"1.0.0"' -DTOY_NAME='"other"'
tests_components_toy_misnamed_la_LDFLAGS = $(TOY_LDFLAGS)
tests_components_toy_misnamed_la_LIBADD = $(TOY_LIBADD)
endif
# renamer: two versions of a model whose parameter names differ, for the
# checkpoint upgrade chain (tests/unit/test_checkpoint_upgrade.c and
# tests/e2e/test_upgrade.sh lay them out in component trees).
check_LTLIBRARIES += tests/components/renamer_v1.la tests/components/renamer_v2.la
tests_components_renamer_v1_la_SOURCES = tests/components/renamer.c
tests_components_renamer_v1_la_CPPFLAGS = $(AM_CPPFLAGS) -DRENAMER_MAJOR=1
tests_components_renamer_v1_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere -no-undefined
tests_components_renamer_v1_la_LIBADD = libfsq.la
tests_components_renamer_v2_la_SOURCES = tests/components/renamer.c
tests_components_renamer_v2_la_CPPFLAGS = $(AM_CPPFLAGS) -DRENAMER_MAJOR=2
tests_components_renamer_v2_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere -no-undefined
tests_components_renamer_v2_la_LIBADD = libfsq.la
# bigram: a trainable model with the inference ops, for fairseq-generate's
# end-to-end test (tests/e2e/test_generate_bigram.sh lays it out).
check_LTLIBRARIES += tests/components/bigram.la
tests_components_bigram_la_SOURCES = tests/components/bigram.c
tests_components_bigram_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere -no-undefined
tests_components_bigram_la_LIBADD = libfsq.la
