# framework/generate: scorers (fairseq BLEU, sacreBLEU, 13a tokenizer,
# post-processing), the sequence generator and inference model loading.
libfsq_la_SOURCES += \
	framework/generate/bleu.c \
	framework/generate/generate_internal.h \
	framework/generate/generator.c \
	framework/generate/load.c \
	framework/generate/ngram.c \
	framework/generate/post_process.c \
	framework/generate/sacrebleu.c \
	framework/generate/scoring_internal.h \
	framework/generate/text.c \
	framework/generate/tokenizer_13a.c \
	framework/generate/utf8.c \
	framework/generate/word_ids.c
fsq_generatedir = $(pkgincludedir)/generate
fsq_generate_HEADERS = framework/generate/fsq_scoring.h framework/generate/fsq_generate.h

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_scoring
tests_unit_test_scoring_SOURCES = tests/unit/test_scoring.c
tests_unit_test_scoring_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_scoring_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_scoring
endif

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_generate
tests_unit_test_generate_SOURCES = tests/unit/test_generate.c
tests_unit_test_generate_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_generate_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_generate
endif
