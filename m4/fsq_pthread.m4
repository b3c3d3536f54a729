# AX_PTHREAD_SIMPLE: find the flag that makes POSIX threads work (-pthread on
# every platform we build on), or fail.
AC_DEFUN([AX_PTHREAD_SIMPLE], [
  AC_CACHE_CHECK([whether $CC accepts -pthread], [fsq_cv_pthread], [
    fsq_save_CFLAGS=$CFLAGS; CFLAGS="$CFLAGS -pthread"
    AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <pthread.h>]],
                    [[pthread_t t; pthread_create(&t, 0, 0, 0);]])],
                   [fsq_cv_pthread=yes], [fsq_cv_pthread=no])
    CFLAGS=$fsq_save_CFLAGS])
  AS_IF([test "x$fsq_cv_pthread" = xyes],
        [PTHREAD_CFLAGS=-pthread; PTHREAD_LIBS=-pthread],
        [AC_MSG_ERROR([POSIX threads are required])])
  AC_SUBST([PTHREAD_CFLAGS])
  AC_SUBST([PTHREAD_LIBS])
])
