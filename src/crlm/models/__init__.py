"""Model zoo: one module per arch (crlm/models/<arch>.py: its Network and its params section), built by name
through registry.py; the shared parts are base.py (the Network contract, heads), network.py and blocks.py
(the VGG16 trunk and library blocks) and pretrained.py. A trained model is saved and loaded by model_file.py
and run by inference.py.

This file imports nothing, so that importing one module of the package imports no other arch.
"""
