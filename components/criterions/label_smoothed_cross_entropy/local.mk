# criterions/label_smoothed_cross_entropy: one versioned component module.
crit_lsce_version = 1.0.0
crit_lscedir = $(fsq_componentdir)/criterions/label_smoothed_cross_entropy/$(crit_lsce_version)
crit_lsce_LTLIBRARIES = \
	components/criterions/label_smoothed_cross_entropy/label_smoothed_cross_entropy.la
components_criterions_label_smoothed_cross_entropy_label_smoothed_cross_entropy_la_SOURCES = \
	components/criterions/label_smoothed_cross_entropy/label_smoothed_cross_entropy.c
components_criterions_label_smoothed_cross_entropy_label_smoothed_cross_entropy_la_CPPFLAGS = \
	$(AM_CPPFLAGS) -DFSQ_COMPONENT_VERSION='"$(crit_lsce_version)"'
components_criterions_label_smoothed_cross_entropy_label_smoothed_cross_entropy_la_LDFLAGS = \
	$(fsq_component_ldflags) $(OPENMP_CFLAGS)
components_criterions_label_smoothed_cross_entropy_label_smoothed_cross_entropy_la_LIBADD = \
	libfsq.la $(JSONC_LIBS) -lm
FSQ_STAGED += criterions:label_smoothed_cross_entropy:$(crit_lsce_version):components/criterions/label_smoothed_cross_entropy/label_smoothed_cross_entropy.la
FSQ_STAGED_LA += components/criterions/label_smoothed_cross_entropy/label_smoothed_cross_entropy.la


# Both criterions against PyTorch (scripts/fixtures/make_criterion_fixtures.py).
if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_criterions
TESTS += tests/unit/test_criterions
endif
EXTRA_DIST += tests/fixtures/criterions/criterion_cases.txt \
	scripts/fixtures/make_criterion_fixtures.py
