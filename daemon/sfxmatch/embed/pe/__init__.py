"""PE-AV (Perception Encoder Audio-Visual) through Hugging Face transformers."""
