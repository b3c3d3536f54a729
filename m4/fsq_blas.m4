# FSQ_CHECK_BLAS: OpenBLAS through pkg-config only. A plain -lblas would bind at
# run time to whatever libblas.so.3 the alternatives system points at, which on
# Debian may be the netlib reference BLAS (about 30 times slower), so it is refused.
AC_DEFUN([FSQ_CHECK_BLAS], [
  PKG_CHECK_MODULES([BLAS], [openblas], [],
    [AC_MSG_ERROR([OpenBLAS not found through pkg-config 'openblas' (Debian: libopenblas-dev); run scripts/install-deps])])
  fsq_save_CFLAGS=$CFLAGS; fsq_save_LIBS=$LIBS
  CFLAGS="$CFLAGS $BLAS_CFLAGS"; LIBS="$BLAS_LIBS $LIBS"
  AC_CHECK_HEADER([cblas.h], [],
    [AC_MSG_ERROR([cblas.h not found with pkg-config openblas cflags])])
  AC_CHECK_FUNCS([openblas_set_num_threads openblas_get_corename openblas_get_parallel])
  CFLAGS=$fsq_save_CFLAGS; LIBS=$fsq_save_LIBS
  fsq_blas_summary="openblas"
])
