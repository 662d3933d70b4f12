"""netc.runtime: load what the compiler emitted and run it behind one interface
(named numpy inputs in, named numpy outputs out). Backends are imported lazily."""
