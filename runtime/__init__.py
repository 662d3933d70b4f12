"""netc.runtime: load what the compiler emitted and run it behind one interface
(named numpy inputs in, named numpy outputs out). Backends are imported lazily."""

from .api import Session, Signature, load

__all__ = ["Session", "Signature", "load"]
