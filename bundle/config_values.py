"""Config values as a person types them on the command line.

``python -m monai.bundle run ... --resume false``: the command-line parser (Fire) turns only Python literals into
values, so ``False`` arrives as a bool but ``false`` stays the string ``"false"``, and ``bool("false")`` is ``True``.
Every boolean option that a user can set goes through :func:`as_bool`, where it is consumed: the networks' flags in
their constructors, the handlers' and batch inference's flags in theirs, and the configs' own flags inside the
``$`` expressions that read them (``$bundle.config_values.as_bool(@resume, 'resume')``).

Pure Python and importing nothing else of ``bundle`` (whose ``__init__`` imports nothing), so that
``bundle.networks`` can use it and still stand alone with torch and MONAI.
"""

from __future__ import annotations

__all__ = ["as_bool"]

_TRUE = ("true", "yes", "1")  # matched after strip().lower()
_FALSE = ("false", "no", "0")


def as_bool(value: object, name: str) -> bool:
    """The boolean option ``name`` set to ``value``.

    Args:
        value: ``True``/``False``; the integers 1/0 (Fire's reading of ``--option 1``); or the strings
            true/false, yes/no, 1/0 in any case, surrounding spaces ignored.
        name: the option's name, for the error message (the config key or the constructor argument).

    Raises:
        ValueError: for anything else (``"maybe"``, ``2``, ``None``, ``""``), naming the option and the value.

    Examples::

        >>> as_bool("False", "resume"), as_bool("yes", "resume"), as_bool(1, "resume")
        (False, True, True)
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(
        f"{name} must be true or false (or yes/no, 1/0, in any case), got {value!r} ({type(value).__name__})"
    )
