"""Python exceptions as R conditions: what R needs to signal one (class, message, notes, fields), no traceback."""

from __future__ import annotations

import re
from typing import Any

import torch

from pydlr.errors import InputError, NotSupportedError, PydlrError, TrainingError, describe
from pydlr.layers.base import LAYER_CLASSES, to_snake_case
from pydlr.models.base import BaseModel

# pydlr's exception classes and their R condition classes, most specific first.
R_CLASSES: tuple[tuple[type[BaseException], str], ...] = (
    (InputError, "pydlr_input_error"),
    (NotSupportedError, "pydlr_not_supported_error"),
    (TrainingError, "pydlr_training_error"),
)


# Advice in Python's keyword syntax (``on_bad_file='skip'``, ``shuffle=True``, ``loss=...``) as R writes
# the same argument.
_KEYWORD_ADVICE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=('[^'\s]*'|True|False|None|\.\.\.)(?=[\s,.;:)]|$)")
# A model's method in advice (``model.compile(``) as R calls the verb (``compile(model, ``).
_METHOD_ADVICE = re.compile(r"\bmodel\.(compile|fit|evaluate|predict|summary)\((?=\w)")
# An element of a sequence argument as Python names it, counted from 0 (```validation_data[0]``` in a
# message; R's own ``[[1]]`` does not match).
_ELEMENT_NAMED = re.compile(r"`([A-Za-z_][A-Za-z0-9_.]*)\[(\d+)\]`")
# Advice given in both languages ("x[None] in Python, ... in R"): R's part is kept (`_r_part`).
_BILINGUAL = re.compile(r" in Python, (.*?) in R\b")
_R_VALUES = {"True": "TRUE", "False": "FALSE", "None": "NULL", "...": "..."}


# A value quoted as Python's repr quotes a string ('cpu'), standing alone (not an apostrophe in a word).
_QUOTED_VALUE = re.compile(r"(?<![\w'\"])'([^'\"\s]*)'(?![\w'\"])")
# Dicts and nested lists keep Python's repr whole: half-converted ['a', "b"] would be neither language.
_CONTAINER = re.compile(r"\[(?=['\"\d(\[\]-])[^\[\]]*\]|\{(?=['\"\d}])[^{}]*\}")
# A flat list of strings or numbers (['loss', 'accuracy'], [1, 2]), which R writes c("loss", "accuracy").
_SCALAR = r"(?:'[^'\\]*'|-?\d+(?:\.\d+)?)"
_FLAT_LIST = re.compile(rf"\[({_SCALAR}(?:, {_SCALAR})*)?\]")
# The function an error names first ("fit: ...") as R's own messages name it ("fit(): ...").
_WHERE_PREFIX = re.compile(r"""^([A-Za-z_][A-Za-z0-9_.]*)( "[^"]*"| '[^']*')?: """)

# Python names an error may give (where it was raised, the callback that raised it) for which R users
# call an R function of another name; layers follow keras3's rule (`_layer_function`).
R_FUNCTIONS: dict[str, str] = {
    "ModelCheckpoint": "callback_model_checkpoint", "EarlyStopping": "callback_early_stopping",
    "CSVLogger": "callback_csv_logger", "LambdaCallback": "callback_lambda",
    "LearningRateScheduler": "callback_learning_rate_scheduler",
    "ReduceLROnPlateau": "callback_reduce_lr_on_plateau", "TensorBoard": "callback_tensorboard",
    "Augment": "augmentation", "ImageDataset": "image_dataset_from_directory",
    "ExponentialDecay": "learning_rate_schedule_exponential_decay",
    "CosineDecay": "learning_rate_schedule_cosine_decay",
    "PiecewiseConstantDecay": "learning_rate_schedule_piecewise_constant_decay",
    "KMeans": "pydlr_kmeans", "KMeans.fit": "pydlr_kmeans", "MiniBatchKMeans": "pydlr_kmeans",
    "MiniBatchKMeans.fit": "pydlr_kmeans", "Sequential": "keras_model_sequential", "InputLayer": "layer_input",
    "load_fashion_mnist": "dataset_fashion_mnist", "load_mnist": "dataset_mnist",
    "save_weights": "save_model_weights", "load_weights": "load_model_weights",
    "activations": "get_activations", "filters": "get_filters", "preprocess": "imagenet_preprocess_input",
    "applications.preprocess_inputs": "application_preprocess_inputs", "compare": "compare_models",
    "load_img": "image_load", "img_to_array": "image_to_array", "decode_predictions": "imagenet_decode_predictions",
}
# The same names inside a message ("raised by callback EarlyStopping", "an ImageDataset"): class names only,
# never before "(" (Python's call syntax in advice is left whole) or after a dot (a qualified name).
_MENTIONED = re.compile(r"(?<![\w.])(callback )?(" + "|".join(sorted(
    (k for k in R_FUNCTIONS if (k[0].isupper() and "." not in k) or k.startswith(("load_", "save_"))),
    key=len, reverse=True)) + r")\b(?!\()")
# Arguments R names otherwise than Python, by the function that raised the error (keras3's `filepath`).
R_ARGUMENTS: dict[str, dict[str, str]] = {
    **{where: {"path": "filepath"} for where in ("load_model", "save_model", "load_weights", "save_weights")},
    "preprocess": {"images": "x"}, "decode_predictions": {"probs": "preds"}}

# A mention that reads better in words than as a function ("an ImageDataset": "an image dataset ...").
_MENTION_WORDS = {"ImageDataset": "image dataset from image_dataset_from_directory()"}


def _layer_function(class_name: str) -> str | None:
    """keras3's R function for a pydlr layer class (Conv2D: layer_conv_2d, ReLU: layer_re_lu); None if
    ``class_name`` is not one."""
    if class_name not in LAYER_CLASSES or class_name.startswith("_"):
        return None
    return "layer_" + re.sub(r"(?<=[a-z])(\d)d$", r"_\1d", to_snake_case(class_name))  # conv2d: conv_2d


def r_function(python_name: str) -> str:
    """What R users call for a Python name an error gives as where it was raised (unchanged if the same)."""
    return R_FUNCTIONS.get(python_name) or _layer_function(python_name) or python_name


def _where_in_r(match: re.Match) -> str:
    """``fit: `` as ``fit(): ``; a named layer (``Conv2D 'c1': ``) under its R function; a named model
    (``Sequential 'seq': ``) as ``model "seq": ``: the function that made it is not the one that failed."""
    cls, name = match.group(1), match.group(2)
    if not name:
        return r_function(cls) + "(): "
    return f"{r_function(cls)}(): layer{name}: " if _layer_function(cls) else f"model{name}: "


def _in_r_names(message: str) -> str:
    """The function the message names first, and the classes it mentions, as R users call them."""
    message = _WHERE_PREFIX.sub(_where_in_r, message, count=1)
    return _MENTIONED.sub(lambda m: _MENTION_WORDS.get(m.group(2)) or R_FUNCTIONS[m.group(2)] + "()", message)


def _r_part(message: str) -> str:
    """``X in Python, Y in R`` as ``Y``, X being the expression before it (brackets kept whole:
    ``np.moveaxis(x, 1, -1)``)."""
    for match in reversed(list(_BILINGUAL.finditer(message))):
        start, depth = match.start(), 0
        while start > 0 and (depth or message[start - 1] != " "):
            depth += (message[start - 1] in ")]") - (message[start - 1] in "([")
            start -= 1
        message = message[:start] + match.group(1) + message[match.end():]
    return message


def _lists_in_r(message: str) -> str:
    """Each outermost ``[...]`` that is a flat list of strings or numbers as R's ``c(...)``; indexing
    (``x[0]``), nested lists, lists inside a dict and anything else stay as written."""
    out, start, depth, opened, braces = [], 0, 0, 0, 0
    for i, ch in enumerate(message):
        braces += (ch == "{") - (ch == "}" and braces > 0)
        if braces:
            continue
        if ch == "[":
            depth, opened = depth + 1, i if depth == 0 else opened
        elif ch == "]" and depth:
            depth -= 1
            indexing = opened > 0 and (message[opened - 1].isalnum() or message[opened - 1] in "_)]")
            flat = _FLAT_LIST.fullmatch(message, opened, i + 1)
            if depth == 0 and flat and not indexing:
                items = re.findall(_SCALAR, flat.group(1) or "")
                out += [message[start:opened], "c(" + ", ".join(
                    '"' + v[1:-1] + '"' if v.startswith("'") else v for v in items) + ")"]
                start = i + 1
    return "".join([*out, message[start:]])


# What a Python message offers that R users cannot pass, as R offers it (compile()'s loss takes names only).
_R_PHRASES = (
    (", a pydlr.train.losses.Loss, a function fn(y_true, y_pred) or a torch loss module", ""),
    ("a pydlr optimizer (pydlr.optimizers.Adam(...)) or a torch.optim.Optimizer",
     "or an optimizer_*() object such as optimizer_adam(learning_rate = 0.001)"),
    ("pydlr.applications.preprocess_inputs(model, x)", "application_preprocess_inputs(model, x)"),
)


def _r_phrases(message: str) -> str:
    for python, r in _R_PHRASES:
        message = message.replace(python, r)
    return message


def in_r_syntax(message: str) -> str:
    """``message`` as R writes it: an argument's element counted from 1 (```validation_data[[1]]```),
    keyword advice as R calls take it (``name = "value"``, TRUE, FALSE, NULL),
    quoted values in R's double quotes (``"cpu"``), flat lists as ``c(...)`` (dicts and nested lists are
    left as Python wrote them), the function that raised it named with parentheses (``fit(): ``) and by
    the name R users call (``callback_early_stopping(): ``, ``layer_conv_2d(): ``), as in R's own messages."""
    def r_argument(match: re.Match) -> str:
        value = match.group(2)
        value = _R_VALUES.get(value) or '"' + value[1:-1] + '"'
        return f"{match.group(1)} = {value}"

    message = _ELEMENT_NAMED.sub(_element_from_one, message)
    message = _METHOD_ADVICE.sub(r"\1(model, ", _r_part(_r_phrases(message)))
    message = _lists_in_r(_in_r_names(_KEYWORD_ADVICE.sub(r_argument, message)))
    parts, start = [], 0
    for container in _CONTAINER.finditer(message):
        parts += [_QUOTED_VALUE.sub(r'"\1"', message[start:container.start()]), container.group()]
        start = container.end()
    return "".join([*parts, _QUOTED_VALUE.sub(r'"\1"', message[start:])])


def _received_in_r(exc: BaseException, message: str) -> str:
    """An InputError's received value as R describes what it was given (`_r_description`)."""
    if not isinstance(exc, InputError):
        return message
    tail = f"received {describe(exc.received)}."
    return message[: -len(tail)] + f"received {_r_description(exc.received)}." if message.endswith(tail) else message


# R's words for the element types of arrays and tensors.
_R_TYPES = (("bool", "logical"), ("int", "integer"), ("uint", "integer"), ("float", "double"), ("bfloat", "double"))


def _r_description(value: Any) -> str:
    """A received value as R's messages describe one: NULL / TRUE / FALSE; a number as R prints it (20, not
    20.0); a description (text with spaces
    that is not a path, such as 'labels in 1..10') as it reads, other text in R's double quotes; an array or
    tensor by R type and dim ("a double matrix of dim c(600, 10)"); a model or layer by its name; anything
    else as `describe` has it."""
    if value is None or isinstance(value, bool):
        return _R_VALUES[repr(value)]
    if isinstance(value, float):  # R prints 20 and 0.2 where Python's repr gives 20.0
        special = {"inf": "Inf", "-inf": "-Inf", "nan": "NaN"}
        return special.get(repr(value)) or f"{value:.15g}"
    if isinstance(value, torch.nn.Module):  # its repr is the whole architecture, in Python's words
        kind = "model" if isinstance(value, BaseModel) else "layer"
        name = getattr(value, "name", None)
        return f'the {kind} "{name}"' if isinstance(name, str) else f"a {kind}"
    if isinstance(value, str):
        text = value if len(value) <= 118 else value[:57] + "..." + value[-58:]
        is_path = value.startswith(("/", "~", ".", "\\")) or re.match(r"[A-Za-z]:[\\/]", value)
        return text if re.search(r"\s", value) and not is_path else '"' + text.replace('"', '\\"') + '"'
    shape, dtype = getattr(value, "shape", None), str(getattr(value, "dtype", "")).replace("torch.", "")
    r_type = next((r for prefix, r in _R_TYPES if dtype.startswith(prefix)), None)
    if shape is None or r_type is None:
        return describe(value)
    dims, article = tuple(int(d) for d in shape), "an" if r_type == "integer" else "a"
    if len(dims) <= 1:
        return f"{article} {r_type} vector of length {dims[0] if dims else 1}"
    kind = "matrix" if len(dims) == 2 else "array"
    return f"{article} {r_type} {kind} of dim c({', '.join(map(str, dims))})"


def _element_from_one(match: re.Match) -> str:
    """```validation_data[0]``` as R's ```validation_data[[1]]```."""
    return f"`{match.group(1)}[[{int(match.group(2)) + 1}]]`"


def _r_argument(exc: BaseException) -> str | None:
    """An InputError's argument under R's name for it (`R_ARGUMENTS`), an element of a list counted from 1
    as R's ``[[``  takes it (``validation_data[0]`` is ``validation_data[[1]]``)."""
    argument = getattr(exc, "argument", None)
    if argument is None:
        return None
    argument = R_ARGUMENTS.get(str(getattr(exc, "where", "")), {}).get(str(argument), str(argument))
    return _ELEMENT_NAMED.sub(_element_from_one, f"`{argument}`")[1:-1]


def _argument_in_r(exc: BaseException, message: str, argument: str | None) -> str:
    old = f"argument `{getattr(exc, 'argument', None)}`"
    return message.replace(old, f"argument `{argument}`", 1) if argument and old in message else message


def error_info(exc: BaseException) -> dict[str, Any]:
    """The R condition for ``exc``: ``r_class`` (the pydlr sub-class, or None), ``python_class`` (qualified),
    ``message`` (``str(exc)``, its keyword advice in R syntax), ``notes`` (``exc.__notes__``, e.g. which
    callback raised it), and the
    ``InputError`` fields ``argument``/``expected``/``where`` when present."""
    r_class = next((name for cls, name in R_CLASSES if isinstance(exc, cls)), None)
    argument = _r_argument(exc)
    kind = type(exc)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    info: dict[str, Any] = {
        "r_class": r_class,
        "pydlr": isinstance(exc, PydlrError),
        "python_class": f"{module}{kind.__qualname__}",
        "message": in_r_syntax(_received_in_r(exc, _argument_in_r(exc, str(exc), argument))),
        "notes": [in_r_syntax(str(note)) for note in getattr(exc, "__notes__", None) or []],
    }
    for attr in ("argument", "expected", "where"):
        value = argument if attr == "argument" else getattr(exc, attr, None)
        if value is not None:
            info[attr] = str(value)
    return info
