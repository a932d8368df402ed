"""Python exceptions as R conditions: what R needs to signal one (class, message, notes, fields), no traceback."""

from __future__ import annotations

import re
from typing import Any

from pydlr.errors import InputError, NotSupportedError, PydlrError, TrainingError

# pydlr's exception classes and their R condition classes, most specific first.
R_CLASSES: tuple[tuple[type[BaseException], str], ...] = (
    (InputError, "pydlr_input_error"),
    (NotSupportedError, "pydlr_not_supported_error"),
    (TrainingError, "pydlr_training_error"),
)


# Advice in Python's keyword syntax (``on_bad_file='skip'``, ``shuffle=True``) as R writes the same argument.
_KEYWORD_ADVICE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=('[^'\s]*'|True|False|None)(?=[\s,.;:)]|$)")
_R_VALUES = {"True": "TRUE", "False": "FALSE", "None": "NULL"}


# A value quoted as Python's repr quotes a string ('cpu'), standing alone (not an apostrophe in a word).
_QUOTED_VALUE = re.compile(r"(?<![\w'\"])'([^'\"\s]*)'(?![\w'\"])")
# Lists and dicts keep Python's repr whole: half-converted ['a', "b"] would be neither language.
_CONTAINER = re.compile(r"\[(?=['\"\d(\[\]-])[^\[\]]*\]|\{(?=['\"\d}])[^{}]*\}")
# The function an error names first ("fit: ...") as R's own messages name it ("fit(): ...").
_WHERE_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*): ")


def in_r_syntax(message: str) -> str:
    """``message`` as R writes it: keyword advice as R calls take it (``name = "value"``, TRUE, FALSE, NULL),
    quoted values in R's double quotes (``"cpu"``; lists and dicts are left as Python wrote them) and the
    function that raised it named with parentheses (``fit(): ``), as in R's own messages."""
    def r_argument(match: re.Match) -> str:
        value = match.group(2)
        value = _R_VALUES.get(value) or '"' + value[1:-1] + '"'
        return f"{match.group(1)} = {value}"

    message = _WHERE_PREFIX.sub(r"\1(): ", _KEYWORD_ADVICE.sub(r_argument, message))
    parts, start = [], 0
    for container in _CONTAINER.finditer(message):
        parts += [_QUOTED_VALUE.sub(r'"\1"', message[start:container.start()]), container.group()]
        start = container.end()
    return "".join([*parts, _QUOTED_VALUE.sub(r'"\1"', message[start:])])


def _received_in_r(exc: BaseException, message: str) -> str:
    """An InputError's received None / True / False as R wrote it: NULL / TRUE / FALSE."""
    received = getattr(exc, "received", 0)
    if not isinstance(exc, InputError) or not (received is None or isinstance(received, bool)):
        return message
    tail = f"received {received!r}."
    return message[: -len(tail)] + f"received {_R_VALUES[repr(received)]}." if message.endswith(tail) else message


def error_info(exc: BaseException) -> dict[str, Any]:
    """The R condition for ``exc``: ``r_class`` (the pydlr sub-class, or None), ``python_class`` (qualified),
    ``message`` (``str(exc)``, its keyword advice in R syntax), ``notes`` (``exc.__notes__``, e.g. which
    callback raised it), and the
    ``InputError`` fields ``argument``/``expected``/``where`` when present."""
    r_class = next((name for cls, name in R_CLASSES if isinstance(exc, cls)), None)
    kind = type(exc)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    info: dict[str, Any] = {
        "r_class": r_class,
        "pydlr": isinstance(exc, PydlrError),
        "python_class": f"{module}{kind.__qualname__}",
        "message": in_r_syntax(_received_in_r(exc, str(exc))),
        "notes": [str(note) for note in getattr(exc, "__notes__", None) or []],
    }
    for attr in ("argument", "expected", "where"):
        value = getattr(exc, attr, None)
        if value is not None:
            info[attr] = str(value)
    return info
