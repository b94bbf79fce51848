"""The one argument layer of every ``key=value`` command: parsing, one error wording, close-match hints, ``--help``.

    settings = parse_keyvalues(["batch=8", "split=test"], VAL_KEYS)        # checked, defaults filled
    sys.exit(run_cli("val.py", __doc__, main, argv, VAL_KEYS))           # one line + exit 2 on bad input

Values are read as YAML scalars (``8`` -> 8, ``true`` -> True, ``0.5`` -> 0.5 and ``1e-3`` -> 0.001 as
ultralytics reads them, ``a,b`` stays a string). A bad argument raises :class:`~boxloss.errors.ConfigError`;
:func:`run_cli` prints it as ``<prog>: error: <message>`` on one line and returns 2, so every command words the same
mistake the same way. A ``--flag`` (the spelling of earlier releases of some commands) is such a mistake too, worded
with its key: ``--out is the old spelling; use out=...`` (:func:`flag_error`).
"""

from __future__ import annotations

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


def flag_error(arg: str, known: Iterable[str] | None = None,
               renamed: Mapping[str, str] | None = None) -> ConfigError:
    """The one line for a ``--flag`` given to a key=value command: ``--out is the old spelling; use out=...``.

    The key is the flag without its dashes, ``-`` read as ``_`` (``--skip-train`` -> ``skip_train=``), unless
    ``renamed`` maps the flag to its new spelling. ``known``: the command's keys, when it has a fixed set; a flag
    that names none of them is an unknown argument, with close matches as for a key.
    """
    flag = arg.partition("=")[0]
    if renamed and flag in renamed:
        return ConfigError(f"{flag} is the old spelling; use {renamed[flag]}")
    key = flag.lstrip("-").replace("-", "_")
    if known is None or key in set(known):
        return ConfigError(f"{flag} is the old spelling; use {key}=...")
    close = difflib.get_close_matches(key, list(known), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ConfigError(f"{flag} is no argument of this command: arguments are key=value{hint}")


def split_keyvalues(argv: Iterable[str], known: Iterable[str] | None = None,
                    renamed: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``["epochs=3", "box_loss=eiou"]`` -> ``{"epochs": 3, "box_loss": "eiou"}``; the last of a repeated key wins.
    A ``--flag`` is refused with its key=value spelling (:func:`flag_error`, with ``known`` and ``renamed``), and so is
    a key that ``renamed`` maps to its new spelling (``{"mps": "cuda_mps=true"}``)."""
    values = {}
    for arg in argv:
        if arg.startswith("--"):
            raise flag_error(arg, known, renamed)
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ConfigError(f"argument {arg!r} is not of the form key=value")
        if renamed and key in renamed:
            raise ConfigError(f"{key}= is the old spelling; use {renamed[key]}")
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
                    text_as_typed: bool = False, renamed: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``key=value`` arguments checked against ``schema``: unknown key, wrong type, out of range, a ``--flag``
    (:func:`flag_error`; ``renamed``: old flags whose key is not their name, and old keys) -> ConfigError.

    ``text_as_typed``: a key whose type is ``str`` keeps the text as typed, not as YAML reads it (paths and names:
    ``out=2024`` is a folder, ``classes=yes,no`` two class names, ``out=null`` a folder called null), and must not
    be empty.
    """
    argv = list(argv)
    values = split_keyvalues(argv, schema, renamed)
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


def run_cli(prog: str, help_text: str | Callable[[], str] | None, main: Callable[[list[str]], int],
            argv: list[str] | None = None) -> int:
    """Run ``main(argv)``; ``-h``/``--help`` prints ``help_text`` (None: ``main`` handles it, e.g. per subcommand);
    a ConfigError is one line and exit status 2, and so is a write that fails on a full disk or quota or a read-only
    file system (:data:`~boxloss._io.WRITE_FAILURES`), naming the file."""
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
