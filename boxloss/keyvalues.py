"""The one argument layer of every ``key=value`` command: parsing, one error wording, close-match hints, ``--help``.

    settings = parse_keyvalues(["batch=8", "split=test"], VAL_KEYS)        # checked, defaults filled
    sys.exit(run_cli("val.py", __doc__, main, argv, VAL_KEYS))           # one line + exit 2 on bad input

Values are read as YAML scalars (``8`` -> 8, ``true`` -> True, ``0.5`` -> 0.5 and ``1e-3`` -> 0.001 as
ultralytics reads them, ``a,b`` stays a string). A bad
argument raises :class:`~boxloss.errors.ConfigError`; :func:`run_cli` prints it as ``<prog>: error: <message>``
on one line and returns 2, so every command words the same mistake the same way.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any, Callable, Iterable, Mapping

import yaml

from ._io import WRITE_FAILURES, load_yaml
from .errors import ConfigError
from .param import Param

HELP_FLAGS = ("-h", "--help")


def parse_value(text: str) -> Any:
    """A command-line value as YAML reads it, with ``1e-3``, ``inf`` and ``nan`` floats as on ultralytics' command
    line; text YAML cannot read stays the text; aliases that expand too far are a ConfigError."""
    if text == "":
        return ""
    try:
        return load_yaml(text, f"value {text[:40]!r}", numbers=True)
    except yaml.YAMLError:
        return text


def split_keyvalues(argv: Iterable[str]) -> dict[str, Any]:
    """``["epochs=3", "box_loss=eiou"]`` -> ``{"epochs": 3, "box_loss": "eiou"}``; the last of a repeated key wins."""
    values = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ConfigError(f"argument {arg!r} is not of the form key=value")
        values[key] = parse_value(value)
    return values


def raw_keyvalues(argv: Iterable[str]) -> dict[str, str]:
    """``key -> value`` as typed (no YAML reading), for values that are lists or paths."""
    return {arg.partition("=")[0]: arg.partition("=")[2] for arg in argv}


def unknown_key(key: str, known: Iterable[str], source: str | None = None) -> ConfigError:
    """``unknown key 'box_los' (did you mean box_loss?)``: the one wording of every command."""
    close = difflib.get_close_matches(key, list(known), n=3)
    where = f" in {source}" if source else ""
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ConfigError(f"unknown key {key!r}{where}{hint}")


def check_known(values: Iterable[str], known: Iterable[str], source: str | None = None) -> None:
    known = set(known)
    for key in values:
        if key not in known:
            raise unknown_key(key, known, source)


def validate(values: Mapping[str, Any], schema: Mapping[str, Param]) -> dict[str, Any]:
    """Every key of ``schema``: the given value checked by its Param, or the default."""
    return {key: param.validate(key, values.get(key, param.default)) for key, param in schema.items()}


def parse_keyvalues(argv: Iterable[str], schema: Mapping[str, Param], source: str | None = None, *,
                    text_as_typed: bool = False) -> dict[str, Any]:
    """``key=value`` arguments checked against ``schema``: unknown key, wrong type, out of range -> ConfigError.

    ``text_as_typed``: a key whose type is ``str`` keeps the text as typed, not as YAML reads it (paths and names:
    ``out=2024`` is a folder, ``classes=yes,no`` two class names, ``out=null`` a folder called null), and must not
    be empty.
    """
    argv = list(argv)
    values = split_keyvalues(argv)
    check_known(values, schema, source)
    if text_as_typed:
        typed = {key: text for key, text in raw_keyvalues(argv).items() if schema[key].type is str}
        empty = next((key for key, text in typed.items() if not text.strip()), None)
        if empty is not None:
            raise ConfigError(f"{empty}= is empty: give a value, or leave the key out for its default")
        values.update(typed)
    return validate(values, schema)


def format_help(doc: str, schema: Mapping[str, Param], title: str = "keys") -> str:
    """The command's docstring, then one line per key: ``key=default  doc (requirement)``."""
    width = max((len(key) + len(repr(param.default)) + 1 for key, param in schema.items()), default=0)
    lines = [doc.strip(), "", f"{title}:"]
    for key, param in schema.items():
        requirement = f" ({param.requirement})" if param.requirement else ""
        lines.append(f"  {f'{key}={param.default!r}':<{width}}  {param.doc}{requirement}")
    return "\n".join(lines)


class OneLineParser(argparse.ArgumentParser):
    """argparse for the scripts with ``--options``: a bad argument raises ConfigError (one line ``<prog>: error: ...``
    and exit status 2 through :func:`run_cli`) instead of printing the usage block."""

    def error(self, message: str):
        raise ConfigError(message)


def uses_flags(argv: Iterable[str]) -> bool:
    """Whether ``argv`` is in the deprecated ``--flag`` grammar (convert.py and prepare_coco.py before key=value)."""
    return any(arg.startswith("--") and arg not in HELP_FLAGS for arg in argv)


def flags_given(argv: Iterable[str]) -> list[str]:
    """The ``--flags`` of ``argv`` in the order first given (``--split-list=a=b`` -> ``--split-list``)."""
    return list(dict.fromkeys(arg.partition("=")[0] for arg in argv if arg.startswith("--")))


def refuse_mixed_grammars(argv: Iterable[str], keys: Iterable[str], switches: Iterable[str] = ()) -> None:
    """ConfigError when ``--flag`` arguments come with ``key=value`` ones (a key of ``keys`` that is not the value
    of the flag before it; ``switches`` are the flags that take no value): one grammar per command line."""
    argv, keys, switches = list(argv), set(keys), set(switches)
    takes_value = False
    for arg in argv:
        key, sep, _ = arg.partition("=")
        if sep and key in keys and not takes_value and not arg.startswith("-"):
            raise ConfigError(f"{arg} and {flags_given(argv)[0]} mix two grammars: give every argument as key=value "
                              "(the --flags are deprecated)")
        takes_value = arg.startswith("--") and not sep and arg not in switches


def deprecation_note(prog: str, flags: Iterable[str], command: str) -> str:
    """The one line a command prints after running deprecated ``--flags``: which ones, and the same ``command`` in
    key=value."""
    flags = list(flags)
    return (f"{prog}: note: {', '.join(flags)} {'is' if len(flags) == 1 else 'are'} deprecated and will be removed "
            f"in the next release; the same in key=value: {command}")


def run_cli(prog: str, help_text: str | Callable[[], str] | None, main: Callable[[list[str]], int],
            argv: list[str] | None = None) -> int:
    """Run ``main(argv)``; ``-h``/``--help`` prints ``help_text`` (None: ``main`` handles it, e.g. with a
    :class:`OneLineParser`); a ConfigError is one line and exit status 2, and so is a write that fails on a full disk
    or quota or a read-only file system (:data:`~boxloss._io.WRITE_FAILURES`), naming the file."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if help_text is not None and any(arg in HELP_FLAGS for arg in argv):
        print(help_text() if callable(help_text) else help_text)
        return 0
    try:
        return main(argv)
    except ConfigError as error:
        message = str(error)
    except OSError as error:  # a full disk or quota, a read-only file system: what could not be written, not where
        if error.errno not in WRITE_FAILURES:
            raise
        written = error.filename2 or error.filename  # a copy or rename names its source first, what it wrote second
        message = f"cannot write {written or 'the output'}: {error.strerror or error}"
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)  # always one line
    return 2
