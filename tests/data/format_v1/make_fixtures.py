"""Write a v1 pipeline folder and a v1 store with the code before issue #28."""
import json, sys
from pathlib import Path
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn_rfcnn import AudioLoader, BandStandardizer, MelSpectrogram, RFCNNClassifier, save_pipeline
from sklearn_rfcnn.datasets import SpectrogramStore

out = Path(sys.argv[1])
rng = np.random.default_rng(0)
waves = rng.normal(size=(8, 2000)).astype(np.float32)
y = ["bass", "drums"] * 4
pipe = make_pipeline(
    AudioLoader(sr=8000),
    MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=8),
    BandStandardizer(),
    RFCNNClassifier(width=2, rho=1, depth=8, max_epochs=1, verbose=0, device="cpu", precision="32", random_state=0),
).fit(list(waves), y)
save_pipeline(pipe, out / "v1_pipeline", metadata={"target_names": ["bass", "drums"], "multilabel": False})
np.save(out / "v1_pipeline_expected_proba.npy", pipe.predict_proba(list(waves)))
front = make_pipeline(AudioLoader(sr=8000), MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=8))
SpectrogramStore.create(out / "v1_store", list(waves[:3]), front, verbose=0)
