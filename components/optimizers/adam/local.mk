# optimizers/adam: one versioned component module.
opt_adam_version = 1.0.0
opt_adamdir = $(fsq_componentdir)/optimizers/adam/$(opt_adam_version)
opt_adam_LTLIBRARIES = components/optimizers/adam/adam.la
components_optimizers_adam_adam_la_SOURCES = components/optimizers/adam/adam.c
components_optimizers_adam_adam_la_CPPFLAGS = $(AM_CPPFLAGS) -DFSQ_COMPONENT_VERSION='"$(opt_adam_version)"'
components_optimizers_adam_adam_la_CFLAGS = $(AM_CFLAGS) -O3
components_optimizers_adam_adam_la_LDFLAGS = $(fsq_component_ldflags) $(OPENMP_CFLAGS)
components_optimizers_adam_adam_la_LIBADD = libfsq.la $(JSONC_LIBS) -lm
FSQ_STAGED += optimizers:adam:$(opt_adam_version):components/optimizers/adam/adam.la
FSQ_STAGED_LA += components/optimizers/adam/adam.la
