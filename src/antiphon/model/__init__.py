"""The MDRNN without an ML framework: maths, weights, model files and IMPSY import."""
