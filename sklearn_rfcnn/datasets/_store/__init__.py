"""An on-disk spectrogram store for data sets larger than memory.

:class:`SpectrogramStore` keeps the spectrograms of a whole data set in one
folder, computed once through a scikit-learn front end and read back one clip
or one crop at a time, so that training on MTG-Jamendo (about 180 GB of
float32 spectrograms at 22.05 kHz, hop 512, 256 mels) needs the memory of a
batch, not of the data set.

On-disk format, and why
-----------------------
One folder::

    manifest.json        store-level metadata, written once (atomic rename)
    data.bin             every clip's frames, one after the other
    chunks/<start>.json  the index of one committed chunk of clips (while building)
    index.json           the consolidated index, written when the build completes

Each clip is stored **time-major**, ``(n_frames, C, F)`` in C order, so the
frames ``start:stop`` of a clip are one contiguous byte range: a random crop
is a single ``os.pread`` of exactly its bytes.  The format was chosen by
measurement (``benchmarks/bench_store.py``, figures in
``benchmarks/README.md``) against ``np.memmap`` of the same file, a
frequency-major flat file, HDF5 through h5py (chunked and contiguous) and zarr
(chunked, with and without compression):

* cold reads (the case for a data set larger than the page cache): one
  contiguous ``pread`` per crop gave 1.2k crops/s of 431 x 256 frames from
  70-second tracks, against 0.3-0.4k through ``np.memmap`` (page-by-page
  faults; a frequency-major layout spreads a crop over the whole track),
  0.6k for chunked HDF5 and 0.3-0.4k for zarr; contiguous HDF5 was as fast
  (1.5k) but cannot be appended to, so it cannot be built resumably;
* warm reads favour ``np.memmap`` (8-14k against 4.9k crops/s: ``pread``
  pays a copy and the transpose to ``(C, F, T)``), but a memmap of a 180 GB
  file needs 180 GB of address space (under a 1 GB ``RLIMIT_AS`` the 2 GB
  store could not be mapped) and counts every touched page in the resident
  set; ``pread`` into a fresh buffer keeps both flat in the store's size,
  and 4.9k crops/s is far above what the CNN consumes;
* robustness: appending bytes and renaming a small index file are the only
  writes, so a killed build leaves at worst uncommitted bytes at the end of
  ``data.bin``, which readers never look at and a resumed build truncates.
  HDF5 files can be left unreadable by a writer killed mid-write, h5py
  handles must not cross ``fork`` (DataLoader workers) and concurrent readers
  of a file being written need SWMR mode; zarr is safe here but slow per
  crop, writes one file per chunk (about a million for MTG-Jamendo) and
  needs an extra dependency.  The flat file needs only numpy.

Crash safety
------------
Clips are computed and written ``chunk_size`` at a time.  A chunk is
*committed* by: appending its bytes to ``data.bin``, ``fsync``, then writing
its index to a temporary file, ``fsync`` and renaming it to
``chunks/<start>.json`` (a rename is atomic).  Readers only see committed
clips; a clip is either fully indexed with its bytes on disk, or invisible.
Re-running :meth:`SpectrogramStore.create` on the same folder with the same
inputs and front end resumes after the last committed chunk; different inputs,
front-end parameters or dtype are refused unless ``overwrite=True``.  A lock
file stops two builders from writing the same folder at once.
"""

from sklearn_rfcnn.datasets._store._format import (  # noqa: F401 (package-level)
    _manifest_checksum,
    front_end_checksum,
    front_end_spec,
)
from sklearn_rfcnn.datasets._store._reader import SpectrogramStore

__all__ = ["SpectrogramStore", "front_end_checksum", "front_end_spec"]
