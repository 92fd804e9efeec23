"""Test-wide settings: quiet TensorFlow logs, a non-interactive plot backend, two CPU threads."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # hide TensorFlow's C++ info and warnings
os.environ.setdefault("MPLBACKEND", "Agg")
