"""Every public class, function and method of the documented API has a docstring.

The API reference (docs/api/, built by mkdocstrings) is generated from the docstrings, so a
missing one is a hole in the site. "Public" is what a module exports: its ``__all__``, or,
without one, the names it defines that do not start with an underscore; and of a class,
the methods and properties it defines without a leading underscore. A method that
overrides a documented one of a base class inherits that docstring (``inspect.getdoc``
does the same), so it need not repeat it.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

# The modules the API reference documents (docs/api/*.md).
DOCUMENTED_MODULES = [
    "fastnn",
    "fastnn.model",
    "fastnn.training",
    "fastnn.serialization",
    "fastnn.layers",
    "fastnn.losses",
    "fastnn.optim",
    "fastnn.callbacks",
    "fastnn.dashboard",
    "fastnn.schedules",
    "fastnn.datasets",
    "fastnn.models",
    "fastnn.metrics",
    "fastnn.gradcheck",
    "fastnn.compare",
    "fastnn.verification",
    "fastnn.backends",
    "fastnn.augment",
    "fastnn.preprocessing",
    "fastnn.ensembles",
    "fastnn.tune",
    "fastnn.plots",
    "fastnn.classic",
    "fastnn.checkpoint",
    "fastnn.distributed",
    "fastnn.export",
]


def public_names(module) -> list[str]:
    """``module.__all__``, or the public names the module itself defines."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    ]


def inherits_doc(cls, name: str) -> bool:
    """Whether a base class of ``cls`` documents the attribute ``name``."""
    return any(getattr(getattr(base, name, None), "__doc__", None) for base in cls.__mro__[1:-1])


def undocumented_members(cls) -> list[str]:
    """The public methods and properties ``cls`` defines without a docstring of their own or inherited."""
    missing = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
        if not (inspect.isfunction(function) or isinstance(member, property)):
            continue
        if not (function and function.__doc__) and not inherits_doc(cls, name):
            missing.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    return missing


def undocumented(module_name: str) -> list[str]:
    """Everything public in the module that has no docstring."""
    module = importlib.import_module(module_name)
    missing = [] if inspect.getdoc(module) else [module_name]
    for name in public_names(module):
        value = getattr(module, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue  # constants and submodules (checked as modules of their own)
        if not (getattr(value, "__module__", "") or "").startswith("fastnn"):
            continue  # re-exported from elsewhere
        if not value.__doc__:
            missing.append(f"{value.__module__}.{value.__qualname__}")
        if inspect.isclass(value):
            missing += undocumented_members(value)
    return missing


@pytest.mark.parametrize("module_name", DOCUMENTED_MODULES)
def test_public_api_has_docstrings(module_name):
    missing = undocumented(module_name)
    assert not missing, f"{len(missing)} public names in {module_name} have no docstring:\n" + "\n".join(
        sorted(set(missing))
    )


def test_the_check_sees_a_missing_docstring():
    """The walker itself: a class with an undocumented public method is reported."""

    class Example:
        """Documented."""

        def documented(self):
            """Yes."""

        def bare(self):
            pass

        def _private(self):
            pass

    assert undocumented_members(Example) == [f"{__name__}.{Example.__qualname__}.bare"]
