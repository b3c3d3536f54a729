# framework/data: dictionary, tokenizer, indexed datasets, fairseq-preprocess,
# pair/mono datasets, batching and the epoch iterator.
libfsq_la_SOURCES += \
	framework/data/binarize.c \
	framework/data/binarize.h \
	framework/data/dict_internal.h \
	framework/data/dict_io.c \
	framework/data/dictionary.c \
	framework/data/indexed_reader.c \
	framework/data/indexed_writer.c \
	framework/data/preprocess.c \
	framework/data/tokenize.c
fsq_datadir = $(pkgincludedir)/data
fsq_data_HEADERS = framework/data/fsq_data.h
