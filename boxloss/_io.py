"""Files and tables: atomic writes, YAML reading with line numbers, markdown/plain tables. The one home of each.

Atomic: a temporary file in the same folder, then ``os.replace``, so a reader never sees half a file and a crash
or an interrupt leaves either the old file or the new one. Temporary folders that become outputs
(:func:`make_temp_dir`) get the permissions of an ordinary new folder, not ``mkdtemp``'s ``drwx------``.

YAML (:func:`load_yaml`): PyYAML's safe loader, refusing documents whose aliases expand into more than
:data:`YAML_MAX_NODES` values (a "billion laughs" file of 1 KB) before building them; with ``numbers=True`` (configs
and ``key=value`` values), ``1e-3``, ``inf`` and ``nan`` are floats as on ultralytics' command line (YAML 1.1 reads
them as strings). A file is UTF-8 (a BOM allowed) or UTF-16/32 with a BOM, as Windows editors save it.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import yaml

from .errors import ConfigError

WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})  # a full disk or quota, a read-only file system
YAML_MAX_NODES = 100_000  # values a YAML document may hold once its aliases are expanded
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"), (codecs.BOM_UTF8, "utf-8-sig"))


class _NumberLoader(yaml.SafeLoader):
    """The safe loader, reading ``1e-3``, ``1E5``, ``-2.5e+3``, ``inf`` and ``nan`` as floats (as ultralytics'
    command line does)."""


_NumberLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9][0-9_]*)[eE][-+]?[0-9]+"  # 1e-3, 2.5E+1, .5e3
               r"|[-+]?(?:inf|Inf|INF|infinity|Infinity)|nan|NaN|NAN)$"),
    list("-+0123456789.iInN"))


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values under ``node`` with every alias expanded (shared nodes counted once per use), memoised by node."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a recursive alias counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return size


def load_yaml(text: str, what: str = "YAML", numbers: bool = False) -> Any:
    """``yaml.safe_load(text)`` (module docstring: the alias limit, ``numbers``); yaml.YAMLError for bad syntax,
    ConfigError naming ``what`` for a document that expands too far."""
    loader = (_NumberLoader if numbers else yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > YAML_MAX_NODES:
            raise ConfigError(f"{what}: its aliases expand to {size:,} values (more than {YAML_MAX_NODES:,}); "
                              "refusing it (a 'billion laughs' document?)")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_text(path: str | os.PathLike) -> str:
    """A text file: UTF-8 (with or without a BOM), or UTF-16/32 with a BOM; UnicodeDecodeError otherwise (a NUL byte
    in what reads as UTF-8 too: UTF-16 without its BOM), worded by :func:`not_utf8`."""
    data = Path(path).read_bytes()
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), "utf-8")
    if encoding == "utf-8" and b"\0" in data:
        offset = data.index(b"\0")
        raise UnicodeDecodeError("utf-8", data, offset, offset + 1, "a NUL byte (UTF-16 without a byte-order mark?)")
    return data.decode(encoding)


def not_utf8(error: UnicodeDecodeError) -> str:
    """The words for a file that is not text :func:`read_text` reads: the byte it stopped at, and where."""
    return f"not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start}); save it as UTF-8"


FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
              (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"))


def irregular_file(path: str | os.PathLike, follow_symlinks: bool = True) -> str | None:
    """What ``path`` is when it is not a regular file, in words (``"a FIFO"``, ``"a folder"``, ``"a socket"``, ``"a
    character device"``, ``"a block device"``; ``"a symbolic link"`` when not ``follow_symlinks``; ``"missing"``,
    ``"not readable (<reason>)"``); None for a regular file.

    The one rule before opening a file a stranger may have made: a FIFO blocks its reader forever, a device reads
    without end, a folder is no file. ``os.stat`` reads the kind without opening anything.
    """
    try:
        mode = os.stat(path, follow_symlinks=follow_symlinks).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as error:
        return f"not readable ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return None
    return next((kind for is_kind, kind in FILE_KINDS if is_kind(mode)), "not a regular file")


def is_plain_name(name: Any) -> bool:
    """A name usable as one path component everywhere: letters, digits, ``_ - .``, not only dots."""
    return isinstance(name, str) and bool(re.fullmatch(r"[\w.-]+", name)) and bool(name.strip("."))


def check_output_folder(folder: Any, key: str) -> None:
    """ConfigError unless ``folder`` is, or can be made, a folder: not an existing file, nor below one."""
    if folder in (None, ""):
        return
    folder = Path(str(folder))
    for existing in (folder, *folder.parents):
        if existing.exists():
            if existing == folder and not existing.is_dir():
                raise ConfigError(f"{key}={str(folder)!r} is an existing file, not a folder")
            if not existing.is_dir():
                raise ConfigError(f"{key}={str(folder)!r} is not a folder ({existing} is a file)")
            return


def check_replace(paths: Sequence[str | os.PathLike], force: bool) -> None:
    """ConfigError naming the first of ``paths`` that exists, unless ``force``: results on disk (published ones
    above all) are replaced on purpose only, never by a default output or a typo."""
    existing = next((Path(path) for path in paths if Path(path).exists()), None)
    if existing is not None and not force:
        raise ConfigError(f"{existing} exists; add force=true to replace it, or choose another out=")


def default_dir_mode() -> int:
    """The mode of a new folder under the current umask (``0o777 & ~umask``)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o777 & ~umask


def make_temp_dir(parent: str | os.PathLike, prefix: str, suffix: str) -> Path:
    """``tempfile.mkdtemp`` in ``parent``, given the permissions of an ordinary new folder (it may be renamed into
    an output: ``mkdtemp``'s ``0o700`` would make that output private)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    folder.chmod(default_dir_mode())
    return folder


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Name ``path`` on an OSError of the block that names no file: a write or close that fails on a full disk does
    not, and a command's one line (:data:`WRITE_FAILURES`, :func:`boxloss.keyvalues.run_cli`) should say which."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            error.filename = os.fspath(path)
        raise


@contextlib.contextmanager
def made_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """``folder`` made (with its parents) for the block; if the block fails, the folders made here are removed again
    (deepest first, while empty), so a failed command leaves no empty output folder behind."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for made in created:
            with contextlib.suppress(OSError):
                made.rmdir()
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(temporary_path)`` (e.g. ``figure.savefig``), then rename the temporary file onto ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with writing(path):
            write(tmp)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = None) -> Path:
    """JSON with Python's shortest round-trip float repr, so reading it back gives the exact values written."""
    return write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def write_yaml_atomic(path: str | os.PathLike, obj: Any, header: str = "") -> Path:
    """YAML (key order kept), preceded by ``header`` lines as comments."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return write_text_atomic(path, comment + yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def read_yaml_mapping(path: str | os.PathLike, what: str = "", numbers: bool = False) -> dict[str, Any]:
    """A YAML file holding a mapping (empty file: ``{}``); ConfigError with the line number of a syntax error, for
    text that is not UTF-8 (or UTF-16/32 with a BOM), or for aliases that expand too far (:func:`load_yaml`;
    ``numbers``: read ``1e-3``, ``inf``, ``nan`` as floats, for configs)."""
    path = Path(path)
    label = f"{what} {str(path)!r}" if what else str(path)
    try:
        text = read_text(path)
    except OSError as error:
        raise ConfigError(f"{label}: cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{label}: {not_utf8(error)}") from None
    try:
        content = load_yaml(text, label, numbers)
    except yaml.YAMLError as error:
        mark, context = getattr(error, "problem_mark", None), getattr(error, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        if context is not None and mark is not None and context.line != mark.line and getattr(error, "context", None):
            problem += f"; {error.context} started at line {context.line + 1}"
        raise ConfigError(f"{label}: not valid YAML{where} ({problem})") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{label}: expected a mapping of key: value, got {type(content).__name__}")
    return content


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, style: str = "markdown",
                 align_right_from: int = 1, pad: bool = True) -> str:
    """A table of strings: left-aligned columns before ``align_right_from``, right-aligned after it.

    ``style``: ``"markdown"`` (a GitHub table) or ``"plain"`` (space-aligned, for the console). ``pad=False``
    writes markdown cells unpadded (for long prose cells, e.g. the README's reference tables).
    """
    if style not in ("markdown", "plain"):
        raise ValueError(f"unknown table style {style!r}: expected 'markdown' or 'plain'")
    lines = [[str(cell) for cell in header], *([str(cell) for cell in row] for row in rows)]
    widths = [max(3, *(len(line[i]) for line in lines)) if pad else 3 for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [c if not pad else c.ljust(w) if i < align_right_from else c.rjust(w)
                  for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |" if style == "markdown" else "  ".join(padded).rstrip()

    text = [line(lines[0])]
    if style == "markdown":
        text.append("| " + " | ".join("-" * w if i < align_right_from else "-" * (w - 1) + ":"
                                      for i, w in enumerate(widths)) + " |")
    return "\n".join(text + [line(cells) for cells in lines[1:]])
