# models/transformer: one versioned component module (fairseq's TransformerModel).
model_transformer_version = 1.0.0
model_transformerdir = $(fsq_componentdir)/models/transformer/$(model_transformer_version)
model_transformer_LTLIBRARIES = components/models/transformer/transformer.la
components_models_transformer_transformer_la_SOURCES = \
	components/models/transformer/transformer.h \
	components/models/transformer/component.c \
	components/models/transformer/config.c \
	components/models/transformer/build.c \
	components/models/transformer/forward.c \
	components/models/transformer/incremental.c
components_models_transformer_transformer_la_CPPFLAGS = $(AM_CPPFLAGS) -DFSQ_COMPONENT_VERSION='"$(model_transformer_version)"'
components_models_transformer_transformer_la_LDFLAGS = $(fsq_component_ldflags)
components_models_transformer_transformer_la_LIBADD = libfsq.la $(JSONC_LIBS) -lm
FSQ_STAGED += models:transformer:$(model_transformer_version):components/models/transformer/transformer.la
FSQ_STAGED_LA += components/models/transformer/transformer.la

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_model_transformer
tests_unit_test_model_transformer_SOURCES = tests/unit/test_model_transformer.c \
	tests/unit/fenced_backend.c tests/unit/fenced_backend.h
TESTS += tests/unit/test_model_transformer
check_PROGRAMS += tests/unit/test_model_transformer_incremental
TESTS += tests/unit/test_model_transformer_incremental
# fairseq-generate's decoding with the model's parameters on a device
# (the fenced backend) against the CPU, bit for bit
check_PROGRAMS += tests/unit/test_generate_device
tests_unit_test_generate_device_SOURCES = tests/unit/test_generate_device.c \
	tests/unit/fenced_backend.c tests/unit/fenced_backend.h
TESTS += tests/unit/test_generate_device
endif
