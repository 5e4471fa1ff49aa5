"""Training checkpoints: everything ``fit`` needs to continue a run exactly where it stopped.

A checkpoint folder holds ``checkpoint-<step>.npz`` files, ``<step>`` being the number
of optimizer steps ``fit`` had taken (9 digits, so names sort by step). Each file is
written atomically (temp file, fsync, rename: see :func:`fastnn._files.atomic_write`)
and only the newest ``keep`` are kept. A file is a plain ``.npz`` (no pickle) holding

==========================  ===========================================================
entry                       what
==========================  ===========================================================
``__fastnn__``              format marker, as in a model file
``config``, ``params``,     the model, exactly as a model file stores it, so
``buffers/<i>/<name>``      ``fnn.load("ckpt/checkpoint-000000120.npz")`` returns it
``optimizer/<name>``        the optimizer's state arrays (Adam's ``m`` and ``v``, ...)
``extra/<name>``            arrays of the training loop (the epoch's permutation
                            ``order``, early stopping's ``best_params``)
``checkpoint``              JSON (as uint8 bytes): format version, optimizer class,
                            hyperparameters and step count, layer RNG states, and the
                            loop's own state (counters, RNG, history, early stopping)
``digest``                  SHA-256 over every other entry: a changed byte is an error
==========================  ===========================================================

    path = save_checkpoint("ckpt", model, optimizer, state={"epoch": 3}, keep=3)
    ckpt = load_checkpoint(path)               # or load_latest("ckpt")
    ckpt.restore(model, optimizer)             # weights, buffers, layer RNGs, optimizer
    ckpt.state["epoch"], ckpt.extra["order"]

Every damaged, truncated, foreign or too-new file raises
:class:`~fastnn.errors.ModelFileError` naming it; nothing is ever unpickled.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from ._files import atomic_write, content_digest, json_bytes, parse_json, read_npz
from .errors import ModelFileError
from .optim import OPTIMIZERS
from .serialization import model_arrays, set_model_arrays

#: Version of the ``checkpoint`` JSON entry; files with a larger number are refused.
CHECKPOINT_FORMAT = 1

_NAME = re.compile(r"^checkpoint-(\d{9,})\.npz$")
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


# ---------------------------------------------------------------- files


def checkpoint_path(directory, step: int) -> Path:
    """``directory/checkpoint-<step:09d>.npz``."""
    return Path(directory) / f"checkpoint-{int(step):09d}.npz"


def list_checkpoints(directory) -> list[Path]:
    """The checkpoint files in ``directory``, oldest (fewest steps) first; [] if there is none."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory) -> Path | None:
    """The newest checkpoint file in ``directory``, or None."""
    files = list_checkpoints(directory)
    return files[-1] if files else None


def remove_stale_temporaries(directory) -> None:
    """Delete temp files a killed process left behind while writing a checkpoint."""
    directory = Path(directory)
    if directory.is_dir():
        for entry in directory.iterdir():
            if entry.name.startswith(".checkpoint-") and entry.name.endswith(".tmp"):
                try:
                    entry.unlink()
                except OSError:
                    pass


# ---------------------------------------------------------------- RNG states


def rng_state(generator: np.random.Generator) -> dict:
    """A generator's bit-generator state as plain JSON data (ints, lists, strings)."""
    state = generator.bit_generator.state
    return _jsonable(state)


def set_rng_state(generator: np.random.Generator, state: dict, where: str = "set_rng_state") -> None:
    """Put ``generator`` in the saved ``state`` (from :func:`rng_state`), replacing its
    bit generator if the saved one is of another (known) kind."""
    if not isinstance(state, dict) or state.get("bit_generator") not in _BIT_GENERATORS:
        raise ValueError(f"{where}: not a saved numpy bit-generator state: {state!r:.80}")
    name = state["bit_generator"]
    if type(generator.bit_generator).__name__ != name:
        raise ValueError(
            f"{where}: the generator uses {type(generator.bit_generator).__name__}, "
            f"the saved state is for {name}"
        )
    state = dict(state)
    if name == "MT19937":
        inner = dict(state["state"])
        inner["key"] = np.asarray(inner["key"], dtype=np.uint32)
        state["state"] = inner
    elif name == "Philox":
        inner = dict(state["state"])
        inner["counter"] = np.asarray(inner["counter"], dtype=np.uint64)
        inner["key"] = np.asarray(inner["key"], dtype=np.uint64)
        state["state"] = inner
        if "buffer" in state:
            state["buffer"] = np.asarray(state["buffer"], dtype=np.uint64)
    generator.bit_generator.state = state


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def layer_rngs(model) -> dict:
    """{"<layer index>": {"<attribute>": state}} for every numpy Generator a layer holds
    (Dropout's ``rng``): the randomness a resumed run must continue, not restart."""
    saved = {}
    for index, layer in enumerate(model.layers):
        states = {
            name: rng_state(value)
            for name, value in sorted(vars(layer).items())
            if isinstance(value, np.random.Generator)
        }
        if states:
            saved[str(index)] = states
    return saved


# ---------------------------------------------------------------- save


def save_checkpoint(
    directory,
    model,
    optimizer,
    state: dict | None = None,
    extra: dict | None = None,
    step: int | None = None,
    keep: int = 3,
) -> Path:
    """Write a checkpoint of ``model``, ``optimizer`` and the caller's ``state`` into ``directory``.

    Args:
        state: JSON-serialisable data of the training loop (counters, history, ...).
        extra: arrays of the training loop, by name (the epoch's permutation, ...).
        step: the number in the file name (default: ``optimizer.iterations``).
        keep: how many of the newest checkpoint files to keep (older ones are deleted
            after the new one is safely in place); at least 1.

    Returns the path written. The write is atomic: a crash at any point leaves either
    the previous files or the new complete one, never a partial file under a checkpoint name.
    """
    if not isinstance(keep, (int, np.integer)) or isinstance(keep, bool) or keep < 1:
        raise ValueError(f"save_checkpoint: keep must be a positive integer, got {keep!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    step = optimizer.iterations if step is None else int(step)
    arrays = model_arrays(model)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "optimizer": {
            "class": type(optimizer).__name__,
            "config": optimizer.get_config(),
            "iterations": int(optimizer.iterations),
            "state": sorted(optimizer.state),
        },
        "layer_rngs": layer_rngs(model),
        "extra": sorted(extra or {}),
        "state": state if state is not None else {},
    }
    arrays["checkpoint"] = json_bytes(meta)
    for name, array in optimizer.state.items():
        arrays[f"optimizer/{name}"] = array
    for name, array in (extra or {}).items():
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise TypeError(
                f"save_checkpoint: extra[{name!r}] is an object array; "
                "checkpoints hold plain numeric arrays only"
            )
        arrays[f"extra/{name}"] = array
    arrays["digest"] = content_digest(arrays)
    path = checkpoint_path(directory, step)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))
    for old in list_checkpoints(directory)[:-keep]:
        try:
            old.unlink()
        except OSError:
            pass
    return path


# ---------------------------------------------------------------- load


class Checkpoint:
    """One checkpoint read back and checked: ``path``, ``config`` (the model's),
    ``state`` (the training loop's JSON), ``extra`` (its arrays), ``optimizer`` (class
    name, config, iterations) and ``optimizer_state`` (arrays)."""

    def __init__(self, path: Path, arrays: dict, meta: dict, config: dict):
        self.path = path
        self.arrays = arrays
        self.meta = meta
        self.config = config
        self.state: dict = meta["state"]
        self.optimizer: dict = meta["optimizer"]
        self.optimizer_state = {name: arrays[f"optimizer/{name}"] for name in self.optimizer["state"]}
        self.extra = {name: arrays[f"extra/{name}"] for name in meta["extra"]}

    def __repr__(self):
        return f"Checkpoint({str(self.path)!r}, step={self.optimizer['iterations']})"

    def check_model(self, model) -> None:
        """ValueError unless ``model`` has the architecture and dtype the checkpoint was made for."""
        mine, saved = model.get_config(), self.config
        for key in ("layers", "loss", "dtype"):
            if mine.get(key) != saved.get(key):
                raise ValueError(
                    f"{self.path}: the checkpoint is for another model ({key} differs: "
                    f"saved {saved.get(key)!r}, given {mine.get(key)!r})"
                )

    def check_optimizer(self, optimizer) -> None:
        """ValueError unless ``optimizer`` is of the class the checkpoint was made with."""
        if type(optimizer).__name__ != self.optimizer["class"]:
            raise ValueError(
                f"{self.path}: the checkpoint was made with {self.optimizer['class']}, "
                f"not {type(optimizer).__name__}"
            )

    def restore(self, model, optimizer=None) -> None:
        """Put the saved weights, layer buffers, layer RNG states and (if given) optimizer
        state and hyperparameters into ``model`` and ``optimizer``. Checks first, then copies."""
        self.check_model(model)
        if optimizer is not None:
            self.check_optimizer(optimizer)
            self._check_optimizer_state(optimizer, model)
        rngs = self.meta["layer_rngs"]
        generators = []
        for index, states in rngs.items():
            if not (
                isinstance(index, str)
                and index.isdigit()
                and int(index) < len(model.layers)
                and isinstance(states, dict)
            ):
                raise ModelFileError(f"{self.path}: corrupt layer RNG entry {index!r}")
            layer = model.layers[int(index)]
            for name, state in states.items():
                generator = getattr(layer, name, None)
                if not isinstance(generator, np.random.Generator):
                    raise ValueError(
                        f"{self.path}: {model.layer_name(int(index))} has no generator '{name}' to restore"
                    )
                generators.append((generator, state))
        set_model_arrays(model, self.arrays, self.path)
        for generator, state in generators:
            set_rng_state(generator, state, str(self.path))
        if optimizer is not None:
            optimizer.load_state_dict(
                {
                    "config": self.optimizer["config"],
                    "iterations": self.optimizer["iterations"],
                    "state": self.optimizer_state,
                }
            )

    def _check_optimizer_state(self, optimizer, model) -> None:
        config = self.optimizer["config"]
        if set(config) != set(optimizer.get_config()) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
            for v in config.values()
        ):
            raise ModelFileError(f"{self.path}: invalid {self.optimizer['class']} hyperparameters {config!r}")
        for name, array in self.optimizer_state.items():
            if (
                name not in type(optimizer).state_names
                or array.shape != model.flat_params.shape
                or array.dtype != model.flat_params.dtype
            ):
                raise ModelFileError(
                    f"{self.path}: optimizer state '{name}' has shape {array.shape} and dtype "
                    f"{array.dtype}; the model needs {model.flat_params.shape} {model.dtype}"
                )

    def build_optimizer(self):
        """A new optimizer of the saved class and hyperparameters, with the saved state."""
        cls = OPTIMIZERS.get(str(self.optimizer["class"]).lower())
        if cls is None:
            raise ModelFileError(f"{self.path}: unknown optimizer {self.optimizer['class']!r}")
        try:
            optimizer = cls(**self.optimizer["config"])
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{self.path}: invalid optimizer settings ({error})") from None
        optimizer.load_state_dict(
            {
                "config": self.optimizer["config"],
                "iterations": self.optimizer["iterations"],
                "state": self.optimizer_state,
            }
        )
        return optimizer


def load_checkpoint(path) -> Checkpoint:
    """Read and verify one checkpoint file.

    Raises :class:`ModelFileError` naming ``path`` when it is truncated, corrupt (the
    digest catches any changed value), not a fastnn checkpoint, or from a newer format.
    """
    path = Path(path)
    arrays = read_npz(path, what="fastnn checkpoint")
    if "checkpoint" not in arrays:
        raise ModelFileError(f"{path}: not a fastnn checkpoint (a model file? load it with fnn.load)")
    if "digest" not in arrays:
        raise ModelFileError(f"{path}: corrupt fastnn checkpoint (no digest)")
    meta = parse_json(path, arrays, "checkpoint")
    config = parse_json(path, arrays, "config")
    try:
        version = meta["format"]
        if not isinstance(version, int):
            raise TypeError("format is not an integer")
        if version > CHECKPOINT_FORMAT:
            raise ModelFileError(
                f"{path}: written by a newer fastnn (checkpoint format {version}); this version "
                f"reads format {CHECKPOINT_FORMAT} and older. Upgrade fastnn to resume from it."
            )
        optimizer = meta["optimizer"]
        if not (
            isinstance(config, dict)
            and isinstance(meta["state"], dict)
            and isinstance(meta["layer_rngs"], dict)
            and isinstance(optimizer["config"], dict)
            and isinstance(optimizer["iterations"], int)
        ):
            raise TypeError("unexpected structure")
        for name in list(optimizer["state"]) + [f"extra:{n}" for n in meta["extra"]]:
            key = f"extra/{name[6:]}" if name.startswith("extra:") else f"optimizer/{name}"
            if key not in arrays:
                raise KeyError(f"missing entry {key!r}")
        return Checkpoint(path, arrays, meta, config)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ModelFileError(f"{path}: corrupt fastnn checkpoint ({type(error).__name__}: {error})") from None


def load_latest(directory) -> Checkpoint | None:
    """The newest readable checkpoint in ``directory`` (None if there is none).

    A damaged newest file is renamed ``<name>.corrupt`` with a RuntimeWarning and the
    next older one is tried; if every file is damaged, the last error is raised.
    """
    files = list_checkpoints(directory)
    error = None
    for path in reversed(files):
        try:
            return load_checkpoint(path)
        except ModelFileError as exc:
            error = exc
            warnings.warn(
                f"skipping damaged checkpoint {path} ({exc}); it is renamed {path.name}.corrupt",
                RuntimeWarning,
                stacklevel=2,
            )
            try:
                os.replace(path, path.with_name(path.name + ".corrupt"))
            except OSError:
                pass
    if error is not None:
        raise error
    return None


__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "checkpoint_path",
    "list_checkpoints",
    "latest_checkpoint",
    "load_checkpoint",
    "load_latest",
    "save_checkpoint",
    "rng_state",
    "set_rng_state",
    "layer_rngs",
    "remove_stale_temporaries",
]
