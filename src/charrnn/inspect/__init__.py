"""Seeing inside a trained model: its states and gates over a text (trace), what the text is doing at
each character (detectors), the units that track it (cells)."""
