"""Made the format v1 golden files once (2026-11-30). Do not regenerate: tests load these
bytes forever, so a change that cannot read them is a format break.

The key is the published test key, bytes 0x00..0x1f (docs/FORMAT.md §7)."""

import pathlib

import pi_match

here = pathlib.Path(__file__).parent
key = pi_match.Key.from_bytes(bytes(range(32)))
(here / "test_key_id.txt").write_text(key.id + "\n")
key.save(here / "test.key", overwrite=True)

IDS = ["11010519491231002X", "440305199003071236", "810000198001010014", "830000197006060036"]
bloom = pi_match.BloomIndex(key, "cn_ric", capacity=100, fpr=1e-6)
bloom.add(IDS)
bloom.save(here / "bloom_cn_ric.pmi")

emails = pi_match.TagSet(key, "email")
emails.add(["zhang.san@example.com", "12345@qq.com", "user@163.com"])
emails.save(here / "tagset_email.pmi")

phones = pi_match.BloomIndex(key, "cn_mobile", capacity=10, fpr=1e-3)
phones.add(["13800138000", "13900000000"])
phone_tags = pi_match.TagSet(key, "cn_mobile")
phone_tags.add(["13800138000", "13900000000"])
pi_match.Artefact([phones, phone_tags, emails]).save(here / "multi.pmi")
