"""Rules that both the suite (``bench``) and the result tools (``scripts``) follow, kept in one place.

Dependency-free (the standard library only), so every room may import it without pulling in
another room's internals: ``workloads`` and ``bench`` at run time, ``scripts`` when reading results.

* :mod:`common.schema`: the results schema version and its history, the keys every record carries,
  the profiles, and the recommended pool size for an effective CPU count.
* :mod:`common.files`: the one atomic file write.
"""
