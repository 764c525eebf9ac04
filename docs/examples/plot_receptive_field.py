"""
Receptive field against rho
===========================

CP-ResNet's receptive field grows with ``rho``, the number of 3x3 block
convolutions after the first block.  This example plots the exact maximum
receptive field in spectrogram pixels and in seconds at 22.05 kHz, hop 512.
"""

import matplotlib.pyplot as plt
from sklearn_rfcnn.receptive_field import describe_receptive_field, receptive_field

from sklearn_rfcnn.models import CPResNet

rhos = list(range(0, 23))
pixels = [receptive_field(CPResNet(rho=r, width=4)).time for r in rhos]
seconds = [
    describe_receptive_field(
        receptive_field(CPResNet(rho=r, width=4)),
        sr=22050,
        hop_length=512,
        n_mels=256,
        fmin=0.0,
        fmax=None,
    ).seconds
    for r in rhos
]

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(rhos, pixels, marker="o")
ax.set_xlabel("rho")
ax.set_ylabel("max receptive field (pixels)")
ax2 = ax.twinx()
ax2.plot(rhos, seconds, alpha=0)
ax2.set_ylabel("seconds at 22.05 kHz, hop 512")
ax.set_title("CP-ResNet receptive field")
fig.tight_layout()
plt.show()
