"""The shared Parameters and Attributes sections of the estimators' docstrings."""

import textwrap

__all__ = []

#: The shared ``Parameters`` section of the public estimators' docstrings.
_PARAMETERS_DOC = """arch : str, default="cp_resnet"
        Registered network (:func:`sklearn_rfcnn.models.list_models`):
        ``"cp_resnet"``, or the baselines ``"vgg_cnn"``, ``"resnet18"``,
        ``"resnet34"``.  A model parameter below that the network cannot take
        (``rho`` for a baseline, say) raises a :class:`ParameterError` when
        set; left at None/False it does not reach the network.
    rho : int >= 0 or None, default=None
        Receptive-field regulariser of CP-ResNet: the number of 3x3
        convolutions after the first block (0..``depth - 4``); None is the
        library's default, :data:`sklearn_rfcnn.receptive_field.DEFAULT_RHO`
        (chosen by measurement, see the user guide's defaults table).  The
        fitted receptive field in pixels is ``receptive_field_``.
    rho_f, rho_t : int >= 0 or None, default=None
        Separate rho along frequency / time (None: ``rho``).
    width : int >= 1 or None, default=None
        Base channel count; None is the architecture's standard width (128
        for CP-ResNet as in the paper, 64 for VGG-style and ResNet-18/34).
        CP-ResNet's pooled embedding has ``4 * width`` features.
    depth : int or None, default=None
        CP-ResNet depth, of the form ``6 n + 2`` (None: 26).
    frequency_aware : bool, default=False
        Add the frequency-coordinate channel in every block (CP-FAResNet).
    shake_shake : bool, default=False
        Two residual branches mixed with Shake-Shake regularisation.
    head : {"pooled", "map"} or None, default=None
        Where CP-ResNet's classifier batch norm sits: ``"map"`` is the
        paper's head (BN on the class map, then pooling), ``"pooled"`` pools
        first (see :class:`~sklearn_rfcnn.models.CPResNet`); None is
        ``"pooled"`` for CP-ResNet, which trains much faster in short runs
        (``benchmarks/README.md``).
    mixup_alpha : float >= 0, default=0.3
        Mixup: each training example gets ``lam ~ Beta(alpha, alpha)``,
        ``lam = max(lam, 1 - lam)``, and is mixed with a random partner of its
        batch; inputs and *losses* are mixed.  0 switches mixup off.
    roll : int >= 0, default=50
        Random circular shift of each training clip along time by up to
        ``roll`` frames.  0 switches it off; never applied to 2-D ``X``.
    freq_mask : int >= 0, float in [0, 1) or "auto", default="auto"
        SpecAugment-style frequency masking (Park et al., 2019): in each
        training clip, a band of up to ``freq_mask`` adjacent frequency bins
        (an int) or up to that share of the bins (a float; 0.25 of 128 mel
        bands is 32) is set to 0, the band mean of standardised input.  The
        width is uniform from 0 to that limit, the position uniform.  0
        switches it off (the paper's recipe); never applied to 2-D ``X``.
        ``"auto"`` is 0.25 when ``max_epochs >= 50`` and 0 below, as measured
        (``benchmarks/README.md``, section 1): with ``time_mask`` it added
        0.02-0.04 mAP at 50 and 60 epochs and cost 0.03-0.04 at 25, where
        the network has not fitted its training clips yet.
    time_mask : int >= 0, float in [0, 1) or "auto", default="auto"
        The same along time: a run of up to ``time_mask`` frames (an int) or
        that share of the clip's (or crop's) frames (a float) set to 0.
        ``"auto"`` is 0.2 when ``max_epochs >= 50`` and 0 below.
    lr : float >= 0, default=1e-3
        Peak learning rate (the paper: 1e-4 over 350 epochs).
    weight_decay : float >= 0, default=1e-2
        Weight decay: decoupled (AdamW) with ``optimizer="adamw"``, an L2
        penalty in the gradient with ``"adam"`` (the paper: 0).
    max_epochs : int >= 1, default=100
        Epochs of ``fit``.
    batch_size : int >= 1, default=32
        Mini-batch size for training and inference.
    optimizer : {"adam", "adamw"}, default="adamw"
        AdamW (decoupled weight decay) or Adam (the paper's).
    lr_schedule : {"cosine", "linear", "constant"}, default="cosine"
        ``"cosine"``: after the warm-up, a half cosine from ``lr`` to 0 over
        the remaining training, updated every batch.  ``"linear"``: the
        paper's schedule scaled to ``max_epochs`` -- flat for the first 1/7
        of the epochs, then a linear decay that reaches the floor ``lr / 100``
        at 5/7, then the floor (the reference trains 350 epochs with corners
        at 50 and 250).  The rate at the start of every epoch is in
        ``history_[:, "lr"]``.
    warmup : float in [0, 1), default=0.05
        Fraction of ``max_epochs`` over which the learning rate rises
        linearly (per batch) from ~0 to ``lr`` (the paper: 0).  The defaults
        and the paper's values side by side, with the measured effect of
        each: the user guide, "The training recipe".
    swa : bool, default=False
        Stochastic weight averaging over the epochs from 5/7 of training on
        (the reference starts at epoch 250 of 350); the averaged weights
        replace the final ones and batch-norm statistics are recomputed on
        the training data.
    validation_fraction : float in [0, 1) or None, default=None
        Internal hold-out whose loss is reported as ``valid_loss``: stratified
        for class labels, and for tags by iterative stratification (every
        tag with two or more positive clips lands on both sides).  None (or
        0) trains on every clip -- unless ``early_stopping`` needs a hold-out,
        which is then 0.1.
    early_stopping : bool, default=False
        Stop when the validation loss has not improved for 5 epochs and
        restore the best weights (holds out ``validation_fraction``, or a
        tenth of the clips when that is None).
    threshold : float in [0, 1] or array-like of shape (n_tags,), default=0.5
        Multi-label decision threshold(s) of ``predict``.
    class_weight : "balanced", dict, array-like of shape (n_outputs,) or None, \
            default=None
        Classes: the weight of every clip of a class in the loss, as in
        scikit-learn (``"balanced"``: ``n_samples / (n_classes * count)``; a
        dict maps labels to weights; an array is in ``classes_`` order).
        Tags: the weight of a tag's *positive* entries relative to its
        negatives (``pos_weight`` of :class:`torch.nn.BCEWithLogitsLoss`;
        ``"balanced"``: ``n_negative / n_positive`` per tag, so both sides
        weigh the same; a dict maps tag indices to weights).  Multiplies
        ``sample_weight``.
    output_bias : {"zero", "prior"}, default="zero"
        Initial bias of the logits: ``"zero"`` as the paper does, or
        ``"prior"``: the label prior of the training data (log-odds per tag,
        log-share per class, class-weighted).  ``"prior"`` lowers the
        training loss but measured 0.02-0.06 mAP *worse* on held-out clips in
        25-epoch runs (``benchmarks/README.md``), hence not the default.
    crop_frames : int >= 1 or None, default=None
        Train on random crops of this many frames: every training batch
        holds ``batch_size`` crops (one per clip, at a start drawn afresh
        every epoch from the seeded RNG), whatever the clips' lengths, so
        mixup and batch normalisation always see full batches; only the last
        batch of an epoch may be smaller (a last batch of one clip joins the
        one before).  A clip shorter than the crop is *tiled* (repeated end
        to start) up to it, the same wrap as the circular ``roll`` -- zero
        padding would add a block of "average energy" (0 after
        :class:`~sklearn_rfcnn.BandStandardizer`) with a hard edge that the
        network only ever meets on short clips, and global pooling would
        average it into the clip's evidence; a fit warns which clips are
        tiled, and a ``crop_frames`` longer than *every* training clip is an
        error.  Validation (the internal hold-out, early stopping) and
        prediction then slide windows of ``crop_frames`` frames over each
        clip (``window_hop``) and aggregate them (``aggregate``).  None
        trains on whole clips: batches of one length; clips of different
        lengths are sorted by length within shuffled pools of 8 batches and
        each batch is cropped at random starts to its shortest clip (a few
        frames of the longer clips are left out of that epoch, different ones
        every epoch); validation and prediction then see whole clips.  Not for
        2-D ``X``.  Crops shorter than the receptive field (``receptive_field_``)
        train, but give the network less context than it can use; inputs
        smaller than a network's minimum size are edge-replicated inside the
        network.
    window_hop : int >= 1 or None, default=None
        Frames between the starts of consecutive prediction/validation
        windows (at most the window length); None is half a window.  Windows
        start at 0, ``window_hop``, ...; when the last one does not reach the
        clip's end one more is aligned to the end, so every frame is seen.
    aggregate : {"mean", "max"}, default="mean"
        How the windows' logits are combined per clip (with ``crop_frames``):
        ``"mean"`` (the default) suits classes and clip-level tags (genre,
        mood: a property of the whole recording, every window votes);
        ``"max"`` suits tags of events that may sound in one part of a
        recording only (an instrument solo): a tag is as probable as in its
        most confident window.  Embeddings
        (:meth:`RFCNNEmbedder.transform`) are always averaged.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when present, else the CPU.
    precision : {"auto", "32", "bf16", "16"}, default="auto"
        Autocast precision of the forward passes (convolutions and linear
        layers; weights, batch-norm statistics, the loss, the optimizer state
        and the returned probabilities stay float32).  ``"auto"`` decides
        from the hardware: on a CPU, bf16 where it has native bf16 arithmetic
        (AMX or AVX-512-BF16, as :func:`torch.cpu.get_capabilities` reports)
        and float32 where bf16 would be emulated (AVX2 only: ~10x slower); on
        CUDA, bf16 where supported, else float16 with a gradient scaler.  The
        choice is ``precision_``.  bf16 and float32 reach the same held-out
        mAP within the seed-to-seed spread (``benchmarks/README.md``).
    channels_last : bool or "auto", default="auto"
        Run the network in the ``torch.channels_last`` memory format: the
        module's weights are converted after it is built (and after loading)
        and every input batch is made channels-last before the forward pass.
        ``"auto"`` is True on CPUs where it was measured faster
        (``benchmarks/speed.py``): with bf16, and in float32 on x86 CPUs
        with AVX-512 or AVX2 (on the latter the weight gradients of
        convolutions with 64 or more input channels and maps of 1024
        positions or more are computed in NCHW, where oneDNN's channels-last
        kernel is slow); elsewhere it trains in
        the default layout and predicts in channels-last; True on CUDA with
        mixed precision.
        The choices are ``channels_last_`` (training) and
        ``inference_channels_last_`` (prediction, embedding); an explicit
        bool sets both.
        A trained network predicts the
        same in both layouts up to floating-point rounding; training takes a
        slightly different numerical path (as on other hardware), so the same
        ``random_state`` gives identical models only in the same layout.
    distributed : {"accelerate"} or None, default=None
        ``"accelerate"``: data-parallel training of one model over the
        processes of a Hugging Face Accelerate (or ``torchrun``) launch --
        GPUs in production, CPU processes (gloo) for tests -- through skorch's
        ``AccelerateMixin``; needs the extra ``pip install
        sklearn-rfcnn[accelerate]``.  Every process runs the same script and
        calls ``fit`` with the same full data::

            $ accelerate launch --multi_gpu --num_processes 4 train.py  # 4 GPUs
            $ torchrun --standalone --nproc_per_node 2 train.py  # or 2 CPU procs

        (on one machine ``accelerate launch --cpu --num_processes 2`` starts a
        single process: Accelerate's multi-CPU launch goes through ``mpirun``
        with ``--mpirun_hostfile``; use ``torchrun``, or ``accelerate launch
        --multi_gpu`` on a machine without GPUs, for local CPU processes).

        ``batch_size`` is then the *global* batch: process 0 draws the batches
        a one-process fit would draw and each process trains on its
        contiguous part of each (``batch_size / n_processes`` clips, the parts
        differing by at most one); gradients are averaged so that a step is
        the one-process step on the whole batch, except for batch
        normalisation, which normalises with each process's own part (no
        SyncBatchNorm).  ``history_`` holds the global training loss on every
        process (``train_process_batch_size``: the clips of this process);
        validation is not sharded (every process evaluates the whole
        hold-out).  Each process runs on its ``accelerator.device``
        (``device="auto"``; ``"cpu"`` forces CPU processes); the
        ``precision`` autocast stays in charge (Accelerate's own
        ``mixed_precision`` is off).  After ``fit`` every process holds the
        same weights and predicts locally; ``save`` writes from the main
        process only, and ``load`` gives a plain single-process estimator.
        A fitted estimator cannot be pickled (use ``save``), and ``swa`` is
        not supported over several processes.  Without a launcher the fit
        runs in one process and equals the fit with None (same draws, same
        weights).  Details: :mod:`sklearn_rfcnn.estimators._accelerate`.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, mixup, roll and the hold-out
        through a forked torch RNG and a numpy Generator; the global RNGs are
        never touched.  On CPU the same integer gives identical predictions.
    verbose : int, default=1
        Print skorch's per-epoch table when > 0.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks (``(name, callback)`` tuples or instances), deep-copied
        into the net at each fit.
    net_params : dict or None, default=None
        Advanced: keyword arguments for the skorch net, e.g.
        ``{"callbacks__early_stopping__patience": 10}`` or
        ``{"iterator_train__num_workers": 2}``."""

#: The fitted attributes both estimators share.
_FITTED_ATTRIBUTES_DOC = """
net_ : skorch.NeuralNet
    The trained private skorch net; the torch network is ``net_.module_``.
n_features_in_ : int
    Number of mel bands of 3-D input (channels of 4-D input, columns of 2-D
    input).
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Column names, when fitted on a DataFrame.
receptive_field_ : RF
    Maximum receptive field of the network in input pixels, a named pair
    ``(freq, time)``; see :func:`sklearn_rfcnn.inspection.describe_pipeline`
    for seconds and Hz.
front_end_checksum_ : str or None
    ``front_end_checksum`` of the clip source fitted on (None for arrays, or a
    source without one); prediction and ``transform`` refuse a source whose
    checksum differs.
history_ : skorch.History
    Per-epoch training record (``train_loss``, ``valid_loss``, ``lr``,
    ``dur``, ...).
precision_ : {"32", "bf16", "16"}
    The precision the net runs in (``precision`` with "auto" decided for this
    machine's device; a loaded model decides afresh).
channels_last_ : bool
    Whether the net trains in the channels-last memory format.
inference_channels_last_ : bool
    Whether it predicts and embeds in the channels-last memory format (equal
    to ``channels_last_`` except with ``channels_last="auto"`` on a CPU that
    trains in the default layout; a loaded model decides afresh).
"""

#: The ``Parameters`` section of the methods that take only spectrograms.
_X_PREDICT_DOC = """
Parameters
----------
X : array-like, list of arrays or clip source
    Spectrograms, as in ``fit``; clips may differ in length from the
    training clips.
"""

#: The class docstrings' ``Parameters`` section and the shared start of their
#: ``Attributes`` (``%(parameters_and_attributes)s``).
CLASS_DOCS = {
    "parameters_and_attributes": "Parameters\n----------\n"
    + textwrap.dedent("    " + _PARAMETERS_DOC).strip()
    + "\n\nAttributes\n----------\n"
    + _FITTED_ATTRIBUTES_DOC.strip()
}

#: The sections above by placeholder name (``fill_doc(**METHOD_DOCS)``).
METHOD_DOCS = {"X_predict": _X_PREDICT_DOC}
