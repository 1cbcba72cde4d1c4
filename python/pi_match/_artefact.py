"""The old, private name of `pi_match.artefact`, kept so existing imports go on working."""

from .artefact import Artefact, Section, load, verify

__all__ = ["Artefact", "Section", "load", "verify"]
