/* f32_close A B RTOL: compares two files of raw little-endian f32 values (a
 * checkpoint's model/<name> members) element by element. Passes (exit 0)
 * when every |a - b| <= RTOL * max(|a|, |b|, scale), where scale is the
 * largest |a| of the file: relative for the values that matter, absolute
 * (at RTOL of the tensor's scale) for those near zero. Prints the largest
 * differences; exit 1 when they are too large, 2 on a usage or I/O error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Reads path whole: *n f32 values, malloc'd. */
static float *read_f32(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 1 << 16, len = 0;
  float *v = malloc(cap * sizeof *v);
  while (v != NULL) {
    if (len == cap) {
      float *w = realloc(v, 2 * cap * sizeof *v);
      if (w == NULL) {
        free(v);
        v = NULL;
        break;
      }
      v = w;
      cap *= 2;
    }
    size_t got = fread(v + len, sizeof *v, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  fclose(f);
  *n = len;
  return v;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: f32_close A B RTOL\n");
    return 2;
  }
  double rtol = atof(argv[3]);
  size_t na = 0, nb = 0;
  float *a = read_f32(argv[1], &na), *b = read_f32(argv[2], &nb);
  if (a == NULL || b == NULL) {
    fprintf(stderr, "f32_close: cannot read %s\n", a == NULL ? argv[1] : argv[2]);
    return 2;
  }
  if (na != nb) {
    printf("sizes differ: %zu and %zu values\n", na, nb);
    return 1;
  }
  double scale = 0, max_abs = 0, max_ratio = 0;
  for (size_t i = 0; i < na; i++)
    if (fabs(a[i]) > scale) scale = fabs(a[i]);
  size_t bad = 0;
  for (size_t i = 0; i < na; i++) {
    double d = fabs((double)a[i] - b[i]);
    double ref = fmax(fmax(fabs(a[i]), fabs(b[i])), scale);
    double ratio = ref > 0 ? d / ref : (d > 0 ? INFINITY : 0);
    if (d > max_abs) max_abs = d;
    if (ratio > max_ratio) max_ratio = ratio;
    if (!(d <= rtol * ref)) bad++;
  }
  printf("%zu values, scale %.3g, max |a-b| %.3g, max relative %.3g, %zu beyond %g\n", na, scale,
         max_abs, max_ratio, bad, rtol);
  free(a);
  free(b);
  return bad ? 1 : 0;
}
