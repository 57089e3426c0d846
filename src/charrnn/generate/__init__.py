"""Reading a trained model: `Sampler` (sampler), the next character's choice (picking), the per-character
step (step), stop strings (stops), scoring a text (scoring) and evaluating a whole text (evaluation)."""
