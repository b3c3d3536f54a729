# framework/data: dictionary, tokenizer, indexed datasets, fairseq-preprocess,
# pair/mono datasets, batching and the epoch iterator.
libfsq_la_SOURCES += \
	framework/data/batching.c \
	framework/data/binarize.c \
	framework/data/binarize.h \
	framework/data/dict_internal.h \
	framework/data/dict_io.c \
	framework/data/dictionary.c \
	framework/data/indexed_reader.c \
	framework/data/iterator.c \
	framework/data/indexed_writer.c \
	framework/data/pair_dataset.c \
	framework/data/paths.c \
	framework/data/preprocess.c \
	framework/data/token_block.c \
	framework/data/tokenize.c
fsq_datadir = $(pkgincludedir)/data
fsq_data_HEADERS = framework/data/fsq_data.h

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_data_dictionary tests/unit/test_data_indexed \
	tests/unit/test_data_batching
tests_unit_test_data_dictionary_SOURCES = tests/unit/test_data_dictionary.c
tests_unit_test_data_dictionary_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_data_dictionary_LDADD = $(FSQ_TEST_LIBS)
tests_unit_test_data_indexed_SOURCES = tests/unit/test_data_indexed.c
tests_unit_test_data_indexed_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_data_indexed_LDADD = $(FSQ_TEST_LIBS)
tests_unit_test_data_batching_SOURCES = tests/unit/test_data_batching.c
tests_unit_test_data_batching_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_data_batching_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_data_dictionary tests/unit/test_data_indexed tests/unit/test_data_batching
endif
