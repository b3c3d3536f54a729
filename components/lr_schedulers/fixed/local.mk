# lr_schedulers/fixed: one versioned component module.
lrs_fixed_version = 1.0.0
lrs_fixeddir = $(fsq_componentdir)/lr_schedulers/fixed/$(lrs_fixed_version)
lrs_fixed_LTLIBRARIES = components/lr_schedulers/fixed/fixed.la
components_lr_schedulers_fixed_fixed_la_SOURCES = components/lr_schedulers/fixed/fixed.c
components_lr_schedulers_fixed_fixed_la_CPPFLAGS = $(AM_CPPFLAGS) -DFSQ_COMPONENT_VERSION='"$(lrs_fixed_version)"'
components_lr_schedulers_fixed_fixed_la_LDFLAGS = $(fsq_component_ldflags)
components_lr_schedulers_fixed_fixed_la_LIBADD = libfsq.la $(JSONC_LIBS) -lm
FSQ_STAGED += lr_schedulers:fixed:$(lrs_fixed_version):components/lr_schedulers/fixed/fixed.la
FSQ_STAGED_LA += components/lr_schedulers/fixed/fixed.la
