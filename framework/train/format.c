/* format.c: Python's round() and "{:g}" as fairseq's log lines use them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Python's repr(float): the shortest digits that read back to x, in fixed
 * notation for exponents -4..15 (with ".0" for whole numbers) and in
 * scientific notation otherwise ("1e-05", "1.5e+16"). */
void fsq_format_repr(double x, char *buf, size_t size) {
  if (!isfinite(x)) {
    fsq_format_g(x, buf, size);
    return;
  }
  char digits[40];
  int prec = 1;
  for (; prec < 17; prec++) { /* %.{prec}e gives prec+1 significant digits */
    snprintf(digits, sizeof digits, "%.*e", prec - 1, x);
    if (strtod(digits, NULL) == x) break;
  }
  snprintf(digits, sizeof digits, "%.*e", prec - 1, x);
  int exponent = atoi(strchr(digits, 'e') + 1);
  if (exponent < -4 || exponent >= 16) {
    /* "d.ddde+XX": Python drops a lone ".0"... it never has one here */
    snprintf(buf, size, "%.*e", prec - 1, x);
    return;
  }
  int decimals = prec - 1 - exponent;
  snprintf(buf, size, "%.*f", decimals > 0 ? decimals : 0, x);
  if (decimals <= 0 && size > strlen(buf) + 2) strcat(buf, ".0");
}
