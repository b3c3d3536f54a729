# kernels/cpu: build fragment (see the top-level Makefile.am)
# cpu_isa.c is built three times (portable, AVX2+FMA, AVX-512) into
# convenience libraries; cpu_backend.c picks one at run time. cpu_half.c
# (f16/bf16 storage through the f32 kernels) is built once.
libfsq_la_SOURCES += \
	kernels/cpu/cpu_backend.c \
	kernels/cpu/cpu_half.c \
	kernels/cpu/cpu_half.h \
	kernels/cpu/cpu_internal.h
EXTRA_DIST += kernels/cpu/cpu_ops.inc kernels/cpu/cpu_copy.inc kernels/cpu/cpu_optim.inc
fsq_kernelsdir = $(pkgincludedir)/kernels
fsq_kernels_HEADERS = kernels/fsq_kernels.h
noinst_HEADERS += kernels/fsq_kernel_math.h

noinst_LTLIBRARIES += kernels/cpu/libfsqk_generic.la kernels/cpu/libfsqk_avx2.la \
	kernels/cpu/libfsqk_avx512.la
fsq_kcpu_cflags = $(AM_CFLAGS) -O3 -fno-math-errno -fno-trapping-math
kernels_cpu_libfsqk_generic_la_SOURCES = kernels/cpu/cpu_isa.c
kernels_cpu_libfsqk_generic_la_CPPFLAGS = $(AM_CPPFLAGS) -DFSQ_ISA=generic
kernels_cpu_libfsqk_generic_la_CFLAGS = $(fsq_kcpu_cflags)
kernels_cpu_libfsqk_avx2_la_SOURCES = kernels/cpu/cpu_isa.c
kernels_cpu_libfsqk_avx2_la_CPPFLAGS = $(AM_CPPFLAGS) -DFSQ_ISA=avx2
kernels_cpu_libfsqk_avx2_la_CFLAGS = $(fsq_kcpu_cflags) -mavx2 -mfma
kernels_cpu_libfsqk_avx512_la_SOURCES = kernels/cpu/cpu_isa.c
kernels_cpu_libfsqk_avx512_la_CPPFLAGS = $(AM_CPPFLAGS) -DFSQ_ISA=avx512
kernels_cpu_libfsqk_avx512_la_CFLAGS = $(fsq_kcpu_cflags) -mavx512f -mavx512bw -mavx512vl \
	-mavx512dq -mavx2 -mfma -mprefer-vector-width=512
libfsq_la_LIBADD += kernels/cpu/libfsqk_generic.la kernels/cpu/libfsqk_avx2.la \
	kernels/cpu/libfsqk_avx512.la

# The optimizer's kernels in every ISA copy this processor runs.
if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_kernels_optim
TESTS += tests/unit/test_kernels_optim

# The f16/bf16 path against the f32 kernels: kernel_cases.c's table, which
# test_cuda_kernels also runs on a GPU.
check_PROGRAMS += tests/unit/test_kernels_half
tests_unit_test_kernels_half_SOURCES = tests/unit/test_kernels_half.c tests/unit/kernel_cases.c \
	tests/unit/kernel_cases.h
TESTS += tests/unit/test_kernels_half
endif
