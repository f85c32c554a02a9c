"""``index.json``: which shard holds which clip, and the folds' splits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nrdfer.data.shards.format import FORMAT, INDEX, CorruptShardError, some_ids
from nrdfer.errors import UserError
from nrdfer.io import read_json
from nrdfer.labels import CLASS_SETS, DFEW, ClassSet


def _check_layout(data: object, path: Path) -> None:
    """CorruptShardError unless ``data`` has the fields and types an index of FORMAT has."""

    def bad(what: str) -> CorruptShardError:
        return CorruptShardError(f"{path}: {what}; re-run the shards stage")

    if not isinstance(data, dict):
        raise bad(f"holds a JSON {type(data).__name__}, not a shard index (an object)")
    if data.get("format") != FORMAT:
        raise bad(
            f"index format {data.get('format')!r}, this nrdfer reads format {FORMAT} "
            "(shards written by an older version, or not a shard index)"
        )
    for field in ("parts", "clips", "folds"):
        if not isinstance(data.get(field), dict):
            raise bad(f"has no {field!r} object")
    classes = CLASS_SETS.get(data.get("dataset"), DFEW).num_classes  # the data set's class set
    for clip, entry in data["clips"].items():
        label = entry.get("label") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("shard"), str):
            raise bad(f"clip {clip!r} has no shard name")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < classes:
            raise bad(f"clip {clip!r} has label {label!r}, not a class index 0..{classes - 1}")
    for name, part in data["parts"].items():
        shards = part.get("shards") if isinstance(part, dict) else None
        if not isinstance(shards, list) or not all(
            isinstance(s, dict)
            and isinstance(s.get("name"), str)
            and isinstance(s.get("clips"), int)
            for s in shards
        ):
            raise bad(f"part {name!r} has no valid list of shards")
    for name, fold in data["folds"].items():
        if not isinstance(fold, dict) or not all(
            isinstance(fold.get(split), list) for split in ("train", "val", "test")
        ):
            raise bad(f"fold {name!r} has no train/val/test lists")


class ShardIndex:
    """The ``index.json`` of a shard directory, with the helpers the readers need.

    Loading checks that the index agrees with itself and with the directory: every clip's
    shard is listed with the number of clips that point to it, and every tar in the
    directory is listed. Each tar's content is checked against the index when it is read
    (:func:`iter_shard`).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        path = self.directory / INDEX
        if not path.is_file():
            raise UserError(f"{path}: shard index not found. Run the shards stage first.")
        try:
            self.data = read_json(path)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        _check_layout(self.data, path)
        self.keys: dict[str, list[str]] = {}  # shard name -> its clip ids
        for clip, entry in self.data["clips"].items():
            self.keys.setdefault(entry["shard"], []).append(clip)
        listed = {s["name"]: s["clips"] for p in self.data["parts"].values() for s in p["shards"]}
        on_disk = {p.name for p in self.directory.glob("*.tar")}
        for name in sorted(set(self.keys) | set(listed) | on_disk):
            n = len(self.keys.get(name, []))
            if name not in listed or listed[name] != n:
                raise CorruptShardError(
                    f"{path} does not agree with its tars: shard {name} is "
                    + (f"listed with {listed[name]} clips" if name in listed else "not listed")
                    + f", {n} clips point to it"
                    + ("" if name in on_disk else " (and it is not in the directory)")
                    + "; re-run the shards stage"
                )

    @property
    def class_set(self) -> ClassSet:
        """The class set of the data set the shards hold (its ``dataset`` field; an index
        without one holds DFEW-order labels, as the layout check assumes)."""
        name = self.data.get("dataset")
        if name is None:
            return DFEW
        if name not in CLASS_SETS:
            raise UserError(
                f"{self.directory / INDEX}: data set {name!r} has no class set (known: "
                f"{', '.join(CLASS_SETS)}); re-run the ingest, folds and shards stages"
            )
        return CLASS_SETS[name]

    @property
    def folds(self) -> list[str]:
        return list(self.data["folds"])

    def ids(self, fold: str | int, split: str) -> list[str]:
        """Clip ids of a fold's ``train``, ``val`` or ``test`` split (``all``: every clip)."""
        if split == "all":
            return list(self.data["clips"])
        fold = str(fold)
        if fold not in self.data["folds"]:
            raise UserError(f"{self.directory}: no fold {fold!r} (folds: {', '.join(self.folds)})")
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val, test or all, got {split!r}")
        ids = list(self.data["folds"][fold][split])
        unknown = [c for c in ids if c not in self.data["clips"]]
        if unknown or len(set(ids)) != len(ids):
            raise CorruptShardError(
                f"{self.directory / INDEX}: fold {fold} {split} names "
                + (f"clips no shard holds: {some_ids(unknown)}" if unknown else "a clip twice")
                + "; re-run the shards stage"
            )
        return ids

    def label(self, clip_id: str) -> int:
        return int(self.data["clips"][clip_id]["label"])

    def shards_for(self, ids: Sequence[str]) -> list[tuple[Path, tuple[str, ...]]]:
        """(path, the clip ids the index puts in it) of every shard holding one of ``ids``,
        in index order."""
        wanted = {self.data["clips"][c]["shard"] for c in ids}
        return [
            (self.directory / s["name"], tuple(self.keys[s["name"]]))
            for part in self.data["parts"].values()
            for s in part["shards"]
            if s["name"] in wanted
        ]
