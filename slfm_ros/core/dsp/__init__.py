"""Audio signal processing: raw sample formats, resampling, impulse-response onsets, and the
front ends of the audio networks (binaural STFT features, binaural cue vectors, interaural
intensity differences)."""
