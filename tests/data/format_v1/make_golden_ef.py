"""Made the compressed tag-set golden file once (2026-12-01), when section type 6 was added.
Do not regenerate: tests load these bytes forever.

The key is the published test key, bytes 0x00..0x1f (docs/FORMAT.md §7)."""

import pathlib

import pi_match

here = pathlib.Path(__file__).parent
key = pi_match.Key.from_bytes(bytes(range(32)))
emails = pi_match.TagSet(key, "email")
emails.add([f"user{i}@example.com" for i in range(1000)])
emails.save(here / "tagset_ef_email.pmi")
