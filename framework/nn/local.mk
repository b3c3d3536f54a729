# framework/nn: layers made of tensor ops (fairseq/modules).
libfsq_la_SOURCES += \
	framework/nn/nn_internal.h \
	framework/nn/init.c \
	framework/nn/linear.c \
	framework/nn/layer_norm.c \
	framework/nn/embedding.c \
	framework/nn/attention.c \
	framework/nn/attention_state.c \
	framework/nn/ffn.c \
	framework/nn/transformer_layer.c
fsq_nndir = $(pkgincludedir)/nn
fsq_nn_HEADERS = framework/nn/fsq_nn.h

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_nn
TESTS += tests/unit/test_nn
endif
EXTRA_DIST += scripts/fixtures/make_nn_fixtures.py \
	tests/fixtures/nn/linear.txt tests/fixtures/nn/embedding.txt \
	tests/fixtures/nn/sinusoidal.txt tests/fixtures/nn/learned_pos.txt \
	tests/fixtures/nn/layer_norm.txt tests/fixtures/nn/mha_self_kpm.txt \
	tests/fixtures/nn/mha_self_causal.txt tests/fixtures/nn/mha_encdec.txt \
	tests/fixtures/nn/ffn.txt tests/fixtures/nn/ffn_gelu.txt \
	tests/fixtures/nn/sinusoidal_far.txt tests/fixtures/nn/encoder_layer_post.txt \
	tests/fixtures/nn/encoder_layer_pre.txt tests/fixtures/nn/decoder_layer_post.txt \
	tests/fixtures/nn/decoder_layer_pre.txt tests/fixtures/nn/decoder_layer_kdim.txt \
	tests/fixtures/nn/decoder_layer_lm.txt
