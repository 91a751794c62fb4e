"""The `keras-vits` command's start: help, `list` and `info` before Keras loads, TensorFlow's start-up lines hidden.

TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` once, when it loads, and this package loads it (through
Keras) before `keras_vits.cli.main` runs; so the level is set here, first thing in the package,
and only in a process that is the command line (`keras-vits ...` or `python -m keras_vits.cli ...`).
Level 3 hides TensorFlow's C++ errors and warnings, such as `failed call to cuInit` on a machine
without a GPU; a few lines TensorFlow writes while it loads, before its logging starts, ignore the
level, so the load itself runs with the standard error stream closed. Errors still surface: an
import error is raised after the stream is back, and the command's own messages come after.
An importing program is never changed: it keeps TensorFlow's logs as they are.
"""

import contextlib
import os
import pathlib
import sys

#: The command line's flag that keeps TensorFlow's logs.
VERBOSE_FLAG = "--verbose"


def is_the_command_line(argv=None, orig_argv=None):
    """True when this process runs `keras-vits` (the console script) or `python -m keras_vits.cli`."""
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if argv and pathlib.Path(argv[0]).name in ("keras-vits", "keras-vits.exe"):
        return True
    return any(flag == "-m" and module == "keras_vits.cli" for flag, module in zip(orig_argv, orig_argv[1:]))


def wants_quiet(argv=None, orig_argv=None):
    """True for the command line without `--verbose`."""
    argv = sys.argv if argv is None else argv
    return is_the_command_line(argv, orig_argv) and VERBOSE_FLAG not in argv


@contextlib.contextmanager
def standard_error_closed():
    """Inside the block, file descriptor 2 goes to /dev/null (C++ code writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def quiet_tensorflow_python_logs():
    """TensorFlow's and absl's Python loggers to errors only (the TFLite converter's warnings)."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl_logging = sys.modules.get("absl.logging")
    if absl_logging is not None:
        absl_logging.set_verbosity(absl_logging.ERROR)


#: Commands answered before Keras loads when given no option but these: `list [PATTERN]`, `info NAME`
#: (read from `keras_vits.variants`; `info`'s options build the model), and any help.
COMMANDS_BEFORE_KERAS = ("list", "info")
OPTIONS_BEFORE_KERAS = ("--debug", VERBOSE_FLAG, "-h", "--help")


def answer_before_loading_keras(argv=None):
    """The calls that need no Keras, answered here, before the package loads it; the process then exits.

    `keras-vits --help` (or a call with no command): the parser loads no library module
    (`keras_vits.cli.LibraryChoices`), and argparse exits 0 for the help, 2 for a call without a
    command. `keras-vits list [PATTERN]` and `keras-vits info NAME` exit with `keras_vits.cli.main`'s
    status. Each takes a fraction of a second instead of TensorFlow's import. Any other call
    (`info NAME --summary`, `train --help`, ...) returns here, and its command loads Keras.
    """
    argv = sys.argv if argv is None else argv
    if not is_the_command_line(argv):
        return
    positional = [arg for arg in argv[1:] if not arg.startswith("-")]
    options = [arg for arg in argv[1:] if arg.startswith("-")]
    if positional and (
        positional[0] not in COMMANDS_BEFORE_KERAS or not all(option in OPTIONS_BEFORE_KERAS for option in options)
    ):
        return
    from keras_vits.cli import main

    sys.exit(main(argv[1:]))


def start_quietly():
    """In the quiet command line: the log level, then Keras (and TensorFlow) loaded with stderr closed."""
    if not wants_quiet() or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    from keras_vits import _onednn  # noqa: F401  (its switch is read when TensorFlow loads, as the package's is)

    with standard_error_closed():
        from keras_vits import backend  # noqa: F401  (imports Keras, and TensorFlow on its backend)
    quiet_tensorflow_python_logs()


answer_before_loading_keras()
start_quietly()
