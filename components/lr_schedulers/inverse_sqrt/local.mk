# lr_schedulers/inverse_sqrt: one versioned component module.
lrs_inverse_sqrt_version = 1.0.0
lrs_inverse_sqrtdir = $(fsq_componentdir)/lr_schedulers/inverse_sqrt/$(lrs_inverse_sqrt_version)
lrs_inverse_sqrt_LTLIBRARIES = components/lr_schedulers/inverse_sqrt/inverse_sqrt.la
components_lr_schedulers_inverse_sqrt_inverse_sqrt_la_SOURCES = components/lr_schedulers/inverse_sqrt/inverse_sqrt.c
components_lr_schedulers_inverse_sqrt_inverse_sqrt_la_CPPFLAGS = $(AM_CPPFLAGS) -DFSQ_COMPONENT_VERSION='"$(lrs_inverse_sqrt_version)"'
components_lr_schedulers_inverse_sqrt_inverse_sqrt_la_LDFLAGS = $(fsq_component_ldflags)
components_lr_schedulers_inverse_sqrt_inverse_sqrt_la_LIBADD = libfsq.la $(JSONC_LIBS) -lm
FSQ_STAGED += lr_schedulers:inverse_sqrt:$(lrs_inverse_sqrt_version):components/lr_schedulers/inverse_sqrt/inverse_sqrt.la
FSQ_STAGED_LA += components/lr_schedulers/inverse_sqrt/inverse_sqrt.la
