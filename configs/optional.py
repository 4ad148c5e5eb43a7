"""Optional dependencies (pyproject's extras), imported lazily in one way: `require` at the point of use.

    dcrf = require("pydensecrf.densecrf", "crf", "dense CRF", PostprocessError, package="pydensecrf2")

returns the module, or raises `error` with one line naming the feature, the package and the
`pip install '.[EXTRA]'` that brings it. `installed` says whether `require` would succeed.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(
    module: str,
    extra: str,
    purpose: str,
    error: type[Exception] = ImportError,
    package: str | None = None,
    otherwise: str = "",
) -> ModuleType:
    """Import module (dotted names too) or raise error("PURPOSE needs the optional package
    PACKAGE: pip install '.[EXTRA]' (OTHERWISE)"); package defaults to the module's top name."""
    try:
        # __import__ (not importlib.import_module) so that a test replacing builtins.__import__ is obeyed.
        __import__(module)
    except ImportError:
        hint = f" ({otherwise})" if otherwise else ""
        name = package or module.split(".")[0]
        raise error(f"{purpose} needs the optional package {name}: pip install '.[{extra}]'{hint}") from None
    return importlib.import_module(module)


def installed(module: str) -> bool:
    """Whether module imports (an optional extra that is installed and works)."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True
