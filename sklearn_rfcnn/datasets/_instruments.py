"""The embedded default dataset: mixtures of real sampled instruments.

Every clip is a short piece of random music (a key, a tempo, a chord
progression) played by one to ``max_polyphony`` instruments of a General-MIDI
SoundFont.  Each instrument's part is written as MIDI with pretty_midi,
rendered on its own (a *stem*) by the ``midirenderer`` wheel, checked to be
audible, balanced, and mixed; the clip's tags are exactly the instruments whose
stems were mixed in.  Only pip-installable packages are needed: pretty_midi
ships the TimGM6mb General-MIDI SoundFont that is used by default.
"""

import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf
from sklearn.utils import Bunch, check_random_state

from sklearn_rfcnn.datasets._base import atomic_write_bytes, get_data_home
from sklearn_rfcnn.exceptions import DataError, ParameterError

__all__ = ["INSTRUMENT_TAGS", "make_instrument_mixtures"]

# Bump when the generator changes what it renders: old cache folders are then
# simply not used any more.
_GENERATOR_VERSION = 1

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)

# name -> (GM programs (0-based) to draw from, (lowest, highest) MIDI pitch,
# roles the instrument may play).  Modelled on OpenMIC-2018's instrument classes
# where General MIDI has them (no mandolin, ukulele or separate cymbals in GM).
_INSTRUMENTS = {
    "accordion": ((21,), (53, 89), ("chords", "melody")),
    "acoustic_guitar": ((24, 25), (40, 79), ("chords", "arpeggio", "melody")),
    "banjo": ((105,), (48, 81), ("arpeggio", "chords")),
    "bass": ((32, 33, 34, 35), (28, 55), ("bass",)),
    "cello": ((42,), (36, 72), ("melody", "pad")),
    "clarinet": ((71,), (50, 89), ("melody",)),
    "drums": ((0,), (35, 81), ("drums",)),
    "electric_guitar": ((26, 27, 29, 30), (40, 84), ("chords", "arpeggio", "melody")),
    "flute": ((73,), (60, 96), ("melody",)),
    "mallet_percussion": ((9, 11, 12, 13), (60, 96), ("arpeggio", "melody")),
    "organ": ((16, 17, 19), (36, 96), ("pad", "chords", "melody")),
    "piano": ((0, 1), (33, 96), ("chords", "arpeggio", "melody")),
    "saxophone": ((64, 65, 66, 67), (44, 81), ("melody",)),
    "synthesizer": ((80, 81, 87, 88, 90), (36, 96), ("pad", "arpeggio", "melody")),
    "trombone": ((57,), (40, 72), ("melody",)),
    "trumpet": ((56,), (55, 82), ("melody",)),
    "violin": ((40,), (55, 100), ("melody", "pad")),
    "voice": ((52, 53, 54), (48, 79), ("pad", "melody")),
}

#: The instrument tags :func:`make_instrument_mixtures` can render, in order.
INSTRUMENT_TAGS = tuple(_INSTRUMENTS)

# GM percussion keys (channel 10) used by the drum part.
_KICK, _SNARES, _HATS = 36, (38, 40), (42, 44)
_OPEN_HAT, _CRASH, _RIDE, _TOMS = 46, 49, 51, (41, 45, 47, 48, 50)

# Each cached WAV carries its tags and a SHA-256 over everything a reload
# returns from it: the samples, the tags, the clip's index and the cache key
# (generator version, duration, sr, instruments in order, max_polyphony,
# SoundFont digest, seed).  Editing the tags, or copying a clip in from another
# cache folder, fails the check and the clip is rendered again.
_COMMENT_RE = re.compile(
    r"^sklearn_rfcnn make_instrument_mixtures v(\d+) "
    r"tags=([a-z_,]*) sha256=([0-9a-f]{64})$"
)
_PEAK = 0.9
_MIN_STEM_RMS = 1e-4  # about -80 dBFS: below this a stem counts as silent
_MAX_ATTEMPTS = 8

_DESCR = """\
Instrument mixtures (sklearn-rfcnn's embedded tagging dataset)
--------------------------------------------------------------

Each clip is {duration:g} s of mono audio at {sr} Hz mixing 1 to {max_polyphony}
sampled instruments from the General-MIDI SoundFont {soundfont_name}.  The
instruments play random music: a random key (major or minor), tempo (70-160
BPM) and chord progression, with each instrument taking a role it is suited to
(melody, block chords, arpeggio, sustained pad, bass line or drum kit) in a
random register inside its real pitch range and with random velocities.

Tags ({n_tags}): {tags}.
They are modelled on OpenMIC-2018's instrument classes where General MIDI has
them; each tag groups several GM programs (e.g. electric_guitar = jazz, clean,
overdriven and distorted guitar; voice = choir aahs, voice oohs, synth choir).

Every instrument is rendered on its own, must be audible (RMS above -80 dBFS),
is normalised to equal RMS and mixed at a random gain between -6 and 0 dB, so
a tag is present exactly when that instrument sounds in the clip.  The mix is
peak-normalised to 0.9 and stored as 16-bit WAV.

Clip ``i`` depends only on the seed drawn from ``random_state`` and on ``i``:
the same ``random_state`` gives identical audio and tags, and a larger
``n_clips`` reuses the cached clips of a smaller one.

Cache folder: {folder}
"""


# --------------------------------------------------------------------------
# parameter handling
# --------------------------------------------------------------------------


def _default_soundfont():
    import pretty_midi

    return os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")


def _import_renderers():
    try:
        import midirenderer
        import pretty_midi
    except ImportError as exc:
        raise ImportError(
            f"make_instrument_mixtures needs pretty_midi and midirenderer ({exc}); "
            "install them with: pip install 'sklearn-rfcnn[data]'"
        ) from exc
    return pretty_midi, midirenderer


def _closest_tag(name):
    """The tag most similar to ``name`` (also by its ``_`` parts), or None."""
    import difflib

    def score(tag):
        parts = [tag, *tag.split("_")]
        return max(difflib.SequenceMatcher(None, name, p).ratio() for p in parts)

    best = max(INSTRUMENT_TAGS, key=score)
    return best if score(best) >= 0.6 else None


def _check_params(n_clips, duration, sr, instruments, max_polyphony):
    if isinstance(n_clips, bool) or not isinstance(n_clips, int | np.integer):
        raise ParameterError(f"n_clips={n_clips!r} must be an int >= 1.")
    if n_clips < 1:
        raise ParameterError(f"n_clips={n_clips!r} must be an int >= 1.")
    if not isinstance(duration, int | float | np.number) or not (
        0.1 <= float(duration) <= 60.0
    ):
        raise ParameterError(
            f"duration={duration!r} must be a number of seconds in [0.1, 60]."
        )
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr < 1000:
        raise ParameterError(f"sr={sr!r} must be an int sampling rate >= 1000 Hz.")
    if instruments is None:
        instruments = list(INSTRUMENT_TAGS)
    elif isinstance(instruments, str):
        raise ParameterError(
            f"instruments={instruments!r} must be a list of tag names, e.g. "
            f"[{instruments!r}], not a single string."
        )
    else:
        instruments = [str(name) for name in instruments]
        unknown = [name for name in instruments if name not in _INSTRUMENTS]
        if unknown:
            hints = []
            for name in unknown:
                close = _closest_tag(name)
                hints.append(
                    f"{name!r} (did you mean {close!r}?)" if close else repr(name)
                )
            raise ParameterError(
                f"instruments contains unknown tags {', '.join(hints)}; "
                f"choose from {list(INSTRUMENT_TAGS)}."
            )
        if len(set(instruments)) != len(instruments):
            raise ParameterError(f"instruments={instruments!r} contains duplicates.")
        if not instruments:
            raise ParameterError("instruments=[] must name at least one tag.")
    if (
        isinstance(max_polyphony, bool)
        or not isinstance(max_polyphony, int | np.integer)
        or not 1 <= max_polyphony <= len(instruments)
    ):
        raise ParameterError(
            f"max_polyphony={max_polyphony!r} must be an int in "
            f"[1, {len(instruments)}] (the number of instruments)."
        )
    return int(n_clips), float(duration), int(sr), instruments, int(max_polyphony)


def _load_soundfont(soundfont):
    path = _default_soundfont() if soundfont is None else os.fspath(soundfont)
    if not os.path.isfile(path):
        raise ParameterError(
            f"soundfont={path!r} does not exist; pass the path of a General-MIDI "
            ".sf2 file, or soundfont=None for pretty_midi's bundled TimGM6mb.sf2."
        )
    with open(path, "rb") as fh:
        data = fh.read()
    return path, data


def _check_soundfont(path, data):
    """Render an empty MIDI file once so that a bad SoundFont fails clearly."""
    pretty_midi, midirenderer = _import_renderers()
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(pretty_midi.Instrument(program=0))
    buf = io.BytesIO()
    pm.write(buf)
    try:
        midirenderer.render_wave_from(data, buf.getvalue())
    except (RuntimeError, ValueError) as exc:
        raise ParameterError(
            f"soundfont={path!r} could not be read as a SoundFont (.sf2): {exc}; "
            "pass a valid General-MIDI .sf2 file or soundfont=None."
        ) from exc


def _seed_from(random_state):
    if isinstance(random_state, int | np.integer) and not isinstance(
        random_state, bool
    ):
        if random_state < 0:
            raise ParameterError(
                f"random_state={random_state!r} must be a non-negative int, a "
                "numpy RandomState or None."
            )
        return int(random_state)
    rng = check_random_state(random_state)
    return int(rng.randint(np.iinfo(np.int32).max))


# --------------------------------------------------------------------------
# composing: one clip's score
# --------------------------------------------------------------------------


def _key_pitches(root, scale, lo, hi):
    """All MIDI pitches in [lo, hi] that belong to the key."""
    pcs = {(root + step) % 12 for step in scale}
    return np.array([p for p in range(lo, hi + 1) if p % 12 in pcs])


def _chord_pcs(root, scale, degree, seventh):
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    return [(root + scale[(degree + s) % 7]) % 12 for s in steps]


def _velocity(rng, base, accent=False):
    v = base + rng.normal(0.0, 8.0) + (10.0 if accent else 0.0)
    return int(np.clip(round(v), 20, 127))


def _window(rng, lo, hi, span):
    """A random pitch window of ``span`` semitones inside [lo, hi]."""
    span = min(span, hi - lo)
    start = int(rng.integers(lo, hi - span + 1))
    return start, start + span


def _drum_notes(rng, beat, base_vel, duration):
    """A drum kit's notes: kick, snare, hats, the odd crash and tom fill."""
    notes = []
    step = beat / 2 if rng.random() < 0.5 else beat / 4
    per_beat = round(beat / step)
    hat = _RIDE if rng.random() < 0.25 else _HATS[int(rng.integers(2))]
    snare = _SNARES[int(rng.integers(2))]
    n_steps = int(np.ceil(duration / step))
    if rng.random() < 0.5:
        notes.append((_CRASH, _velocity(rng, base_vel, True), 0.0, 0.3))
    for k in range(n_steps):
        t = k * step
        in_beat, beat_idx = k % per_beat, (k // per_beat) % 4
        if (in_beat == 0 and beat_idx in (0, 2)) or rng.random() < 0.08:
            notes.append((_KICK, _velocity(rng, base_vel, in_beat == 0), t, t + 0.1))
        if in_beat == 0 and beat_idx in (1, 3):
            notes.append((snare, _velocity(rng, base_vel, True), t, t + 0.1))
        if rng.random() < 0.85:
            key = _OPEN_HAT if rng.random() < 0.07 else hat
            notes.append((key, _velocity(rng, base_vel - 15), t, t + 0.08))
        if t > duration - beat and rng.random() < 0.3:
            tom = _TOMS[int(rng.integers(len(_TOMS)))]
            notes.append((tom, _velocity(rng, base_vel), t, t + 0.1))
    return notes


def _chord_at(song, t):
    chords = song["chords"]
    return chords[min(int(t // song["chord_len"]), len(chords) - 1)]


def _melody_notes(rng, lo, hi, song, base_vel, duration):
    """A stepwise melody in the song's key, with rests."""
    root, scale, beat = song["root"], song["scale"], song["beat"]
    notes = []
    wlo, whi = _window(rng, lo, hi, 19)
    pitches = _key_pitches(root, scale, wlo, whi)
    idx = int(rng.integers(len(pitches)))
    step = beat / 2
    t = 0.0
    while t < duration - 0.05:
        length = step * int(rng.choice([1, 2, 2, 3, 4]))
        if notes and rng.random() < 0.12:  # a rest
            t += length
            continue
        notes.append(
            (int(pitches[idx]), _velocity(rng, base_vel), t, t + length * 0.95)
        )
        idx = int(
            np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(pitches) - 1)
        )
        t += length
    return notes


def _harmony_notes(rng, role, lo, hi, song, base_vel, duration):
    """Chords, a pad or an arpeggio over the song's chord sequence."""
    root, scale, beat = song["root"], song["scale"], song["beat"]
    chord_len = song["chord_len"]
    notes = []
    wlo, whi = _window(rng, lo, hi, 14 if role != "arpeggio" else 19)
    seventh = bool(rng.random() < 0.3)
    if role == "arpeggio":
        step = beat / 2 if rng.random() < 0.6 else beat / 4
    elif role == "chords":
        step = beat * float(rng.choice([0.5, 1.0, 2.0]))
    else:
        step = chord_len
    t = 0.0
    k = 0
    while t < duration - 0.05:
        pcs = _chord_pcs(root, scale, _chord_at(song, t), seventh)
        tones = [p for p in range(wlo, whi + 1) if p % 12 in pcs]
        if not tones:  # window narrower than the chord: widen downwards
            tones = [p for p in range(lo, hi + 1) if p % 12 in pcs][:4]
        if role == "arpeggio":
            pitch = tones[k % len(tones)]
            notes.append(
                (pitch, _velocity(rng, base_vel, k % 4 == 0), t, t + step * 0.9)
            )
        else:
            voicing = tones[: 3 + seventh] if role == "chords" else tones[:4]
            vel = _velocity(rng, base_vel, role == "chords" and k % 2 == 0)
            for pitch in voicing:
                notes.append((pitch, vel, t, t + step * 0.95))
        t += step
        k += 1
    return notes


def _bass_notes(rng, lo, hi, song, base_vel, duration):
    """A bass line on the chords' roots (and fifths)."""
    root, scale, beat = song["root"], song["scale"], song["beat"]
    notes = []
    wlo, whi = _window(rng, lo, hi, 14)
    step = beat * float(rng.choice([0.5, 1.0, 2.0]))
    t = 0.0
    k = 0
    while t < duration - 0.05:
        pcs = _chord_pcs(root, scale, _chord_at(song, t), False)
        tone_pc = pcs[0] if k % 4 != 3 or rng.random() < 0.5 else pcs[2]
        candidates = [p for p in range(wlo, whi + 1) if p % 12 == tone_pc]
        pitch = candidates[0] if candidates else lo + (tone_pc - lo) % 12
        notes.append((pitch, _velocity(rng, base_vel, k % 2 == 0), t, t + step * 0.9))
        t += step
        k += 1
    return notes


def _compose_part(rng, role, pitch_range, song, duration):
    """Notes ``(pitch, velocity, start, end)`` of one part."""
    lo, hi = pitch_range
    base_vel = float(rng.uniform(55, 115))
    if role == "drums":
        return _drum_notes(rng, song["beat"], base_vel, duration)
    if role == "melody":
        notes = _melody_notes(rng, lo, hi, song, base_vel, duration)
    elif role in ("chords", "pad", "arpeggio"):
        notes = _harmony_notes(rng, role, lo, hi, song, base_vel, duration)
    elif role == "bass":
        notes = _bass_notes(rng, lo, hi, song, base_vel, duration)
    else:  # pragma: no cover - the table only names the roles above
        raise AssertionError(role)
    return [(p, v, s, min(e, duration)) for p, v, s, e in notes if s < duration]


def _compose_song(rng, duration):
    tempo = float(rng.uniform(70, 160))
    beat = 60.0 / tempo
    chord_len = beat * float(rng.choice([2, 4]))
    n_chords = int(np.ceil(duration / chord_len)) + 1
    degrees = [0] + [int(d) for d in rng.choice([0, 1, 3, 4, 5], n_chords - 1)]
    return {
        "tempo": tempo,
        "beat": beat,
        "root": int(rng.integers(12)),
        "scale": _MAJOR if rng.random() < 0.5 else _MINOR,
        "chords": degrees,
        "chord_len": chord_len,
    }


# --------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------


def _render_stem(
    pretty_midi, midirenderer, sf_bytes, program, is_drum, notes, tempo, duration, sr
):
    """Render one part alone to a float64 mono waveform of ``duration * sr``."""
    import soxr

    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
    for pitch, velocity, start, end in notes:
        inst.notes.append(pretty_midi.Note(velocity, pitch, start, end))
    # A controller event after the clip's end keeps the renderer going so that
    # release tails are not cut at the last note-off.
    inst.control_changes.append(pretty_midi.ControlChange(7, 100, duration + 0.25))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    wav = midirenderer.render_wave_from(sf_bytes, buf.getvalue())
    y, native_sr = sf.read(io.BytesIO(wav), dtype="float64", always_2d=True)
    y = y[:, 0] if y.shape[1] == 1 else 0.5 * (y[:, 0] + y[:, 1])
    if native_sr != sr:
        y = soxr.resample(y, native_sr, sr, quality="HQ")
    n = round(duration * sr)
    out = np.zeros(n)
    out[: min(n, len(y))] = y[:n]
    return out


def _render_clip(index, seed, config, sf_bytes, return_stems=False):
    """Compose and render clip ``index``; returns ``(int16 mix, tags[, stems])``.

    Deterministic in ``(seed, index, config)``.  ``stems`` maps each tag to its
    balanced stem (what was summed into the mix before peak normalisation).
    """
    pretty_midi, midirenderer = _import_renderers()
    duration, sr = config["duration"], config["sr"]
    instruments, max_polyphony = config["instruments"], config["max_polyphony"]
    rng = np.random.default_rng([seed, index])
    song = _compose_song(rng, duration)
    n_inst = int(rng.integers(1, max_polyphony + 1))
    chosen = [
        instruments[j]
        for j in sorted(rng.choice(len(instruments), n_inst, replace=False))
    ]
    stems = {}
    for name in chosen:
        programs, pitch_range, roles = _INSTRUMENTS[name]
        program = int(rng.choice(programs))
        for _ in range(_MAX_ATTEMPTS):
            role = str(rng.choice(roles))
            notes = _compose_part(rng, role, pitch_range, song, duration)
            if not notes:
                continue
            stem = _render_stem(
                pretty_midi,
                midirenderer,
                sf_bytes,
                program,
                name == "drums",
                notes,
                song["tempo"],
                duration,
                sr,
            )
            rms = float(np.sqrt(np.mean(stem**2)))
            if rms >= _MIN_STEM_RMS:
                break
        else:
            raise RuntimeError(
                f"the SoundFont {config['soundfont_name']!r} rendered silence for "
                f"instrument {name!r} (General-MIDI program {program}"
                f"{', drum kit' if name == 'drums' else ''}) {_MAX_ATTEMPTS} times; "
                "use a SoundFont with a complete General-MIDI bank, or leave "
                f"{name!r} out of instruments=."
            )
        gain = 10.0 ** (rng.uniform(-6.0, 0.0) / 20.0)
        stems[name] = stem * (gain / rms)
    mix = np.sum(list(stems.values()), axis=0)
    peak = float(np.max(np.abs(mix)))
    if not peak > 0:  # pragma: no cover - every stem passed the RMS check
        raise RuntimeError(f"clip {index} rendered silent; please report this.")
    scale = _PEAK / peak
    pcm = np.round(mix * scale * 32767.0).astype(np.int16)
    tags = [name for name in instruments if name in stems]
    if return_stems:
        return pcm, tags, {k: v * scale for k, v in stems.items()}
    return pcm, tags


# --------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------


def _clip_digest(key_blob, index, tags, pcm):
    """SHA-256 over a clip's cache key, index, tags and samples."""
    h = hashlib.sha256()
    for part in (key_blob, str(index).encode(), ",".join(tags).encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    h.update(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return h.hexdigest()


def _wav_bytes(pcm, sr, tags, digest):
    buf = io.BytesIO()
    with sf.SoundFile(
        buf, "w", samplerate=sr, channels=1, subtype="PCM_16", format="WAV"
    ) as fh:
        fh.comment = (
            f"sklearn_rfcnn make_instrument_mixtures v{_GENERATOR_VERSION} "
            f"tags={','.join(tags)} sha256={digest}"
        )
        fh.write(pcm)
    return buf.getvalue()


def _read_cached(path, n_samples, sr, instruments, key_blob, index):
    """``(pcm, tags)`` of a valid cached clip, or ``None`` if absent or corrupt."""
    if os.path.isdir(path):
        raise DataError(
            f"the cache file {path!r} is a folder; remove it (or the whole cache "
            f"folder {os.path.dirname(path)!r}) and call make_instrument_mixtures "
            "again."
        )
    if not os.path.isfile(path):
        return None
    try:
        with sf.SoundFile(path) as fh:
            if fh.samplerate != sr or fh.channels != 1 or fh.frames != n_samples:
                return None
            match = _COMMENT_RE.match(fh.comment or "")
            pcm = fh.read(dtype="int16")
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError):
        return None
    if match is None or int(match.group(1)) != _GENERATOR_VERSION:
        return None
    tags = [t for t in match.group(2).split(",") if t]
    if not tags or any(t not in instruments for t in tags):
        return None
    if len(pcm) != n_samples or _clip_digest(key_blob, index, tags, pcm) != match.group(
        3
    ):
        return None
    return pcm, tags


def _cache_key(config, seed, sf_digest):
    """The cache key: every parameter that changes what is rendered."""
    return {
        "generator": _GENERATOR_VERSION,
        "duration": config["duration"],
        "sr": config["sr"],
        "instruments": config["instruments"],
        "max_polyphony": config["max_polyphony"],
        "soundfont_sha1": sf_digest,
        "seed": seed,
    }


def _cache_folder(data_home, key):
    blob = json.dumps(key, sort_keys=True).encode()
    digest = hashlib.sha1(blob).hexdigest()[:16]
    folder = Path(get_data_home(data_home)) / "instrument_mixtures" / digest
    if folder.exists() and not folder.is_dir():
        raise DataError(
            f"the cache folder {str(folder)!r} is a file; remove it and call "
            "make_instrument_mixtures again."
        )
    folder.mkdir(parents=True, exist_ok=True)
    params = folder / "params.json"
    if params.is_dir():
        raise DataError(
            f"the cache file {str(params)!r} is a folder; remove it (or the whole "
            f"cache folder {str(folder)!r}) and call make_instrument_mixtures again."
        )
    text = json.dumps(key, indent=2, sort_keys=True).encode()
    try:
        current = params.read_bytes()
    except OSError:
        current = None
    if current != text:  # absent or edited: it documents the folder's key
        atomic_write_bytes(params, text)
    return folder, blob


# --------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------


def make_instrument_mixtures(
    n_clips=500,
    duration=3.0,
    sr=22050,
    instruments=None,
    max_polyphony=3,
    random_state=None,
    data_home=None,
    *,
    soundfont=None,
    verbose=False,
):
    """Render clips of real sampled instruments with multi-hot instrument tags.

    Each clip mixes 1 to ``max_polyphony`` instruments of a General-MIDI
    SoundFont playing random melodies, chords, arpeggios, bass lines or drum
    patterns in a random key, tempo and register (inside each instrument's
    range) with random velocities.  A tag is present exactly when that
    instrument sounds in the clip: every instrument is rendered on its own,
    checked to be audible, normalised to equal loudness (RMS) and mixed at a
    random gain between -6 and 0 dB.  The mix is mono, resampled to ``sr`` and
    peak-normalised to 0.9.  Rendering needs only pip packages (pretty_midi,
    which ships the TimGM6mb SoundFont, and midirenderer) and takes a few tens
    of milliseconds per 3 s clip.

    Clips are cached as 16-bit WAV files under
    ``data_home/instrument_mixtures/<key>/`` where the key covers every
    generation parameter (the SoundFont's content included).  Clip ``i``
    depends only on the seed and ``i``, so a later call with a larger
    ``n_clips`` renders only the new clips.  Files are written under a
    temporary name and moved into place, so several processes may render the
    same cache at once.  Each file carries its tags and a SHA-256 checksum over
    everything a reload returns from it (samples, tags, clip index and every
    generation parameter); a cached file that is unreadable, truncated, edited
    (its tags too) or copied in from another cache fails the check and is
    rendered again.

    Parameters
    ----------
    n_clips : int >= 1, default=500
        Number of clips.
    duration : float in [0.1, 60], default=3.0
        Length of each clip in seconds.
    sr : int >= 1000, default=22050
        Sampling rate of the returned audio.
    instruments : list of str, default=None
        Tags to draw from (see :data:`INSTRUMENT_TAGS`); ``None`` means all 18:
        accordion, acoustic_guitar, banjo, bass, cello, clarinet, drums,
        electric_guitar, flute, mallet_percussion, organ, piano, saxophone,
        synthesizer, trombone, trumpet, violin, voice.  ``target_names``
        follows this order.
    max_polyphony : int, default=3
        Largest number of instruments in one clip; each clip draws its number
        uniformly from ``1..max_polyphony``.
    random_state : int, RandomState instance or None, default=None
        Seed of the whole dataset.  An int gives the same audio and tags on
        every call (and reuses the cache); ``None`` draws a fresh seed, so every
        call renders (and caches) a new dataset.
    data_home : str or path-like, default=None
        Cache root; ``None`` means ``$RFCNN_DATA_HOME`` or ``~/rfcnn_data``.
    soundfont : str or path-like, default=None
        A General-MIDI ``.sf2`` SoundFont; ``None`` uses pretty_midi's bundled
        TimGM6mb.sf2.  Drums use the SoundFont's percussion bank.
    verbose : bool, default=False
        Show a progress bar (tqdm) while clips are rendered or read.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        filenames : ndarray of str, shape (n_clips,)
            Paths of the cached WAV files (usable with ``AudioLoader``).
        waveforms : ndarray of float32, shape (n_clips, round(duration * sr))
            The audio, exactly as stored in the WAV files.
        target : ndarray of int, shape (n_clips, n_tags)
            Multi-hot instrument tags.
        target_names : ndarray of str, shape (n_tags,)
            The tag of each column of ``target``.
        sr : int
            Sampling rate of ``waveforms``.
        DESCR : str
            Description of the dataset.

    Raises
    ------
    ParameterError
        A parameter is out of range, an instrument name is unknown, or the
        SoundFont file does not exist or cannot be read.
    DataError
        ``data_home`` is a file, or a folder stands where a cache file belongs.

    See Also
    --------
    load_openmic : The real-world instrument tagging dataset these tags mimic.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_rfcnn.datasets import make_instrument_mixtures
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     data = make_instrument_mixtures(
    ...         n_clips=4, duration=1.0, sr=16000, instruments=["piano", "drums"],
    ...         max_polyphony=2, random_state=0, data_home=tmp)
    >>> data.waveforms.shape, data.waveforms.dtype
    ((4, 16000), dtype('float32'))
    >>> data.target.shape, list(data.target_names)
    ((4, 2), ['piano', 'drums'])
    >>> bool(data.target.sum(axis=1).min() >= 1)
    True
    """
    n_clips, duration, sr, instruments, max_polyphony = _check_params(
        n_clips, duration, sr, instruments, max_polyphony
    )
    seed = _seed_from(random_state)
    sf_path, sf_bytes = _load_soundfont(soundfont)
    sf_digest = hashlib.sha1(sf_bytes).hexdigest()
    config = {
        "duration": duration,
        "sr": sr,
        "instruments": instruments,
        "max_polyphony": max_polyphony,
        "soundfont_name": os.path.basename(sf_path),
    }
    folder, key_blob = _cache_folder(data_home, _cache_key(config, seed, sf_digest))
    n_samples = round(duration * sr)

    from tqdm.auto import tqdm

    filenames = []
    waveforms = np.empty((n_clips, n_samples), dtype=np.float32)
    target = np.zeros((n_clips, len(instruments)), dtype=np.int64)
    column = {name: j for j, name in enumerate(instruments)}
    checked = False
    for i in tqdm(
        range(n_clips), desc="instrument mixtures", unit="clip", disable=not verbose
    ):
        path = str(folder / f"mix_{i:05d}.wav")
        cached = _read_cached(path, n_samples, sr, instruments, key_blob, i)
        if cached is None:
            if not checked:
                _check_soundfont(sf_path, sf_bytes)
                checked = True
            pcm, tags = _render_clip(i, seed, config, sf_bytes)
            digest = _clip_digest(key_blob, i, tags, pcm)
            atomic_write_bytes(path, _wav_bytes(pcm, sr, tags, digest))
        else:
            pcm, tags = cached
        filenames.append(path)
        waveforms[i] = pcm.astype(np.float32) / np.float32(32768.0)
        for tag in tags:
            target[i, column[tag]] = 1
    descr = _DESCR.format(
        duration=duration,
        sr=sr,
        max_polyphony=max_polyphony,
        soundfont_name=config["soundfont_name"],
        n_tags=len(instruments),
        tags=", ".join(instruments),
        folder=folder,
    )
    return Bunch(
        filenames=np.array(filenames, dtype=object),
        waveforms=waveforms,
        target=target,
        target_names=np.array(instruments, dtype=object),
        sr=sr,
        DESCR=descr,
    )
