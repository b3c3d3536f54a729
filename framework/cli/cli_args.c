/* cli_args.c: the argument prologue of the DATA-taking programs. */
#include "cli/cli_args.h"

#include <json-c/json.h>
#include <stdio.h>

static int usage_error(const char *prog, const char *usage, const char *msg) {
  fprintf(stderr, "usage: %s [-h] %s\n", prog, usage);
  fprintf(stderr, "%s: error: %s\n", prog, msg);
  return 2;
}

int fsq_cli_parse_data_args(const char *prog, const char *usage, const fsq_option *options,
                            const fsq_config_selector *selectors, int argc, char **argv,
                            fsq_config *c) {
  if (fsq_config_resolve(prog, options, selectors, argc, argv, c) != FSQ_OK)
    return usage_error(prog, usage, fsq_error_message());
  int rc = -1;
  if (c->help) {
    char line[256];
    snprintf(line, sizeof line, "%s %s", prog, usage);
    fsq_options_print_help(c->options, line, stdout);
    rc = 0;
  } else if (json_object_array_length(c->positionals) != 1) {
    rc = usage_error(prog, usage,
                     json_object_array_length(c->positionals) == 0
                         ? "the following arguments are required: data"
                         : "unrecognized arguments: more than one data directory");
  }
  if (rc >= 0) fsq_config_free(c);
  return rc;
}
