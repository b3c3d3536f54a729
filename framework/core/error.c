/* error.c: the thread-local last-error message (see fsq_core.h). */
#include "core/fsq_core.h"

#include <stdio.h>
#include <string.h>

#define FSQ_ERROR_MAX 1024

static _Thread_local char error_text[FSQ_ERROR_MAX];
static _Thread_local fsq_status error_code = FSQ_OK;

fsq_status fsq_error(fsq_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error_text, sizeof error_text, fmt, ap);
  va_end(ap);
  error_code = code;
  return code;
}

fsq_status fsq_error_wrap(fsq_status code, const char *fmt, ...) {
  char prefix[FSQ_ERROR_MAX];
  char old[FSQ_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, error_text, sizeof old);
  /* A message longer than the buffer is cut: the start names the context. */
  int n = old[0] != '\0' ? snprintf(error_text, sizeof error_text, "%s: %s", prefix, old)
                          : snprintf(error_text, sizeof error_text, "%s", prefix);
  if (n < 0) error_text[0] = '\0';
  error_code = code;
  return code;
}

const char *fsq_error_message(void) { return error_text; }

fsq_status fsq_error_code(void) { return error_code; }

void fsq_error_clear(void) {
  error_text[0] = '\0';
  error_code = FSQ_OK;
}

const char *fsq_status_name(fsq_status code) {
  switch (code) {
  case FSQ_OK: return "ok";
  case FSQ_ERR_INVALID: return "invalid argument";
  case FSQ_ERR_IO: return "i/o error";
  case FSQ_ERR_FORMAT: return "bad format";
  case FSQ_ERR_VERSION: return "version mismatch";
  case FSQ_ERR_NOT_FOUND: return "not found";
  case FSQ_ERR_NOMEM: return "out of memory";
  case FSQ_ERR_UNSUPPORTED: return "unsupported";
  case FSQ_ERR_INTERNAL: return "internal error";
  }
  return "unknown error";
}
