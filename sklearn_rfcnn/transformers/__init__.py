"""The audio front end: scikit-learn transformers from files to spectrograms.

``AudioLoader`` decodes files (or takes waveforms) at one sampling rate,
``MelSpectrogram`` computes the CP-ResNet papers' perceptually weighted mel
spectrogram (or log-mel, or mel power), and ``BandStandardizer`` z-scores
every mel band with statistics learned in ``fit``::

    make_pipeline(AudioLoader(duration=10.0), MelSpectrogram(), BandStandardizer())

torch is imported only by ``MelSpectrogram(backend="torch")``.
"""

from sklearn_rfcnn.transformers._loader import AudioLoader
from sklearn_rfcnn.transformers._mel import MelSpectrogram
from sklearn_rfcnn.transformers._standardize import BandStandardizer

__all__ = ["AudioLoader", "BandStandardizer", "MelSpectrogram"]
