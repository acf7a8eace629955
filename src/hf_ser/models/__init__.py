"""The models, their configurations and their parts (pooling, losses, attention, labels).

Every file here travels to the Hub beside the weights, so that a published model loads with `trust_remote_code` where hf_ser
is not installed: these files import only torch, transformers and each other (a test enforces it).
"""
