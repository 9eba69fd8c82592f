"""The random test models of every family: tests where the model matters run over each."""

TINY_MODELS = ("imagebind-tiny", "pe-av-tiny")
