/* cli_args.h: the argument prologue shared by the fairseq-* programs that
 * take one DATA directory (fairseq-train, -generate, -interactive,
 * -validate), with argparse's messages and exit codes. */
#ifndef FSQ_CLI_ARGS_H
#define FSQ_CLI_ARGS_H

#include "registry/fsq_registry.h"

/* Resolves prog's configuration into *c, prints --help, and requires one
 * positional DATA. usage is what follows the program's name in its usage
 * line ("DATA --path PATH [options]"). Returns -1 when the program goes on
 * (c is the caller's: fsq_config_free), else the exit status with nothing
 * left to free: 0 after --help, 2 with argparse's two-line usage error. */
int fsq_cli_parse_data_args(const char *prog, const char *usage, const fsq_option *options,
                            const fsq_config_selector *selectors, int argc, char **argv,
                            fsq_config *c);

#endif /* FSQ_CLI_ARGS_H */
