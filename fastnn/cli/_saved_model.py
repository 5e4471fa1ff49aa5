"""What the commands on saved models share: reading the model file and the input arrays,
with errors that name the file and say what was expected."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..model_summary import format_shape

MODEL_FILE_HELP = "a model written by model.save(PATH) or fastnn train --save PATH"


def load_saved_model(path, backend: str | None = None):
    """The model saved at ``path``; a ValueError naming the file when there is none."""
    from ..errors import ModelFileError
    from ..serialization import load_model

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file; expected {MODEL_FILE_HELP}")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; expected {MODEL_FILE_HELP}")
    try:
        return load_model(path, backend=backend)
    except ModelFileError as error:
        reason = str(error)
        if reason.startswith(str(path)):
            reason = reason[len(str(path)) :].lstrip(": ")
        if not reason.startswith("not a"):
            reason = f"not a fastnn model file ({reason})"
        raise ValueError(f"{path}: {reason}; expected {MODEL_FILE_HELP}") from None


def load_input(path) -> np.ndarray:
    """The array in ``path``: a .npy file, or a .npz file holding exactly one array."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file; expected a .npy file (np.save) or a .npz with one array")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        if "Object arrays" in str(error):
            what = "holds an array of Python objects, which fastnn does not read"
        else:
            what = "is not a NumPy array file"
        raise ValueError(
            f"{path}: {what}; expected numbers in a .npy file (np.save(PATH, x)) or a .npz with one array"
        ) from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.files)
            if len(names) != 1:
                raise ValueError(
                    f"{path}: holds {len(names)} arrays ({', '.join(names) or 'none'}); expected one, "
                    "the inputs (save them alone with np.save(PATH, x))"
                )
            return loaded[names[0]]
    return loaded


def check_inputs(model, model_path, x: np.ndarray, source: str) -> np.ndarray:
    """``x`` if the model takes it, else a ValueError naming the model file and ``source``
    (the input file, or the data set) with the shapes or dtypes expected and found."""
    if x.dtype.kind != "f":
        hint = " (images in 0..255? scale them: x.astype(np.float32) / 255)" if x.dtype.kind in "iub" else ""
        raise ValueError(
            f"{model_path} expects float32 or float64 inputs; {source} holds {x.dtype} values{hint}"
        )
    expected = model.input_shape
    if x.ndim < 1 or (expected is not None and x.shape[1:] != expected):
        shown = format_shape(expected) if expected is not None else "(N, ...)"
        hint = ""
        if expected is not None and x.shape == expected:
            hint = " (one sample without its batch axis: save it as x[None])"
        elif expected is not None and x.ndim >= 1 and x[:1].size == int(np.prod(expected)):
            hint = f" (reshape it: x.reshape({', '.join(map(str, (-1, *expected)))}))"
        raise ValueError(f"{model_path} expects inputs of shape {shown}; {source} holds {x.shape}{hint}")
    if expected is None:
        try:
            model.output_shape(x.shape[1:])
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"{model_path} cannot take the inputs of shape {x.shape} in {source}: {error}"
            ) from None
    return x
