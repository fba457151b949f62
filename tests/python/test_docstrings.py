"""Every public class, method, property and function of ``nusterdb`` (and of the
integrations, when their frameworks are installed) has a real docstring: ``help()``
must say what a call returns and raises. Dunder methods are covered by the class
docstring (``__init__``/``__new__`` included: each constructor parameter must be named
there, or in a Python class's ``__init__`` docstring), so they are not checked one by
one."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any, List, Tuple

import nusterdb

MIN_CHARS = 15


def _doc(obj: Any) -> str:
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    doc = getattr(obj, "__doc__", None)
    return (doc or "").strip()


def _is_member(obj: Any) -> bool:
    """Methods, static/class methods, properties and PyO3 getters (not data)."""
    return (
        callable(obj)
        or isinstance(obj, (staticmethod, classmethod, property))
        or inspect.isgetsetdescriptor(obj)
        or inspect.ismemberdescriptor(obj)
        or inspect.ismethoddescriptor(obj)
    )


def _constructor_params(cls: type) -> List[str]:
    """The named parameters of ``cls(...)`` (none when it cannot be made directly): of
    the class's own ``__init__`` when it defines one (a framework base class may add
    fields of its own), else of the class (an extension class's text signature)."""
    init = vars(cls).get("__init__")
    try:
        sig = inspect.signature(init if inspect.isfunction(init) else cls)
    except (TypeError, ValueError):
        return []
    if inspect.isfunction(init):
        sig = sig.replace(parameters=list(sig.parameters.values())[1:])  # self
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p.name for p in sig.parameters.values() if p.kind not in kinds]


def _undocumented_in_class(name: str, cls: type) -> List[str]:
    out = []
    if len(_doc(cls)) < MIN_CHARS:
        out.append(f"{name} (class)")
    # The constructor is documented by the class docstring (PyO3 keeps no docstring
    # for __new__) or, for Python classes, by __init__'s: each parameter is named.
    ctor_doc = _doc(cls) + _doc(vars(cls).get("__init__"))
    for param in _constructor_params(cls):
        if param not in ctor_doc:
            out.append(f"{name}({param}=...) (constructor parameter)")
    for attr, obj in vars(cls).items():
        if attr.startswith("_") or not _is_member(obj):
            continue
        if len(_doc(obj)) < MIN_CHARS:
            out.append(f"{name}.{attr}")
    return out


def _public(module: ModuleType) -> List[Tuple[str, Any]]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, o in vars(module).items()
            if not n.startswith("_") and getattr(o, "__module__", None) == module.__name__
        ]
    return [(n, getattr(module, n)) for n in names]


def _undocumented(module: ModuleType) -> List[str]:
    missing = []
    for name, obj in _public(module):
        qual = f"{module.__name__}.{name}"
        if inspect.isclass(obj):
            missing += _undocumented_in_class(qual, obj)
        elif inspect.isroutine(obj) and len(_doc(obj)) < MIN_CHARS:
            missing.append(qual)
    return missing


def test_the_walk_finds_what_it_should() -> None:
    # A guard against a walk that checks nothing: these are known members.
    names = [n for n, _ in _public(nusterdb)]
    assert {"NusterDB", "DatabaseStats", "HNSWConfig", "Metadata", "Vector"} <= set(names)
    members = [a for a, o in vars(nusterdb.NusterDB).items() if _is_member(o)]
    assert {"get", "stats", "count", "dim", "closed", "batch_search", "iter_records"} <= set(
        members
    )
    stats_members = [a for a, o in vars(nusterdb.DatabaseStats).items() if _is_member(o)]
    assert "vector_count" in stats_members

    class Bare:
        def method(self) -> None:
            pass

        @property
        def prop(self) -> int:
            return 1

    assert _undocumented_in_class("Bare", Bare) == ["Bare (class)", "Bare.method", "Bare.prop"]

    class Made:
        """A class whose constructor's docstring forgets an argument."""

        def __init__(self, size: int, colour: str = "red") -> None:
            """Made(size): a thing of this size."""

    assert _undocumented_in_class("Made", Made) == ["Made(colour=...) (constructor parameter)"]
    assert _constructor_params(nusterdb.NusterDB) == [
        "path",
        "config",
        "dim",
        "read_only",
        "progress",
        "encryption",
    ]


def test_every_public_name_of_nusterdb_is_documented() -> None:
    missing = _undocumented(nusterdb) + _undocumented(nusterdb.exceptions)
    assert not missing, "missing or too short docstrings:\n" + "\n".join(missing)


def test_integrations_are_documented() -> None:
    missing = []
    checked = 0
    for mod in ("nusterdb.integrations.langchain", "nusterdb.integrations.llama_index"):
        try:
            module = importlib.import_module(mod)
        except ImportError:  # the framework is not installed
            continue
        checked += 1
        missing += _undocumented(module)
    assert not missing, "missing or too short docstrings:\n" + "\n".join(missing)
    if checked == 0:
        import pytest

        pytest.skip("neither LangChain nor LlamaIndex is installed")


def test_signatures_are_introspectable() -> None:
    # Every public method of the database has a text signature (help() shows its
    # arguments), with the defaults the stubs state.
    for attr, obj in vars(nusterdb.NusterDB).items():
        if attr.startswith("_") or not callable(obj):
            continue
        inspect.signature(obj)  # raises ValueError without a text signature
    sig = inspect.signature(nusterdb.NusterDB.iter_records)
    assert sig.parameters["batch_size"].default == 1000
    sig = inspect.signature(nusterdb.NusterDB.batch_search)
    assert list(sig.parameters)[-4:] == ["include", "quantized", "nprobe", "recall"]
