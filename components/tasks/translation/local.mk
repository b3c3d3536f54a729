# tasks/translation: one versioned component module, and its test suite.
task_translation_version = 1.0.0
task_translationdir = $(fsq_componentdir)/tasks/translation/$(task_translation_version)
task_translation_LTLIBRARIES = components/tasks/translation/translation.la
components_tasks_translation_translation_la_SOURCES = \
	components/tasks/translation/translation.c \
	components/tasks/translation/splits.c \
	components/tasks/translation/translation.h
components_tasks_translation_translation_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DFSQ_COMPONENT_VERSION='"$(task_translation_version)"'
components_tasks_translation_translation_la_LDFLAGS = $(fsq_component_ldflags)
components_tasks_translation_translation_la_LIBADD = libfsq.la $(JSONC_LIBS) -lm
FSQ_STAGED += tasks:translation:$(task_translation_version):components/tasks/translation/translation.la
FSQ_STAGED_LA += components/tasks/translation/translation.la

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_task_translation
TESTS += tests/unit/test_task_translation
endif
