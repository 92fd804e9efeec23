"""Mask R-CNN on TensorFlow 2 / Keras 3, with Matterport's public API.

Knows Mask R-CNN and nothing of ModaNet, VIA or seasons (that is `helpers`).
"""
