libfsq_la_SOURCES += \
	framework/core/arena.c \
	framework/core/error.c \
	framework/core/json.c \
	framework/core/log.c \
	framework/core/rng.c \
	framework/core/system.c \
	framework/core/utf8.c
fsq_coredir = $(pkgincludedir)/core
fsq_core_HEADERS = framework/core/fsq_core.h
