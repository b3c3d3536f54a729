# FSQ_CHECK_CUDA: the CUDA toolkit with cuBLAS, cuBLASLt and NCCL. CUDA ships no
# pkg-config file, so the prefix is given (--with-cuda=PATH) or taken from
# /usr/local/cuda. --with-cuda makes every piece required; the default builds
# CUDA support only when nvcc and all libraries are found.
AC_DEFUN([FSQ_CHECK_CUDA], [
  AC_ARG_WITH([cuda],
    [AS_HELP_STRING([--with-cuda@<:@=PATH@:>@], [build the CUDA backend (default: auto, PATH /usr/local/cuda)])],
    [], [with_cuda=auto])
  AC_ARG_VAR([NVCC], [the CUDA compiler])
  AC_ARG_VAR([NVCCFLAGS], [flags for nvcc])
  AC_ARG_VAR([CUDA_ARCHS], [GPU architectures to build for, e.g. "80 90"])
  have_cuda=no
  fsq_cuda_why=""
  AS_CASE([$with_cuda],
    [no], [],
    [yes|auto], [fsq_cuda_prefix=/usr/local/cuda],
    [fsq_cuda_prefix=$with_cuda])
  AS_IF([test "x$with_cuda" != xno], [
    AC_PATH_PROG([NVCC], [nvcc], [], [$fsq_cuda_prefix/bin$PATH_SEPARATOR$PATH])
    AS_IF([test -z "$NVCC"], [fsq_cuda_why="nvcc not found"], [
      CUDA_CFLAGS="-I$fsq_cuda_prefix/include"
      fsq_cuda_libdir=$fsq_cuda_prefix/lib64
      test -d "$fsq_cuda_libdir" || fsq_cuda_libdir=$fsq_cuda_prefix/lib
      CUDA_LIBS="-L$fsq_cuda_libdir -Wl,-rpath,$fsq_cuda_libdir -lcublasLt -lcublas -lnccl -lcudart"
      fsq_save_CPPFLAGS=$CPPFLAGS; fsq_save_LIBS=$LIBS
      CPPFLAGS="$CPPFLAGS $CUDA_CFLAGS"; LIBS="$CUDA_LIBS $LIBS"
      AC_CHECK_HEADERS([cuda_runtime.h cublas_v2.h cublasLt.h nccl.h], [], [fsq_cuda_why="missing $ac_header"])
      AS_IF([test -z "$fsq_cuda_why"], [
        AC_MSG_CHECKING([for cudart, cublas, cublasLt and nccl])
        AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cublasLt.h>
#include <nccl.h>]], [[int v; cudaRuntimeGetVersion(&v); cublasCreate(0); cublasLtCreate(0); ncclGetVersion(&v);]])],
          [AC_MSG_RESULT([yes])], [AC_MSG_RESULT([no]); fsq_cuda_why="cannot link cudart/cublas/cublasLt/nccl"])
      ])
      CPPFLAGS=$fsq_save_CPPFLAGS; LIBS=$fsq_save_LIBS
      AS_IF([test -z "$fsq_cuda_why"], [have_cuda=yes])
    ])
    AS_IF([test "x$have_cuda" = xno && test "x$with_cuda" != xauto],
          [AC_MSG_ERROR([--with-cuda given but $fsq_cuda_why (prefix $fsq_cuda_prefix)])])
  ])
  AS_IF([test "x$have_cuda" = xyes], [
    AC_DEFINE([FSQ_HAVE_CUDA], [1], [built with the CUDA backend])
    : ${CUDA_ARCHS="80 90"}
    NVCC_GENCODE=""
    for a in $CUDA_ARCHS; do NVCC_GENCODE="$NVCC_GENCODE -gencode arch=compute_$a,code=sm_$a"; done
    : ${NVCCFLAGS="-O3 -std=c++17"}
  ])
  AC_SUBST([CUDA_CFLAGS])
  AC_SUBST([CUDA_LIBS])
  AC_SUBST([NVCC_GENCODE])
  AM_CONDITIONAL([HAVE_CUDA], [test "x$have_cuda" = xyes])
  AS_IF([test "x$have_cuda" = xyes], [fsq_cuda_summary=yes],
        [test "x$with_cuda" = xno], [fsq_cuda_summary=no],
        [fsq_cuda_summary="no ($fsq_cuda_why)"])
])
