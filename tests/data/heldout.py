"""A small key-value store with snapshots, written for flashrt's perplexity tests.

It is ordinary Python code that none of the models saw in training: the tests measure how the
perplexity of the trained pycoder models changes when their weights are quantized.
"""

import json
import os
import time
from collections import OrderedDict


class StoreError(Exception):
    """Raised when the store cannot do what was asked."""


class Snapshot:
    """An immutable copy of the store at one moment."""

    def __init__(self, items, version, created=None):
        self.items = dict(items)
        self.version = version
        self.created = created if created is not None else time.time()

    def __len__(self):
        return len(self.items)

    def __contains__(self, key):
        return key in self.items

    def get(self, key, default=None):
        return self.items.get(key, default)

    def to_dict(self):
        return {
            "version": self.version,
            "created": self.created,
            "items": self.items,
        }

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise StoreError("snapshot data must be a dict, not %s" % type(data).__name__)
        try:
            return cls(data["items"], data["version"], data.get("created"))
        except KeyError as exc:
            raise StoreError("snapshot is missing %s" % exc) from None


class Store:
    """A key-value store that keeps the most recent snapshots in memory."""

    def __init__(self, path=None, max_snapshots=8):
        self.path = path
        self.max_snapshots = max_snapshots
        self._items = {}
        self._version = 0
        self._snapshots = OrderedDict()
        if path is not None and os.path.exists(path):
            self.load(path)

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(sorted(self._items))

    def __getitem__(self, key):
        try:
            return self._items[key]
        except KeyError:
            raise KeyError(key) from None

    def __setitem__(self, key, value):
        self.set(key, value)

    def __delitem__(self, key):
        self.delete(key)

    @property
    def version(self):
        return self._version

    def set(self, key, value):
        if not isinstance(key, str):
            raise TypeError("keys must be strings")
        self._items[key] = value
        self._version += 1
        return self._version

    def delete(self, key):
        if key not in self._items:
            raise KeyError(key)
        del self._items[key]
        self._version += 1
        return self._version

    def update(self, other=None, **kwargs):
        if other is not None:
            for key, value in dict(other).items():
                self.set(key, value)
        for key, value in kwargs.items():
            self.set(key, value)

    def snapshot(self, name=None):
        """Saves the current items under a name and returns the snapshot."""
        if name is None:
            name = "v%d" % self._version
        snap = Snapshot(self._items, self._version)
        self._snapshots[name] = snap
        self._snapshots.move_to_end(name)
        while len(self._snapshots) > self.max_snapshots:
            self._snapshots.popitem(last=False)
        return snap

    def restore(self, name):
        """Replaces the items with those of a saved snapshot."""
        try:
            snap = self._snapshots[name]
        except KeyError:
            raise StoreError("no snapshot named %r" % name) from None
        self._items = dict(snap.items)
        self._version = snap.version
        self._snapshots.move_to_end(name)
        return snap

    def snapshots(self):
        return list(self._snapshots)

    def diff(self, name):
        """Returns the keys added, removed and changed since a snapshot."""
        snap = self._snapshots.get(name)
        if snap is None:
            raise StoreError("no snapshot named %r" % name)
        before, after = snap.items, self._items
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
        return added, removed, changed

    def save(self, path=None):
        path = path or self.path
        if path is None:
            raise StoreError("no path to save to")
        data = {
            "version": self._version,
            "items": self._items,
            "snapshots": {name: snap.to_dict() for name, snap in self._snapshots.items()},
        }
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load(self, path):
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except ValueError as exc:
                raise StoreError("%s is not valid JSON: %s" % (path, exc)) from None
        self._items = dict(data.get("items", {}))
        self._version = int(data.get("version", 0))
        self._snapshots = OrderedDict()
        for name, snap in data.get("snapshots", {}).items():
            self._snapshots[name] = Snapshot.from_dict(snap)


def merge(left, right, prefer="right"):
    """Merges two stores into a new one; `prefer` decides conflicts."""
    if prefer not in ("left", "right"):
        raise ValueError("prefer must be 'left' or 'right'")
    result = Store()
    first, second = (right, left) if prefer == "left" else (left, right)
    for key in first:
        result.set(key, first[key])
    for key in second:
        result.set(key, second[key])
    return result


def main(argv):
    if len(argv) < 3:
        print("usage: store.py PATH COMMAND [ARGS...]")
        return 2
    store = Store(argv[1])
    command, args = argv[2], argv[3:]
    if command == "get":
        for key in args:
            print(key, store[key])
    elif command == "set":
        for pair in args:
            key, _, value = pair.partition("=")
            store.set(key, value)
        store.save()
    elif command == "snapshot":
        snap = store.snapshot(args[0] if args else None)
        store.save()
        print("saved %d items at version %d" % (len(snap), snap.version))
    elif command == "restore":
        store.restore(args[0])
        store.save()
    elif command == "list":
        for key in store:
            print(key)
    else:
        print("unknown command %r" % command)
        return 2
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
