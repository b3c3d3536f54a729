# criterions/cross_entropy: one versioned component module.
crit_cross_entropy_version = 1.0.0
crit_cross_entropydir = $(fsq_componentdir)/criterions/cross_entropy/$(crit_cross_entropy_version)
crit_cross_entropy_LTLIBRARIES = components/criterions/cross_entropy/cross_entropy.la
components_criterions_cross_entropy_cross_entropy_la_SOURCES = \
	components/criterions/cross_entropy/cross_entropy.c
components_criterions_cross_entropy_cross_entropy_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DFSQ_COMPONENT_VERSION='"$(crit_cross_entropy_version)"'
components_criterions_cross_entropy_cross_entropy_la_LDFLAGS = $(fsq_component_ldflags)
components_criterions_cross_entropy_cross_entropy_la_LIBADD = libfsq.la $(JSONC_LIBS) -lm
FSQ_STAGED += criterions:cross_entropy:$(crit_cross_entropy_version):components/criterions/cross_entropy/cross_entropy.la
FSQ_STAGED_LA += components/criterions/cross_entropy/cross_entropy.la
