"""Loaders of local copies of public datasets, and of CSV manifests.

Nothing here downloads: each loader reads a folder in the dataset's official
layout and, when something is missing, raises an error that says where to get
the data and which layout is expected.
"""

import csv
import json
import os
import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from sklearn_rfcnn.exceptions import DataError, ParameterError, SkippedItemsWarning

__all__ = [
    "AUDIO_EXTENSIONS",
    "load_audio_folder",
    "load_manifest",
    "load_mtg_jamendo",
    "load_openmic",
]

#: File name extensions (lower case) the loaders treat as audio.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")

_OPENMIC_LAYOUT = """\
Expected layout (OpenMIC-2018, https://zenodo.org/record/1432913, unpack
openmic-2018-v1.0.0.tgz):
    ROOT/openmic-2018.npz            (arrays Y_true, Y_mask, sample_key)
    ROOT/class-map.json              ({"accordion": 0, ...})
    ROOT/partitions/split01_train.csv, ROOT/partitions/split01_test.csv
    ROOT/audio/<first 3 characters of key>/<key>.ogg"""

_JAMENDO_LAYOUT = """\
Expected layout (MTG-Jamendo, https://github.com/MTG/mtg-jamendo-dataset: clone
the repository for ROOT/data and fetch the audio with its
scripts/download/download.py):
    ROOT/data/autotagging_{subset}.tsv
    ROOT/data/splits/split-{split}/autotagging_{subset}-train.tsv
    ROOT/data/splits/split-{split}/autotagging_{subset}-validation.tsv
    ROOT/data/splits/split-{split}/autotagging_{subset}-test.tsv
    AUDIO_DIR/NN/<id>.mp3   (AUDIO_DIR defaults to ROOT/audio)"""

_JAMENDO_SUBSETS = {
    "moodtheme": ("autotagging_moodtheme", "mood/theme---"),
    "genre": ("autotagging_genre", "genre---"),
    "instrument": ("autotagging_instrument", "instrument---"),
    "top50tags": ("autotagging_top50tags", None),
    "all": ("autotagging", None),
}

_OPENMIC_DESCR = """\
OpenMIC-2018 (local copy)
-------------------------

20,000 ten-second Creative-Commons clips from the Free Music Archive with
crowd-sourced, partially observed labels for 20 instrument classes.

* ``target`` is the soft ``Y_true`` in [0, 1] (the mean annotator confidence),
  ``mask`` is ``Y_mask`` (True where the label is known).  The dataset's
  convention: **a tag counts as present where it is known and Y_true >= 0.5**,
  absent where known and ``Y_true < 0.5``, and unknown elsewhere; e.g.
  ``(bunch.target >= 0.5).astype(int)`` with ``bunch.mask`` for the metrics
  of :mod:`sklearn_rfcnn.metrics` (which apply the same rule).
* ``split`` is "train" or "test" from ``partitions/split01_*.csv``.

Humphrey, Durand and McFee, "OpenMIC-2018: an open dataset for multiple
instrument recognition", ISMIR 2018.

Root: {root}
"""

_JAMENDO_DESCR = """\
MTG-Jamendo, subset {subset!r}, split {split} (local copy)
---------------------------------------------------------

Full-length Creative-Commons tracks from Jamendo with editorial tags.
{n} tracks, {n_tags} tags; ``target`` is multi-hot; ``split`` is "train",
"validation" or "test" from data/splits/split-{split}/ (MediaEval's Emotion and
Theme task uses moodtheme, split 0).  Tag names drop their category prefix
("mood/theme---happy" -> "happy") for single-category subsets.

Bogdanov, Won, Tovstogan, Porter and Serra, "The MTG-Jamendo dataset for
automatic music tagging", ICML 2019 workshop.

Root: {root}
Audio: {audio_dir}
"""


def _check_root(root, name, layout):
    if root is None:
        raise ParameterError(f"root=None; pass the folder of your local {name} copy.")
    path = Path(os.fspath(root)).expanduser()
    if not path.is_dir():
        raise DataError(
            f"{name} folder {str(path)!r} does not exist (this loader never "
            f"downloads).\n{layout}"
        )
    return path


def _require_file(path, name, layout):
    if not path.is_file():
        raise DataError(f"{name}: {str(path)!r} is missing.\n{layout}")
    return path


def _check_on_missing(on_missing):
    if on_missing not in ("raise", "skip"):
        raise ParameterError(f"on_missing={on_missing!r} must be 'raise' or 'skip'.")


def _missing_audio(filenames, on_missing, name, layout):
    """Boolean keep-mask over ``filenames``; raises or warns about missing ones."""
    exists = np.array([os.path.isfile(f) for f in filenames], dtype=bool)
    missing = [str(f) for f, ok in zip(filenames, exists) if not ok]
    if not missing:
        return exists
    listed = ", ".join(repr(m) for m in missing[:3])
    listed += ", ..." if len(missing) > 3 else ""
    if on_missing == "raise":
        raise DataError(
            f"{name}: {len(missing)} of {len(filenames)} audio files are missing "
            f"(e.g. {listed}); complete the download or fix the paths, or pass "
            f"on_missing='skip' to leave those items out. {layout}".rstrip()
        )
    warnings.warn(
        f"{name}: skipped {len(missing)} of {len(filenames)} items whose audio "
        f"is missing (on_missing='skip'): {listed}",
        SkippedItemsWarning,
        stacklevel=3,
    )
    return exists


def _read_key_list(path):
    with open(path, newline="") as fh:
        keys = [row[0].strip() for row in csv.reader(fh) if row and row[0].strip()]
    if keys and keys[0].lower() in ("sample_key", "key"):
        keys = keys[1:]
    return keys


def load_openmic(root, *, on_missing="raise"):
    """Load a local copy of OpenMIC-2018 (instrument tagging, partial labels).

    Parameters
    ----------
    root : str or path-like
        The unpacked ``openmic-2018`` folder (it holds ``openmic-2018.npz``,
        ``class-map.json``, ``partitions/`` and ``audio/``).
    on_missing : {"raise", "skip"}, default="raise"
        What to do when clips listed in the npz have no audio file: raise a
        :class:`~sklearn_rfcnn.exceptions.DataError` listing them, or leave them
        out with a :class:`~sklearn_rfcnn.exceptions.SkippedItemsWarning`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        filenames : ndarray of str, shape (n_clips,)
            ``root/audio/<key[:3]>/<key>.ogg``.
        target : ndarray of float, shape (n_clips, 20)
            The soft labels ``Y_true`` in [0, 1].
        mask : ndarray of bool, shape (n_clips, 20)
            ``Y_mask``: True where the label is known.
        target_names : ndarray of str, shape (20,)
            Instrument classes in ``class-map.json`` order.
        sample_key : ndarray of str, shape (n_clips,)
            OpenMIC sample keys, in ``openmic-2018.npz`` order.
        split : ndarray of str, shape (n_clips,)
            ``"train"``, ``"test"`` (split01), or ``""`` for a clip in neither.
        DESCR : str
            Notes the convention: a tag is present where known and
            ``Y_true >= 0.5``.

    Raises
    ------
    DataError
        ``root`` or one of the files above is missing, or they disagree; the
        message shows the expected layout and where to get the data.

    Examples
    --------
    >>> import tempfile
    >>> try:
    ...     load_openmic(tempfile.gettempdir() + "/no-such-openmic")
    ... except ValueError as exc:
    ...     print(str(exc).split(" (this")[0])
    OpenMIC-2018 folder '...no-such-openmic' does not exist
    """
    _check_on_missing(on_missing)
    name, layout = "OpenMIC-2018", _OPENMIC_LAYOUT
    root = _check_root(root, name, layout)
    npz_path = _require_file(root / "openmic-2018.npz", name, layout)
    map_path = _require_file(root / "class-map.json", name, layout)
    parts = {
        split: _require_file(root / "partitions" / f"split01_{split}.csv", name, layout)
        for split in ("train", "test")
    }
    if not (root / "audio").is_dir():
        raise DataError(
            f"{name}: the audio folder {str(root / 'audio')!r} is missing.\n{layout}"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("Y_true", "Y_mask", "sample_key")}
    except KeyError as exc:
        raise DataError(
            f"{name}: {str(npz_path)!r} lacks the array {exc}; it must hold "
            f"Y_true, Y_mask and sample_key.\n{layout}"
        ) from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{name}: cannot read {str(npz_path)!r} ({exc}).") from exc
    try:
        class_map = json.loads(map_path.read_text())
        names = sorted(class_map, key=lambda k: int(class_map[k]))
    except (ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"{name}: {str(map_path)!r} must be a JSON object mapping class "
            f"names to column indices ({exc})."
        ) from exc
    y_true = np.asarray(arrays["Y_true"], dtype=np.float64)
    y_mask = np.asarray(arrays["Y_mask"]).astype(bool)
    keys = np.asarray(arrays["sample_key"]).astype(str)
    if y_true.ndim != 2 or y_true.shape != y_mask.shape or len(keys) != len(y_true):
        raise DataError(
            f"{name}: Y_true {y_true.shape}, Y_mask {y_mask.shape} and sample_key "
            f"({len(keys)},) in {str(npz_path)!r} do not agree."
        )
    if y_true.shape[1] != len(names):
        raise DataError(
            f"{name}: class-map.json names {len(names)} classes but Y_true has "
            f"{y_true.shape[1]} columns."
        )
    split = np.full(len(keys), "", dtype=object)
    position = {k: i for i, k in enumerate(keys)}
    for part, path in parts.items():
        listed = _read_key_list(path)
        unknown = [k for k in listed if k not in position]
        if unknown:
            raise DataError(
                f"{name}: {str(path)!r} lists {len(unknown)} keys that are not in "
                f"openmic-2018.npz, e.g. {unknown[:3]}; are the partitions from "
                "the same release?"
            )
        for k in listed:
            split[position[k]] = part
    filenames = np.array(
        [str(root / "audio" / k[:3] / f"{k}.ogg") for k in keys], dtype=object
    )
    keep = _missing_audio(filenames, on_missing, name, "\n" + layout)
    return Bunch(
        filenames=filenames[keep],
        target=y_true[keep],
        mask=y_mask[keep],
        target_names=np.array(names, dtype=object),
        sample_key=keys[keep].astype(object),
        split=split[keep],
        DESCR=_OPENMIC_DESCR.format(root=root),
    )


def _read_jamendo_tsv(path, name):
    """``[(track_id, rel_path, duration, [tags])]`` of an MTG-Jamendo TSV."""
    rows = []
    with open(path, newline="") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if header[:5] != ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION"]:
            raise DataError(
                f"{name}: {str(path)!r} does not start with the header "
                "TRACK_ID<TAB>ARTIST_ID<TAB>ALBUM_ID<TAB>PATH<TAB>DURATION<TAB>TAGS; "
                "is it an MTG-Jamendo autotagging TSV?"
            )
        for lineno, line in enumerate(fh, start=2):
            fields = line.rstrip("\n").split("\t")
            if fields == [""]:
                continue
            if len(fields) < 6:
                raise DataError(
                    f"{name}: {str(path)!r} line {lineno} has {len(fields)} "
                    "tab-separated fields; expected at least 6 (a track needs a tag)."
                )
            try:
                duration = float(fields[4])
            except ValueError as exc:
                raise DataError(
                    f"{name}: {str(path)!r} line {lineno}: DURATION {fields[4]!r} "
                    "is not a number."
                ) from exc
            tags = [t.strip() for t in fields[5:] if t.strip()]
            rows.append((fields[0], fields[3], duration, tags))
    return rows


def load_mtg_jamendo(
    root, subset="moodtheme", split=0, audio_dir=None, *, on_missing="raise"
):
    """Load a local copy of MTG-Jamendo (auto-tagging of full tracks).

    Parameters
    ----------
    root : str or path-like
        A clone of the mtg-jamendo-dataset repository (its ``data/`` folder).
    subset : {"moodtheme", "genre", "instrument", "top50tags", "all"}, \
default="moodtheme"
        Which ``data/autotagging*.tsv`` to read.
    split : int in [0, 4], default=0
        The official split ``data/splits/split-<split>/``.
    audio_dir : str or path-like, default=None
        Folder with the ``NN/<id>.mp3`` files; ``None`` means ``root/audio``.
    on_missing : {"raise", "skip"}, default="raise"
        Raise on tracks without audio, or leave them out with a warning.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        filenames : ndarray of str, shape (n_tracks,)
            ``audio_dir/NN/<id>.mp3`` for each track.
        target : ndarray of int, shape (n_tracks, n_tags)
            Multi-hot tags.
        target_names : ndarray of str, shape (n_tags,)
            Sorted; without the category prefix for single-category subsets.
        track_id : ndarray of str, shape (n_tracks,)
            MTG-Jamendo track identifiers (``track_0000214``).
        duration : ndarray of float, shape (n_tracks,)
            Track lengths in seconds, as listed in the TSV.
        split : ndarray of str, shape (n_tracks,)
            ``"train"``, ``"validation"``, ``"test"``, or ``""`` if in none.
        DESCR : str
            Description of the dataset and of the split.

    Raises
    ------
    DataError
        A file of the layout is missing or malformed; the message shows the
        expected layout and where to get the data.

    Examples
    --------
    >>> import tempfile
    >>> try:
    ...     load_mtg_jamendo(tempfile.gettempdir() + "/no-such-jamendo")
    ... except ValueError as exc:
    ...     print(str(exc).split(" (this")[0])
    MTG-Jamendo folder '...no-such-jamendo' does not exist
    """
    _check_on_missing(on_missing)
    if subset not in _JAMENDO_SUBSETS:
        raise ParameterError(
            f"subset={subset!r} must be one of {list(_JAMENDO_SUBSETS)}."
        )
    if isinstance(split, bool) or not isinstance(split, int | np.integer):
        raise ParameterError(f"split={split!r} must be an int (0 to 4).")
    stem, prefix = _JAMENDO_SUBSETS[subset]
    name = "MTG-Jamendo"
    layout = _JAMENDO_LAYOUT.format(subset=subset, split=split).replace(
        "autotagging_all", "autotagging"
    )
    root = _check_root(root, name, layout)
    audio_dir = root / "audio" if audio_dir is None else Path(os.fspath(audio_dir))
    if not audio_dir.is_dir():
        raise DataError(
            f"{name}: the audio folder {str(audio_dir)!r} does not exist; pass "
            f"audio_dir= if the MP3s live elsewhere.\n{layout}"
        )
    main_tsv = _require_file(root / "data" / f"{stem}.tsv", name, layout)
    rows = _read_jamendo_tsv(main_tsv, name)
    if not rows:
        raise DataError(f"{name}: {str(main_tsv)!r} lists no tracks.")
    split_dir = root / "data" / "splits" / f"split-{split}"
    if not split_dir.is_dir():
        raise DataError(
            f"{name}: split={split} has no folder {str(split_dir)!r}.\n{layout}"
        )
    position = {track: i for i, (track, *_rest) in enumerate(rows)}
    split_of = np.full(len(rows), "", dtype=object)
    for part in ("train", "validation", "test"):
        path = _require_file(split_dir / f"{stem}-{part}.tsv", name, layout)
        for track, *_rest in _read_jamendo_tsv(path, name):
            if track not in position:
                raise DataError(
                    f"{name}: {str(path)!r} lists track {track!r}, which is not "
                    f"in {str(main_tsv)!r}; are both from the same release?"
                )
            split_of[position[track]] = part

    def clean(tag):
        if prefix is not None and tag.startswith(prefix):
            return tag[len(prefix) :]
        return tag

    tag_lists = [[clean(t) for t in tags] for *_x, tags in rows]
    names = sorted({t for tags in tag_lists for t in tags})
    column = {t: j for j, t in enumerate(names)}
    target = np.zeros((len(rows), len(names)), dtype=np.int64)
    for i, tags in enumerate(tag_lists):
        target[i, [column[t] for t in tags]] = 1
    filenames = np.array([str(audio_dir / rel) for _t, rel, *_r in rows], dtype=object)
    keep = _missing_audio(filenames, on_missing, name, "\n" + layout)
    return Bunch(
        filenames=filenames[keep],
        target=target[keep],
        target_names=np.array(names, dtype=object),
        track_id=np.array([r[0] for r in rows], dtype=object)[keep],
        duration=np.array([r[2] for r in rows], dtype=np.float64)[keep],
        split=split_of[keep],
        DESCR=_JAMENDO_DESCR.format(
            subset=subset,
            split=split,
            n=int(keep.sum()),
            n_tags=len(names),
            root=root,
            audio_dir=audio_dir,
        ),
    )


def _is_audio(path):
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def load_audio_folder(root):
    """Load a folder of audio files arranged one sub-folder per class.

    The GTZAN layout: ``root/<class>/<file>`` (files may sit in deeper
    sub-folders of their class folder).  Files with extensions
    :data:`AUDIO_EXTENSIONS` (wav, flac, ogg, mp3; any case) count as audio;
    other files and hidden files are ignored.

    Parameters
    ----------
    root : str or path-like
        The folder holding one sub-folder per class.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        filenames : ndarray of str, shape (n_files,)
            Sorted by class, then path.
        target : ndarray of str, shape (n_files,)
            The class (folder name) of each file.
        target_names : ndarray of str, shape (n_classes,)
            Sorted class names.
        DESCR : str
            Description of the collection.

    Raises
    ------
    DataError
        ``root`` does not exist, holds no class folder, holds audio files
        directly (not in a class folder), or a class folder holds no audio.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, soundfile as sf
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for genre in ["jazz", "rock"]:
    ...         os.mkdir(os.path.join(tmp, genre))
    ...         sf.write(os.path.join(tmp, genre, "a.wav"), np.zeros(80), 8000)
    ...     data = load_audio_folder(tmp)
    >>> data.target.tolist(), data.target_names.tolist()
    (['jazz', 'rock'], ['jazz', 'rock'])
    """
    layout = (
        "Expected one sub-folder per class holding that class's audio files "
        f"({', '.join(e[1:] for e in AUDIO_EXTENSIONS)}), e.g. GTZAN's "
        "genres/blues/blues.00000.wav."
    )
    if root is None:
        raise ParameterError("root=None; pass the folder of class sub-folders.")
    root = Path(os.fspath(root)).expanduser()
    if not root.is_dir():
        raise DataError(f"audio folder {str(root)!r} does not exist. {layout}")
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and _is_audio(p))
    if loose:
        raise DataError(
            f"{str(root)!r} holds audio files directly (e.g. {loose[0]!r}); put "
            f"them in class sub-folders. {layout}"
        )
    classes = sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if not classes:
        raise DataError(f"{str(root)!r} holds no class sub-folders. {layout}")
    filenames, target, empty = [], [], []
    for cls in classes:
        files = sorted(
            str(p) for p in (root / cls).rglob("*") if p.is_file() and _is_audio(p)
        )
        if not files:
            empty.append(cls)
        filenames += files
        target += [cls] * len(files)
    if empty:
        raise DataError(
            f"class folder(s) {empty} under {str(root)!r} hold no audio files; "
            f"remove them or add audio. {layout}"
        )
    return Bunch(
        filenames=np.array(filenames, dtype=object),
        target=np.array(target, dtype=object),
        target_names=np.array(classes, dtype=object),
        DESCR=(
            f"Audio folder {root}: {len(filenames)} files in {len(classes)} "
            f"classes ({', '.join(classes)}), one sub-folder per class."
        ),
    )


_PATH_COLUMNS = ("path", "filename", "file")


def load_manifest(path, *, tags=None, separator=";", on_missing="raise"):
    """Read a CSV manifest of audio paths and their labels or tags.

    Three layouts are understood (a header row is required; the path column is
    named ``path``, ``filename`` or ``file``; relative paths are relative to
    the manifest's folder):

    * ``path,tags`` -- multi-label: each row's tags joined by ``separator``
      (an empty cell means no tag);
    * ``path,label`` -- single-label (multi-class);
    * ``path,<tag1>,<tag2>,...`` -- multi-label as 0/1 columns.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    tags : sequence of str, default=None
        The allowed tag (or class) set, in column order.  A row naming a tag
        outside it raises.  ``None`` takes the sorted tags found in the file
        (or the 0/1 column names).
    separator : str, default=";"
        Separator of the tags inside a ``tags`` cell.
    on_missing : {"raise", "skip"}, default="raise"
        Raise on rows whose audio file does not exist, or leave them out with
        a :class:`~sklearn_rfcnn.exceptions.SkippedItemsWarning`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        filenames : ndarray of str
            Paths of the listed audio files.
        target : ndarray
            ``(n, n_tags)`` 0/1 ints for multi-label manifests, ``(n,)`` str
            labels for single-label ones.
        target_names : ndarray of str
            Tag or class names.
        multilabel : bool
            True for a tag matrix, False for single labels.
        skipped : list of str
            Paths left out (``on_missing="skip"``).

    Raises
    ------
    DataError
        The file is missing or empty, lacks a path column, has a label outside
        ``tags``, a non-0/1 indicator, or (by default) a missing audio file;
        the message names the row.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ["a.wav", "b.wav"]:
    ...         open(os.path.join(tmp, name), "wb").close()
    ...     with open(os.path.join(tmp, "train.csv"), "w") as fh:
    ...         _ = fh.write("path,tags\\na.wav,piano;drums\\nb.wav,piano\\n")
    ...     data = load_manifest(os.path.join(tmp, "train.csv"))
    >>> data.target.tolist(), data.target_names.tolist()
    ([[1, 1], [0, 1]], ['drums', 'piano'])
    """
    _check_on_missing(on_missing)
    path = Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise DataError(f"manifest {str(path)!r} does not exist.")
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"manifest {str(path)!r} is empty; it needs a header row.")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    lower = [h.lower() for h in header]
    path_col = next((lower.index(c) for c in _PATH_COLUMNS if c in lower), None)
    if path_col is None:
        raise DataError(
            f"manifest {str(path)!r} has no path column (header {header}); name "
            "it 'path', 'filename' or 'file'."
        )
    if not body:
        raise DataError(f"manifest {str(path)!r} lists no audio files.")
    others = [j for j in range(len(header)) if j != path_col]
    if not others:
        raise DataError(
            f"manifest {str(path)!r} has no label column; add 'tags', 'label' or "
            "one 0/1 column per tag."
        )
    base = path.parent
    filenames = []
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(
                f"manifest {str(path)!r} line {i} has {len(row)} fields; the "
                f"header has {len(header)}."
            )
        p = Path(row[path_col].strip()).expanduser()
        filenames.append(str(p if p.is_absolute() else base / p))
    allowed = None if tags is None else [str(t) for t in tags]

    def check_known(label, line):
        if allowed is not None and label not in allowed:
            import difflib

            close = difflib.get_close_matches(label, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(
                f"manifest {str(path)!r} line {line}: {label!r} is not in the tag "
                f"set {allowed}{hint}."
            )

    if len(others) == 1 and lower[others[0]] in ("tags", "label", "labels", "class"):
        j = others[0]
        multilabel = lower[j] in ("tags", "labels")
        if multilabel:
            lists = [
                [t.strip() for t in row[j].split(separator) if t.strip()]
                for row in body
            ]
            for line, labels in enumerate(lists, start=2):
                for label in labels:
                    check_known(label, line)
            names = allowed or sorted({t for labels in lists for t in labels})
            if not names:
                raise DataError(f"manifest {str(path)!r} has no tags at all.")
            column = {t: k for k, t in enumerate(names)}
            target = np.zeros((len(body), len(names)), dtype=np.int64)
            for r, labels in enumerate(lists):
                target[r, [column[t] for t in labels]] = 1
        else:
            labels = [row[j].strip() for row in body]
            for line, label in enumerate(labels, start=2):
                if not label:
                    raise DataError(
                        f"manifest {str(path)!r} line {line} has an empty label."
                    )
                check_known(label, line)
            names = allowed or sorted(set(labels))
            target = np.array(labels, dtype=object)
    else:
        names = [header[j] for j in others]
        if allowed is not None:
            extra = [n for n in names if n not in allowed]
            if extra:
                raise DataError(
                    f"manifest {str(path)!r} has tag columns {extra} that are not "
                    f"in the tag set {allowed}."
                )
        multilabel = True
        target = np.zeros((len(body), len(names)), dtype=np.int64)
        for r, row in enumerate(body):
            for k, j in enumerate(others):
                cell = row[j].strip()
                if cell not in ("0", "1"):
                    raise DataError(
                        f"manifest {str(path)!r} line {r + 2}, column "
                        f"{header[j]!r}: {cell!r} is not 0 or 1."
                    )
                target[r, k] = int(cell)
        if allowed is not None:  # reorder/extend to the given tag set
            full = np.zeros((len(body), len(allowed)), dtype=np.int64)
            for k, n in enumerate(names):
                full[:, allowed.index(n)] = target[:, k]
            target, names = full, allowed
    filenames = np.array(filenames, dtype=object)
    keep = _missing_audio(
        filenames,
        on_missing,
        f"manifest {str(path)!r}",
        "(Relative paths are relative to the manifest's folder.)",
    )
    return Bunch(
        filenames=filenames[keep],
        target=target[keep],
        target_names=np.array(names, dtype=object),
        multilabel=multilabel,
        skipped=[str(f) for f in filenames[~keep]],
    )
