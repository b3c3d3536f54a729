# framework/generate: scorers (fairseq BLEU, sacreBLEU, 13a tokenizer,
# post-processing). The sequence generator will add its own lines here.
libfsq_la_SOURCES += \
	framework/generate/bleu.c \
	framework/generate/ngram.c \
	framework/generate/post_process.c \
	framework/generate/sacrebleu.c \
	framework/generate/scoring_internal.h \
	framework/generate/text.c \
	framework/generate/tokenizer_13a.c \
	framework/generate/utf8.c \
	framework/generate/word_ids.c
fsq_generatedir = $(pkgincludedir)/generate
fsq_generate_HEADERS = framework/generate/fsq_scoring.h

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_scoring
tests_unit_test_scoring_SOURCES = tests/unit/test_scoring.c
tests_unit_test_scoring_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_scoring_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_scoring
endif
