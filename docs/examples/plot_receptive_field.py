"""
Receptive field against rho
===========================

CP-ResNet's receptive field grows with ``rho``, the number of 3x3 block
convolutions after the first block.  This example plots the exact maximum
receptive field in spectrogram pixels and in seconds at 22.05 kHz, hop 512,
computed without building a network.
"""

import matplotlib.pyplot as plt

from sklearn_rfcnn.receptive_field import (
    cp_resnet_layers,
    describe_receptive_field,
    receptive_field,
)

rhos = list(range(0, 23))
rfs = [receptive_field(cp_resnet_layers(rho=r)) for r in rhos]
seconds = [
    describe_receptive_field(rf, sr=22050, hop_length=512, n_mels=256).time_seconds
    for rf in rfs
]

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(rhos, [rf.time for rf in rfs], marker="o")
ax.set_xlabel("rho")
ax.set_ylabel("max receptive field (frames)")
secax = ax.secondary_yaxis(
    "right", functions=(lambda px: px * 512 / 22050, lambda s: s * 22050 / 512)
)
secax.set_ylabel("seconds at 22.05 kHz, hop 512")
ax.set_title("CP-ResNet receptive field")
fig.tight_layout()
print(dict(zip(rhos, seconds)))
plt.show()
