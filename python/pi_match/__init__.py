"""pi_match: privacy-preserving breach matching.

Each agency turns its seized lists into keyed, non-reversible artefacts (Bloom indices and exact
tag sets of canonical identifiers); only those artefacts travel. Counts, overlaps and "which of
my records are in their case" are computed from them.

>>> import pi_match
>>> key = pi_match.Key.from_bytes(bytes(range(32)))          # a published test key
>>> ours = pi_match.BloomIndex(key, "cn_ric", capacity=1000)
>>> ours.add(["11010519491231002X", "110105491231002", "1.10105E+17"]).rejected_by_reason
{'excel_scientific': 1}
>>> "11010519491231002x" in ours
True
"""

from __future__ import annotations

from ._core import (
    FORMAT_VERSION,
    KINDS,
    REASONS,
    AddReport,
    BloomIndex,
    Estimate,
    FormatError,
    IncompatibleError,
    InsecureKeyFileWarning,
    Key,
    KeyMismatchError,
    KeyRequiredError,
    PiMatchError,
    RejectedValuesWarning,
    TagSet,
    __version__,
    canonicalize,
    canonicalize_with_reasons,
    estimate_overlap,
    expected_fpr,
    plan_layout,
)
from .artefact import Artefact, load, verify

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "REASONS",
    "AddReport",
    "Artefact",
    "BloomIndex",
    "Estimate",
    "FormatError",
    "IncompatibleError",
    "InsecureKeyFileWarning",
    "Key",
    "KeyMismatchError",
    "KeyRequiredError",
    "PiMatchError",
    "RejectedValuesWarning",
    "TagSet",
    "__version__",
    "canonicalize",
    "canonicalize_with_reasons",
    "estimate_overlap",
    "expected_fpr",
    "load",
    "plan_layout",
    "verify",
]
