/* format.c: Python's round() and "{:g}" as fairseq's log lines use them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "train/fsq_meters.h"

/* printf rounds the exact binary value to nearest, ties to even, exactly as
 * Python's round() does, so printing and reading back reproduces it. */
double fsq_round_digits(double x, int digits) {
  if (!isfinite(x) || digits < 0 || digits > 30) return x;
  char buf[400];
  snprintf(buf, sizeof buf, "%.*f", digits, x);
  return strtod(buf, NULL);
}

/* C's %g and Python's "{:g}" agree: 6 significant digits, exponent form
 * below 1e-4 or from 1e6, trailing zeros removed, two-digit exponent. */
void fsq_format_g(double x, char *buf, size_t size) {
  if (isinf(x)) snprintf(buf, size, x > 0 ? "inf" : "-inf");
  else if (isnan(x)) snprintf(buf, size, "nan");
  else snprintf(buf, size, "%g", x);
}

double fsq_perplexity(double loss_base2) {
  double p = pow(2.0, loss_base2);
  return isinf(p) ? INFINITY : fsq_round_digits(p, 2);
}
