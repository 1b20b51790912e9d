"""Lesson 07, distilling a language model: text, the char transformer, its training, KD losses, scores."""
