"""
Receptive field against rho
===========================

CP-ResNet's receptive field grows with ``rho``, the number of 3x3 block
convolutions after the first block.  This example plots the exact maximum
receptive field, computed without building a network, in three units for the
paper's front end (22.05 kHz, hop 512, 256 mel bands): spectrogram pixels,
seconds along time, and Hz along frequency (the span of that many mel bands
centred on the middle band, and on the lowest and highest).
"""

import matplotlib.pyplot as plt

from sklearn_rfcnn.receptive_field import (
    cp_resnet_layers,
    describe_receptive_field,
    receptive_field,
)

sr, hop, n_mels = 22050, 512, 256
rhos = list(range(0, 23))
rfs = [receptive_field(cp_resnet_layers(rho=r)) for r in rhos]
desc = [
    describe_receptive_field(rf, sr=sr, hop_length=hop, n_mels=n_mels) for rf in rfs
]

fig, (ax_px, ax_s, ax_hz) = plt.subplots(1, 3, figsize=(12, 3.8))
ax_px.plot(rhos, [rf.time for rf in rfs], marker="o")
ax_px.axhline(n_mels, color="grey", ls=":", label=f"{n_mels} mel bands")
ax_px.set_ylabel("max receptive field (px)")
ax_px.legend()

ax_s.plot(rhos, [d.time_seconds for d in desc], marker="o", color="C1")
ax_s.set_ylabel(f"along time (s), sr={sr}, hop={hop}")

for key, label in (
    ("low", "lowest band"),
    ("mid", "middle band"),
    ("high", "highest band"),
):
    spans = [d.hz_spans[key][1] - d.hz_spans[key][0] for d in desc]
    ax_hz.plot(rhos, spans, marker=".", label=f"centred on the {label}")
ax_hz.set_ylabel("along frequency (Hz covered)")
ax_hz.legend(fontsize="small")

for ax, title in zip((ax_px, ax_s, ax_hz), ("pixels", "seconds", "Hz")):
    ax.set_xlabel("rho")
    ax.set_title(title)
fig.suptitle("CP-ResNet (depth 26) receptive field against rho")
fig.tight_layout()
for r, d in zip(rhos, desc):
    if r in (0, 2, 5, 7, 10, 22):
        print(
            f"rho={r:2d}: {d.rf.time:3d} px, {d.time_seconds:5.2f} s, "
            f"{d.hz_spans['mid'][0]:.0f}-{d.hz_spans['mid'][1]:.0f} Hz"
        )
plt.show()
