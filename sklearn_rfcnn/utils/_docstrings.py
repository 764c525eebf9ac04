"""Shared docstring sections: one text for the parameters several functions take."""

import textwrap

__all__ = ["fill_doc"]


def fill_doc(**sections):
    """Decorator filling ``%(name)s`` lines of a docstring with shared sections.

    A line holding only ``%(name)s`` is replaced by ``sections[name]``
    (dedented), indented like the placeholder, so the text of a parameter that
    several functions or classes take is written once.  Placeholders without a
    section raise a ``KeyError`` at import, so none can reach the docs.

    Parameters
    ----------
    **sections : str
        The texts, by placeholder name.

    Returns
    -------
    decorator : callable
        Sets the filled ``__doc__`` on the function or class and returns it.

    Examples
    --------
    >>> @fill_doc(x="x : int\\n    The input.")
    ... def f(x):
    ...     '''Twice x.
    ...
    ...     Parameters
    ...     ----------
    ...     %(x)s
    ...     '''
    ...     return 2 * x
    >>> print(f.__doc__.splitlines()[4:6])
    ['    x : int', '        The input.']
    """

    def decorate(obj):
        obj.__doc__ = fill_text(obj.__doc__, sections)
        return obj

    return decorate


def fill_text(doc, sections):
    """``doc`` with every ``%(name)s`` line replaced by its indented section."""
    lines = []
    for line in (doc or "").split("\n"):
        stripped = line.strip()
        if stripped.startswith("%(") and stripped.endswith(")s"):
            indent = line[: len(line) - len(line.lstrip())]
            text = textwrap.dedent(sections[stripped[2:-2]]).strip("\n")
            lines.append(textwrap.indent(text, indent))
        else:
            lines.append(line)
    return "\n".join(lines)
