/* fairseq-upgrade: moves a checkpoint to the installed components' versions
 * and the current file format, printing each step applied.
 *   fairseq-upgrade IN.fsq -o OUT.fsq   write the upgraded checkpoint
 *   fairseq-upgrade IN.fsq --check      report the steps that would run
 * Exit status: 0 done / up to date; 1 (--check only) an upgrade is needed;
 * 2 an error (one line on stderr; OUT is not created or changed). */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint/fsq_checkpoint.h"
#include "registry/fsq_registry.h"
#include "upgrade/fsq_upgrade.h"

static const fsq_option program_options[] = {
    {"output", FSQ_OPT_STRING, NULL, "where to write the upgraded checkpoint", NULL, "o"},
    {"check", FSQ_OPT_BOOL, NULL,
     "only report the steps that would be applied (exit 1 when any)", NULL, NULL},
    {"user-dir", FSQ_OPT_STRING, NULL, "an extra component directory searched first", NULL, NULL},
    FSQ_OPTION_END};

static const char *usage = "fairseq-upgrade IN.fsq (-o OUT.fsq | --check) [--user-dir DIR]";

typedef struct printer {
  const char *verb;
} printer;

static void print_step(void *ctx, const char *subject, const char *from, const char *to,
                       const char *description) {
  const printer *p = ctx;
  printf("%s %s %s -> %s: %s\n", p->verb, subject, from, to, description);
}

static int error_exit(void) {
  fprintf(stderr, "fairseq-upgrade: error: %s\n", fsq_error_message());
  return 2;
}

/* Loads, upgrades and (unless checking) writes. */
static int run(const char *in, const char *out, int check, const char *user_dir) {
  fsq_state *st = NULL;
  if (fsq_checkpoint_load(in, NULL, &st) != FSQ_OK) return error_exit();
  const char *extra[] = {user_dir, NULL};
  fsq_registry *reg = fsq_registry_open(user_dir != NULL ? extra : NULL);
  if (reg == NULL) {
    fsq_state_free(st);
    return error_exit();
  }
  printer p = {check ? "would apply" : "applied"};
  fsq_upgrade_options opt = {.dry_run = check, .report = print_step, .ctx = &p, .label = in};
  size_t steps = 0;
  int rc = 0;
  if (fsq_upgrade_state(st, reg, &opt, &steps) != FSQ_OK) {
    rc = error_exit();
  } else if (check) {
    if (steps == 0) printf("%s: up to date\n", in);
    else printf("%s: %zu upgrade step%s needed\n", in, steps, steps == 1 ? "" : "s");
    rc = steps == 0 ? 0 : 1;
  } else if (fsq_checkpoint_save(st, out) != FSQ_OK) {
    rc = error_exit();
  } else {
    printf("wrote %s (%zu upgrade step%s applied)\n", out, steps, steps == 1 ? "" : "s");
  }
  fsq_registry_close(reg);
  fsq_state_free(st);
  return rc;
}

int main(int argc, char **argv) {
  fsq_option_set *set = fsq_option_set_new();
  json_object *given = NULL, *positionals = NULL;
  if (set == NULL || fsq_option_set_add(set, "fairseq-upgrade", program_options) != FSQ_OK ||
      fsq_options_parse(set, argc, argv, &given, &positionals) != FSQ_OK) {
    fsq_option_set_free(set);
    return error_exit();
  }
  int help = 0, check = 0, rc = 2;
  const char *out = NULL, *user_dir = NULL;
  fsq_json_get_bool(given, "help", &help);
  fsq_json_get_bool(given, "check", &check);
  fsq_json_get_string(given, "output", &out);
  fsq_json_get_string(given, "user_dir", &user_dir);
  size_t n = json_object_array_length(positionals);
  if (help) {
    fsq_options_print_help(set, usage, stdout);
    rc = 0;
  } else if (n != 1) {
    fsq_error(FSQ_ERR_INVALID, "expected one input checkpoint, got %zu (usage: %s)", n, usage);
    rc = error_exit();
  } else if (!check && out == NULL) {
    fsq_error(FSQ_ERR_INVALID, "give -o OUT.fsq or --check (usage: %s)", usage);
    rc = error_exit();
  } else {
    rc = run(json_object_get_string(json_object_array_get_idx(positionals, 0)), out, check,
             user_dir);
  }
  json_object_put(given);
  json_object_put(positionals);
  fsq_option_set_free(set);
  return rc;
}
