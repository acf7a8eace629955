"""The constants every part of hf_ser shares: the sampling rate, the challenge's emotion classes, the attribute names.

This file travels to the Hub with the models (``trust_remote_code``: the configuration files import it relatively),
so it imports nothing at all. Everything else in hf_ser imports these names from here (`hf_ser.audio` re-exports
`SAMPLING_RATE`); nothing redefines them.
"""

from __future__ import annotations

# The rate every speech encoder hf_ser builds on (WavLM, wav2vec2, HuBERT, Whisper) was trained at, and the rate of
# MSP-Podcast's audio. All audio is resampled to it on the way in (`hf_ser.audio.load_input`).
SAMPLING_RATE = 16_000

# The challenge's 8 primary classes, in its class order (MSP-Podcast baseline and its Hub models; paper 002).
EMOTION_LABELS = ("Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral")

# The emotional attributes of Task 2, in hf_ser's output order (papers 001-003).
ATTRIBUTE_LABELS = ("arousal", "valence", "dominance")

__all__ = ["ATTRIBUTE_LABELS", "EMOTION_LABELS", "SAMPLING_RATE"]
