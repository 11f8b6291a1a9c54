"""From audio and text to model inputs: encoders, ASR, the feature cache and extraction, the FeatureSpec,
frame pooling, speaker standardisation and the feature store."""
