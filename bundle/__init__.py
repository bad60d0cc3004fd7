"""liver_tumor_ct_segmentation: the Python package that the bundle's configs point to.

Sub-packages follow the pipeline: ``data`` (phantoms, datalists), ``transforms`` (array/dictionary
transform pairs), ``networks`` (one architecture per file), ``engines`` (what ignite and MONAI's
SupervisedTrainer lack), ``inference`` (the cascade and post-processing), ``metrics`` (LiTS metrics).
"""
