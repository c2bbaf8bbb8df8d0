"""The package under test is the installed wheel, with its stubs."""

from __future__ import annotations

from pathlib import Path

import keyseal
from keyseal import _keyseal


def test_imported_from_the_installed_wheel_not_the_source_tree() -> None:
    pkg = Path(keyseal.__file__).resolve().parent
    assert "site-packages" in pkg.parts, pkg
    assert Path(_keyseal.__file__).resolve().parent == pkg


def test_typed_package_ships_stubs_and_marker() -> None:
    pkg = Path(keyseal.__file__).resolve().parent
    for name in ("py.typed", "__init__.pyi", "_keyseal.pyi"):
        assert (pkg / name).is_file(), name


def test_facade_exports_are_complete() -> None:
    assert sorted(keyseal.__all__) == sorted(set(keyseal.__all__))
    for name in keyseal.__all__:
        assert hasattr(keyseal, name), name
    public_native = {n for n in dir(_keyseal) if not n.startswith("_")}
    assert public_native <= set(keyseal.__all__), public_native - set(keyseal.__all__)
    assert keyseal.__version__ == _keyseal.__version__
