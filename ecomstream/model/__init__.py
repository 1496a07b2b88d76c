"""The review-sentiment model: vocabulary extension, domain-adaptive MLM, fine-tuning,
evaluation against a classical baseline, and ONNX export for Triton.

Why a package of small modules: training needs torch and transformers (the ``model``
extra), while evaluation metrics, profiles and the baseline do not; keeping heavy
imports inside the modules that need them lets the CLI and the unit tests stay fast.
"""
