"""Each CLI command as a plain function: a keyword-only options object and a Console in, an
exit code out. `reconciler/cli.py` only parses arguments into these options and dispatches
through `error_handler.run_command`, which maps every way a command can end to an exit code.
"""

EXIT_OK = 0
EXIT_ERROR = 1  # any error, usage errors included
EXIT_CHANGES = 2  # `plan --detailed-exitcode`: the plan has changes
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
