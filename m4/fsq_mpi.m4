# FSQ_CHECK_MPI: Open MPI through pkg-config (ompi-c). --with-mpi makes it
# required, --without-mpi skips it, the default uses it when found.
AC_DEFUN([FSQ_CHECK_MPI], [
  AC_ARG_WITH([mpi],
    [AS_HELP_STRING([--with-mpi], [build data-parallel training over MPI (default: auto)])],
    [], [with_mpi=auto])
  have_mpi=no
  AS_IF([test "x$with_mpi" != xno], [
    PKG_CHECK_MODULES([MPI], [ompi-c], [have_mpi=yes], [
      AS_IF([test "x$with_mpi" = xyes],
            [AC_MSG_ERROR([--with-mpi given but Open MPI (pkg-config ompi-c) was not found])])])
  ])
  AS_IF([test "x$have_mpi" = xyes], [
    AC_DEFINE([FSQ_HAVE_MPI], [1], [built with MPI])
    AC_PATH_PROG([MPIRUN], [mpirun], [])
  ])
  AM_CONDITIONAL([HAVE_MPI], [test "x$have_mpi" = xyes])
  fsq_mpi_summary=$have_mpi
])
