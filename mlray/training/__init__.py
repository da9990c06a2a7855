"""Training: the CTR model, shared preprocessing, the Ray Train loop, Ray Tune, evaluation.

Heavy modules (torch, Ray Train) are imported by the modules that need them,
so ``import mlray.training`` stays light.
"""
