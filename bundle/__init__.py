"""liver_tumor_ct_segmentation: the Python package that the bundle's configs point to.

Sub-packages follow the pipeline, each importing only from those before it (``networks`` from none):

- ``data``: CT phantoms in the LiTS layout (``data/phantom/``), 3D-IRCADb reading and conversion, datalists with
  k-fold splits, real-CT datalists, input validation (``validation``: the rules; ``image_headers``: the readers);
- ``transforms``: MONAI array/dictionary transform pairs: CT loading, HU window, liver ROI crop, slice stacks,
  partial labels, validation as a transform;
- ``networks``: one architecture per file (coarse liver network, DenseUNet and its blocks, H-DenseUNet, the seed
  methods), the whole cascade ``LiverTumorCascade`` with its inference scheme, F / F⁻¹ and whole-slice inference
  (``slices``), BatchNorm folding (``folding``), the hybrid inferer, the liver-ROI box (``volume_geometry``);
  it imports nothing else of ``bundle`` but the pure-Python ``config_values``;
- ``engines``: what ignite and MONAI's SupervisedTrainer lack: losses, handlers, checkpoints, the stage order;
- ``inference``: batch inputs, post-processing, per-case outputs and reports, overlays, the stage inferer;
- ``metrics``: LiTS metrics, folder evaluation, learning curves;
- ``perf``: FLOP counting and the CPU benchmark.

Top-level modules: ``config_values`` (booleans typed on the command line), ``apps`` (own command line or MONAI
Label), ``commands`` (one runner of ``monai.bundle`` commands), ``demo`` (``make demo``), ``compare`` (the networks
side by side), ``real_ct_validation`` (scores on real CT as a user runs it). ``scripts/`` holds thin command lines
into these.
"""
