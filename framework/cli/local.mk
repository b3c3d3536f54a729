# framework/cli: the fairseq-* programs. Thin: they parse and call the framework.
FSQ_PROGRAM_LIBS = libfsq.la $(JSONC_LIBS)

bin_PROGRAMS += fairseq-components
fairseq_components_SOURCES = framework/cli/fairseq_components.c
fairseq_components_LDADD = $(FSQ_PROGRAM_LIBS)

bin_PROGRAMS += fairseq-score
fairseq_score_SOURCES = framework/cli/fairseq_score.c
fairseq_score_LDADD = $(FSQ_PROGRAM_LIBS)
TESTS += tests/e2e/test_score.sh
EXTRA_DIST += tests/e2e/test_score.sh \
	tests/fixtures/score/hyp.txt \
	tests/fixtures/score/hyp_mixed_case_crlf.txt \
	tests/fixtures/score/hyp_punct.txt \
	tests/fixtures/score/hyp_short.txt \
	tests/fixtures/score/latin1.txt \
	tests/fixtures/score/ref.txt \
	tests/fixtures/score/ref_punct.txt

bin_PROGRAMS += fairseq-preprocess
fairseq_preprocess_SOURCES = framework/cli/fairseq_preprocess.c
fairseq_preprocess_LDADD = $(FSQ_PROGRAM_LIBS)

# fairseq-preprocess end-to-end tests against fairseq's own outputs.
TESTS += tests/e2e/test_preprocess_golden.sh tests/e2e/test_preprocess_errors.sh \
	tests/e2e/test_preprocess_toy.sh
EXTRA_DIST += tests/e2e/test_preprocess_golden.sh tests/e2e/test_preprocess_errors.sh \
	tests/e2e/test_preprocess_toy.sh \
	tests/fixtures/preprocess

bin_PROGRAMS += fairseq-upgrade
fairseq_upgrade_SOURCES = framework/cli/fairseq_upgrade.c
fairseq_upgrade_LDADD = $(FSQ_PROGRAM_LIBS)

bin_PROGRAMS += fairseq-train
fairseq_train_SOURCES = framework/cli/fairseq_train.c framework/cli/optimizer_overrides.c \
	framework/cli/optimizer_overrides.h framework/cli/cli_args.c framework/cli/cli_args.h \
	framework/cli/cli_device.c framework/cli/cli_device.h
fairseq_train_LDADD = $(FSQ_PROGRAM_LIBS)
# Training on the toy corpus (loss threshold, same-seed repeat, exact resume)
# the refusals of bad flags and checkpoints, and SIGKILL during saves.
TESTS += tests/e2e/test_train_toy.sh tests/e2e/test_train_errors.sh tests/e2e/test_train_kill.sh
EXTRA_DIST += tests/e2e/test_train_toy.sh tests/e2e/test_train_errors.sh tests/e2e/test_train_kill.sh
# --device cuda against the CPU (SKIP without a GPU): training, and
# decoding a GPU-trained checkpoint on both
TESTS += tests/e2e/test_train_cuda.sh tests/e2e/test_generate_cuda.sh
EXTRA_DIST += tests/e2e/test_train_cuda.sh tests/e2e/test_generate_cuda.sh
# --fp16 and --bf16 on the CPU's 16-bit kernels against f32, and resume
TESTS += tests/e2e/test_train_mixed.sh
EXTRA_DIST += tests/e2e/test_train_mixed.sh tests/e2e/toy_data.sh

bin_PROGRAMS += fairseq-generate
fairseq_generate_SOURCES = framework/cli/fairseq_generate.c framework/cli/cli_text.c \
	framework/cli/cli_text.h framework/cli/cli_args.c framework/cli/cli_args.h \
	framework/cli/cli_device.c framework/cli/cli_device.h
fairseq_generate_LDADD = $(FSQ_PROGRAM_LIBS)
# End to end with the test component tests/components/bigram.c, and with a
# Transformer trained on the toy corpus.
TESTS += tests/e2e/test_generate_bigram.sh tests/e2e/test_generate_toy.sh
EXTRA_DIST += tests/e2e/test_generate_bigram.sh tests/e2e/test_generate_toy.sh

bin_PROGRAMS += fairseq-interactive
fairseq_interactive_SOURCES = framework/cli/fairseq_interactive.c framework/cli/cli_text.c \
	framework/cli/cli_text.h framework/cli/cli_args.c framework/cli/cli_args.h \
	framework/cli/cli_device.c framework/cli/cli_device.h
fairseq_interactive_LDADD = $(FSQ_PROGRAM_LIBS)

bin_PROGRAMS += fairseq-validate
fairseq_validate_SOURCES = framework/cli/fairseq_validate.c framework/cli/cli_text.c \
	framework/cli/cli_text.h framework/cli/cli_args.c framework/cli/cli_args.h \
	framework/cli/cli_device.c framework/cli/cli_device.h
fairseq_validate_LDADD = $(FSQ_PROGRAM_LIBS)
TESTS += tests/e2e/test_validate.sh
EXTRA_DIST += tests/e2e/test_validate.sh

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_cli_text
tests_unit_test_cli_text_SOURCES = tests/unit/test_cli_text.c framework/cli/cli_text.c
tests_unit_test_cli_text_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_cli_text_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_cli_text
endif
