"""Loader of a local copy of MTG-Jamendo (auto-tagging of full tracks)."""

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from sklearn_rfcnn.datasets._common import (
    _check_on_missing,
    _check_root,
    _missing_audio,
    _read_text,
    _repeats,
    _require_file,
    _shorten,
)
from sklearn_rfcnn.exceptions import DataError, ParameterError

__all__ = ["load_mtg_jamendo"]

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


def _read_jamendo_tsv(path, name, layout):
    """``[(track_id, rel_path, duration, [tags], line)]`` of an MTG-Jamendo TSV."""
    rows = []
    text = _read_text(path, name, layout, "an MTG-Jamendo autotagging TSV")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header = lines[0].split("\t") if lines else [""]
    if header[:5] != ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION"]:
        raise DataError(
            f"{name}: {str(path)!r} does not start with the header "
            "TRACK_ID<TAB>ARTIST_ID<TAB>ALBUM_ID<TAB>PATH<TAB>DURATION<TAB>TAGS; "
            "is it an MTG-Jamendo autotagging TSV?"
        )
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
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
        rows.append((fields[0], fields[3], duration, tags, lineno))
    return rows


def _split_parts(rows, split_dir, stem, main_tsv, split, name, layout):
    """The part (train, validation, test) of every track of ``split``."""
    position = {track: i for i, (track, *_rest) in enumerate(rows)}
    split_of = np.full(len(rows), "", dtype=object)
    split_file = {}
    for part in ("train", "validation", "test"):
        path = _require_file(split_dir / f"{stem}-{part}.tsv", name, layout)
        split_file[part] = path
        conflicts = {}
        for track, *_rest in _read_jamendo_tsv(path, name, layout):
            if track not in position:
                raise DataError(
                    f"{name}: {str(path)!r} lists track {track!r}, which is not "
                    f"in {str(main_tsv)!r}; are both from the same release?"
                )
            earlier = split_of[position[track]]
            if earlier and earlier != part:
                conflicts[track] = earlier
            split_of[position[track]] = part
        if conflicts:
            listed = _shorten(
                "; ".join(
                    f"{t!r} ({was} in {str(split_file[was])!r} and {part} in "
                    f"{str(path)!r})"
                    for t, was in conflicts.items()
                )
            )
            raise DataError(
                f"{name}: {len(conflicts)} track(s) of split-{split} are in more "
                f"than one part: {listed}; the official parts are "
                "disjoint. Are the split files from one release?"
            )

    return split_of


def _tag_matrix(rows, prefix):
    """The 0/1 tag matrix of the tracks and the tag names (``prefix`` removed)."""

    def clean(tag):
        if prefix is not None and tag.startswith(prefix):
            return tag[len(prefix) :]
        return tag

    tag_lists = [[clean(t) for t in r[3]] for r in rows]
    names = sorted({t for tags in tag_lists for t in tags})
    column = {t: j for j, t in enumerate(names)}
    target = np.zeros((len(rows), len(names)), dtype=np.int64)
    for i, tags in enumerate(tag_lists):
        target[i, [column[t] for t in tags]] = 1
    return target, names


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
        A file of the layout is missing, malformed or not UTF-8 text; the
        message names the file and shows the expected layout.  A TRACK_ID
        listed twice in the main TSV, or a track in more than one of
        train/validation/test, is an error naming the tracks (the official
        files have unique ids and disjoint parts).

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
    rows = _read_jamendo_tsv(main_tsv, name, layout)
    if not rows:
        raise DataError(f"{name}: {str(main_tsv)!r} lists no tracks.")
    repeated = _repeats([r[0] for r in rows])
    if repeated:
        listed = "; ".join(
            f"{t!r} (lines {[rows[i][4] for i in where]})"
            for t, where in repeated.items()
        )
        raise DataError(
            f"{name}: {str(main_tsv)!r} lists {len(repeated)} track(s) more than "
            f"once: {_shorten(listed)}; each TRACK_ID must appear once. Is the "
            "file from one release, or were two files joined?"
        )
    split_dir = root / "data" / "splits" / f"split-{split}"
    if not split_dir.is_dir():
        raise DataError(
            f"{name}: split={split} has no folder {str(split_dir)!r}.\n{layout}"
        )
    split_of = _split_parts(rows, split_dir, stem, main_tsv, split, name, layout)
    target, names = _tag_matrix(rows, prefix)
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
