"""dsp subpackage."""
