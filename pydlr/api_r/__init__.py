"""The narrow, stable Python API that the R package calls, one module a concern.

R reaches nothing else in pydlr: its one call wrapper (``r-package/R/python.R``) calls
``pydlr.api_r.<module>.<function>`` by name. Arguments are plain (ints, floats, strings, lists, dicts, R
functions, arrays handed over by the R bridge) and results are plain (dicts, lists, NumPy arrays), so the R
side stays a thin typed shell: it checks types at its border, converts, and formats. Model handles are the only
opaque objects that cross.

Functions carry the names of the public Python API they forward to (``training.fit`` is ``model.fit``,
``interpret.filters`` is ``pydlr.interpret.filters``); docs/CONTRACT.md lists each R verb beside its Python
name. Meaning is checked once, by the core (``pydlr.errors.InputError`` and friends); these modules only
translate R's types (R has no tuples, no int64, no uint8) and never re-validate.

Modules: ``models`` (building, summaries, weights), ``training`` (compile, fit, evaluate, predict,
callbacks), ``saving``, ``datasets``, ``images`` (image datasets streamed from disk), ``pretrained``, ``interpret``, ``cluster``, ``errors`` (exceptions as R
conditions), ``config`` (seeding and runtime facts for ``pydlr_config()``).
"""
