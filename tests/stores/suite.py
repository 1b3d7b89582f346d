"""The conformance suite every store backend passes.

A backend's test class subclasses :class:`StoreSuite` and provides only the
``make_store`` fixture (a function from a root name to a fresh store; stores
made with different root names must be siblings under one parent, so that the
suite can check that nothing outside a store's root is ever listed)::

    class TestMemoryStore(StoreSuite):
        @pytest.fixture
        def make_store(self) -> Iterator[MakeStore]: ...

The suite checks the whole :class:`Store` protocol, the ``start_after`` /
``end_before`` range arguments of ``list`` included, ``close`` (idempotent)
and which optional capabilities the backend declares (the class attributes
``versioned`` and ``partitionable``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import pytest

from reclaim.stores import ObjectInfo, PartitionableStore, Store, VersionedStore, default_mode, is_versioned

MakeStore = Callable[[str], Store]

#: names whose order differs between naive directory walks, UTF-16 and byte order
TRICKY_KEYS = [
    "a-b",
    "a.txt",
    "a/x",
    "a/x-1",
    "a/x.y",
    "a/y/z",
    "a/y0",
    "a0",
    "ab",
    "A",
    "Z",
    "_",
    "_a/b",
    "dir with space/file name",
    "with space",
    "~",
    "~tilde",
    "é",
    "éa/x",
    "日本",
    "日本語/x",
    "\ufb01",  # U+FB01: three UTF-8 bytes, but after U+1F600 in UTF-16 order
    "\U0001f600",
]

INVALID_KEYS = ["../x", "/abs", "a//b", "a/../b", "./a", "a/./b", "..", "a/..", ""]


def keys(infos: Iterator[ObjectInfo]) -> list[str]:
    """The keys of a listing, checking that it is lazy and yields ObjectInfo."""
    assert isinstance(infos, Iterator), "list() must return a lazy iterator"
    out = []
    for info in infos:
        assert isinstance(info, ObjectInfo)
        out.append(info.key)
    return out


def fill(store: Store, names: list[str]) -> None:
    for name in names:
        store.write(name, name.encode())


class StoreSuite:
    """Behaviour every backend shares: ordering, prefixes, errors, deletes, moves, key safety."""

    #: whether a key can be an object and the prefix of others at once ("a" and "a/x"): object stores
    keys_can_be_prefixes = False
    #: whether the backend is a VersionedStore (restores purged objects from kept versions)
    versioned = False
    #: whether the backend is a PartitionableStore (lists its first level for partitioned listings)
    partitionable = False

    @pytest.fixture
    def make_store(self) -> MakeStore:
        raise NotImplementedError("a backend's test class provides make_store")

    @pytest.fixture
    def store(self, make_store: MakeStore) -> Store:
        return make_store("root")

    # -- the protocol -----------------------------------------------------

    def test_implements_the_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert store.name
        assert "://" in store.url or store.url.startswith("/")
        assert default_mode(store) == ("move" if store.atomic_move else "mark")
        assert isinstance(store.parallel_io, bool)

    def test_declares_its_capabilities(self, store: Store) -> None:
        assert isinstance(store, VersionedStore) is self.versioned
        assert is_versioned(store) is self.versioned
        assert isinstance(store, PartitionableStore) is self.partitionable

    def test_close_before_any_use(self, make_store: MakeStore) -> None:
        store = make_store("root")
        store.close()  # nothing opened yet: nothing to release
        store.close()

    def test_close_twice_and_use_again(self, store: Store) -> None:
        store.write("c/obj", b"x")
        store.close()
        store.close()  # idempotent
        assert store.read("c/obj") == b"x"  # a closed store opens what it needs anew
        assert keys(store.list()) == ["c/obj"]
        store.close()

    # -- listing ----------------------------------------------------------

    def test_empty_store_lists_nothing(self, store: Store) -> None:
        assert keys(store.list()) == []
        assert keys(store.list("a/")) == []

    def test_listing_is_in_byte_order(self, store: Store) -> None:
        fill(store, TRICKY_KEYS)
        expected = sorted(TRICKY_KEYS, key=lambda k: k.encode())
        assert expected == sorted(TRICKY_KEYS)  # str order is UTF-8 byte order
        assert keys(store.list()) == expected

    def test_keys_that_are_also_prefixes(self, store: Store) -> None:
        if not self.keys_can_be_prefixes:
            pytest.skip("a directory tree cannot hold 'a' and 'a/x' at once")
        names = ["a", "a/x", "a/x/y", "a-b", "a.txt", "a0", "ab"]
        fill(store, names)
        assert keys(store.list()) == sorted(names)
        assert keys(store.list("a/")) == ["a/x", "a/x/y"]

    @pytest.mark.parametrize("prefix", ["a", "a/", "a/x", "a/y/", "a/y/z", "日", "é", "_", "none/", "zz"])
    def test_prefix_listing(self, store: Store, prefix: str) -> None:
        fill(store, TRICKY_KEYS)
        assert keys(store.list(prefix)) == [k for k in sorted(TRICKY_KEYS) if k.startswith(prefix)]

    def test_skip_prunes_prefixes(self, store: Store) -> None:
        trash = ["_trash/a/x", "_trash/b", "_trash/日本"]
        fill(store, TRICKY_KEYS + trash)
        listed = keys(store.list(skip=["_trash/", "a/y/"]))
        assert listed == [k for k in sorted(TRICKY_KEYS) if not k.startswith("a/y/")]
        assert keys(store.list("_trash/")) == sorted(trash)

    def test_key_ranges_partition_the_listing(self, store: Store) -> None:
        fill(store, TRICKY_KEYS)
        bounds: list[str | None] = [None, "a/w", "a1", "m", "è", None]
        ranges = [keys(store.list(start_after=lo, end_before=hi)) for lo, hi in itertools.pairwise(bounds)]
        assert [k for part in ranges for k in part] == sorted(TRICKY_KEYS)
        assert all(ranges), "every range holds some keys"
        # the bounds themselves are excluded
        assert keys(store.list(start_after="a/x", end_before="a0")) == ["a/x-1", "a/x.y", "a/y/z", "a/y0"]

    def test_one_bound_at_a_time(self, store: Store) -> None:
        fill(store, TRICKY_KEYS)
        ordered = sorted(TRICKY_KEYS)
        for bound in ["", "a", "a/", "a/x", "a/y", "a/y/", "m", "é", "\U0001f600", "\U0010ffff"]:
            assert keys(store.list(start_after=bound)) == [k for k in ordered if k > bound], bound
            assert keys(store.list(end_before=bound)) == [k for k in ordered if k < bound], bound

    def test_ranges_spanning_pages(self, store: Store) -> None:
        names = [f"r/{i:02d}" for i in range(40)] + [f"r/{i:02d}d/sub" for i in range(0, 40, 5)] + ["q", "s"]
        fill(store, names)
        ordered = sorted(names)
        for lo, hi in [("r/03", "r/31"), ("r/", "r0"), (None, "r/20"), ("r/19d/sub", None), ("q", "s")]:
            expected = [k for k in ordered if (lo is None or k > lo) and (hi is None or k < hi)]
            assert len(expected) > 6, "more keys than two pages of the smallest page size in use"
            assert keys(store.list(start_after=lo, end_before=hi)) == expected, (lo, hi)
        # with a prefix and a skip prefix as well
        listed = keys(store.list("r/", skip=["r/1"], start_after="r/04", end_before="r/35d/sub"))
        assert listed == [
            k for k in ordered if k.startswith("r/") and not k.startswith("r/1") and "r/04" < k < "r/35d/sub"
        ]

    def test_empty_ranges_list_nothing(self, store: Store) -> None:
        fill(store, TRICKY_KEYS)
        empty = [
            ("a/x", "a/x"),  # equal bounds, a key
            ("m", "m"),  # equal bounds, no key
            ("a0", "a/x"),  # reversed
            ("a/x", "a/x-1"),  # adjacent keys: nothing strictly between
            ("a/y/z", "a/y/z\x01"),
            ("\U0001f600", None),  # past the last key
            (None, "A"),  # before the first key
            ("b", "d"),  # a gap between keys
        ]
        for lo, hi in empty:
            assert keys(store.list(start_after=lo, end_before=hi)) == [], (lo, hi)
        assert keys(store.list("a/", start_after="a0")) == []  # the range is past the prefix
        assert keys(store.list("a/", end_before="a.txt")) == []  # the range is before the prefix

    def test_invalid_bounds_are_rejected(self, store: Store) -> None:
        for bound in ["/abs", "a\x00"]:
            with pytest.raises(ValueError, match="invalid range bound"):
                store.list(start_after=bound)
            with pytest.raises(ValueError, match="invalid range bound"):
                store.list(end_before=bound)

    def test_listing_reports_what_it_knows(self, store: Store) -> None:
        store.write("info/obj", b"12345")
        [info] = store.list("info/")
        assert info.key == "info/obj"
        assert info.size in (None, 5)

    def test_invalid_prefixes_are_rejected(self, store: Store) -> None:
        for prefix in ["../", "/a", "a//b/", "../../etc/"]:
            with pytest.raises(ValueError, match="invalid"):
                store.list(prefix)
        with pytest.raises(ValueError, match="empty skip prefix"):
            store.list(skip=[""])

    # -- single objects ---------------------------------------------------

    def test_write_read_and_overwrite(self, store: Store) -> None:
        store.write("deep/er/obj", b"one")
        assert store.read("deep/er/obj") == b"one"
        store.write("deep/er/obj", b"")
        assert store.read("deep/er/obj") == b""
        assert keys(store.list()) == ["deep/er/obj"]

    def test_stat_size_and_mtime(self, store: Store) -> None:
        before = time.time()
        store.write("s/obj", b"12345")
        after = time.time()
        info = store.stat("s/obj")
        assert info.key == "s/obj"
        assert info.size == 5
        assert info.mtime is not None
        assert before - 2 <= info.mtime <= after + 2  # S3 keeps whole seconds

    def test_exists(self, store: Store) -> None:
        store.write("e/obj", b"x")
        assert store.exists("e/obj")
        assert not store.exists("e/other")
        assert not store.exists("e")  # a prefix is not an object

    def test_missing_key_raises_file_not_found(self, store: Store) -> None:
        store.write("here/obj", b"x")
        for call in (store.stat, store.read):
            with pytest.raises(FileNotFoundError):
                call("here/missing")
            with pytest.raises(FileNotFoundError):
                call("here")  # a directory or prefix is not an object
        with pytest.raises(FileNotFoundError):
            store.move("here/missing", "there/obj")
        assert not store.exists("there/obj")

    # -- stat_many --------------------------------------------------------

    def test_stat_many_answers_as_stat_does(self, store: Store) -> None:
        fill(store, TRICKY_KEYS)
        # neighbours of these ("a/x-1", "a/x.y", "a0", ...) are stored but not asked for
        asked = ["a/x", "a/y/z", "a.txt", "é", "日本語/x", "\U0001f600", "~"]
        absent = ["a/x0", "a/w", "0", "zz", "a", "a/y", "éb", "~tildf", "日本語/y"]
        found = store.stat_many([*asked, *absent, asked[0], asked[3]])
        assert found == {key: store.stat(key) for key in asked}
        for key, info in found.items():
            assert info.key == key
            assert info.size == len(key.encode())

    def test_stat_many_of_nothing_or_of_missing_keys(self, store: Store) -> None:
        assert store.stat_many([]) == {}
        assert store.stat_many(["no/such", "keys", "at/all"]) == {}
        store.write("one", b"1")
        assert store.stat_many(["no/such", "keys", "one", "at/all"]) == {"one": store.stat("one")}

    def test_stat_many_over_a_range_of_many_pages(self, store: Store) -> None:
        names = [f"p/{i:03d}" for i in range(60)] + [f"p/{i:03d}a/x" for i in range(0, 60, 7)] + ["p0", "o"]
        fill(store, names)
        dense = [f"p/{i:03d}" for i in range(60)]
        every_third = dense[::3]
        spread = [dense[0], dense[31], dense[-1]]
        with_gaps = [f"p/{i:03d}" for i in range(0, 70, 2)] + ["p/0005", "p/059a/y", "p/100"]
        for asked in (dense, every_third, spread, dense[:2], with_gaps, [*dense, "o", "p0", "q"]):
            stored = [key for key in asked if key in set(names)]
            assert store.stat_many(asked) == {key: store.stat(key) for key in stored}, asked

    def test_stat_many_validates_every_key_first(self, store: Store) -> None:
        store.write("v/a", b"x")
        for bad in ["../v/a", "/abs", "a//b", ""]:
            with pytest.raises(ValueError, match="invalid key"):
                store.stat_many(["v/a", bad])

    # -- delete -----------------------------------------------------------

    def test_delete_is_batched_and_idempotent(self, store: Store) -> None:
        names = [f"del/{i:03d}" for i in range(30)]
        fill(store, names)
        store.delete([*names[:20], "del/missing-1", "other/missing", *names[:3]])
        assert keys(store.list()) == names[20:]
        store.delete(names[:20])  # again: nothing to do, no error
        store.delete([])
        assert keys(store.list()) == names[20:]

    def test_delete_takes_glob_characters_literally(self, store: Store) -> None:
        names = ["g/x*", "g/x?", "g/x[1]", "g/x1", "g/xa", "g/xy"]
        fill(store, names)
        store.delete(["g/x*", "g/x?", "g/x[1]"])
        assert keys(store.list()) == ["g/x1", "g/xa", "g/xy"]

    def test_delete_validates_every_key_first(self, store: Store) -> None:
        store.write("v/a", b"x")
        with pytest.raises(ValueError, match="invalid key"):
            store.delete(["v/a", "../v/a"])
        assert store.exists("v/a")

    # -- move -------------------------------------------------------------

    def test_move_moves_and_creates_parents(self, store: Store) -> None:
        store.write("m/src", b"payload")
        store.move("m/src", "_trash/deep/m/src")
        assert store.read("_trash/deep/m/src") == b"payload"
        assert not store.exists("m/src")
        assert keys(store.list()) == ["_trash/deep/m/src"]

    def test_move_refuses_to_overwrite(self, store: Store) -> None:
        store.write("m/a", b"a")
        store.write("m/b", b"b")
        with pytest.raises(FileExistsError):
            store.move("m/a", "m/b")
        assert store.read("m/a") == b"a"
        assert store.read("m/b") == b"b"

    # -- keys and the root ------------------------------------------------

    @pytest.mark.parametrize("bad", INVALID_KEYS)
    def test_invalid_keys_are_rejected(self, store: Store, bad: str) -> None:
        store.write("ok", b"x")
        calls: list[Callable[[], object]] = [
            lambda: store.stat(bad),
            lambda: store.exists(bad),
            lambda: store.read(bad),
            lambda: store.write(bad, b"x"),
            lambda: store.delete([bad]),
            lambda: store.move(bad, "elsewhere"),
            lambda: store.move("ok", bad),
        ]
        for call in calls:
            with pytest.raises(ValueError, match="invalid key"):
                call()
        assert keys(store.list()) == ["ok"]

    def test_nothing_outside_the_root_is_listed(self, make_store: MakeStore) -> None:
        store = make_store("root")
        for sibling in ("root-sibling", "root0", "rootx", "roo"):
            make_store(sibling).write("x", b"outside")
        assert keys(store.list()) == []
        store.write("inside", b"in")
        assert keys(store.list()) == ["inside"]
        assert keys(store.list("x")) == []
