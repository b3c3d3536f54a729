# framework/cli: the fairseq-* programs. Thin: they parse and call the framework.
FSQ_PROGRAM_LIBS = libfsq.la $(JSONC_LIBS)

bin_PROGRAMS += fairseq-components
fairseq_components_SOURCES = framework/cli/fairseq_components.c
fairseq_components_LDADD = $(FSQ_PROGRAM_LIBS)

bin_PROGRAMS += fairseq-upgrade
fairseq_upgrade_SOURCES = framework/cli/fairseq_upgrade.c
fairseq_upgrade_LDADD = $(FSQ_PROGRAM_LIBS)
